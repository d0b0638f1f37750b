// Webhook signing and delivery. Only Web Crypto, fetch and timers are used, so this module also loads
// under Node (the self-test imports signPaystackBody).

/** x-paystack-signature: lowercase hex HMAC-SHA512 of the exact body bytes, keyed with the secret key. */
export async function signPaystackBody(secretKey: string, body: string | Uint8Array): Promise<string> {
  const encode = (s: string) => new TextEncoder().encode(s);
  const key = await crypto.subtle.importKey("raw", encode(secretKey), { name: "HMAC", hash: "SHA-512" }, false, [
    "sign",
  ]);
  const bytes = typeof body === "string" ? encode(body) : body;
  const mac = await crypto.subtle.sign("HMAC", key, bytes as Uint8Array<ArrayBuffer>);
  return Array.from(new Uint8Array(mac), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** One event as sent: a replay re-sends exactly these bytes with this signature. */
export interface Sent {
  event: string;
  reference: string | null;
  body: string;
  signature: string;
}

/** How the first attempt of a delivery went, as admin routes report it. */
export interface Attempt {
  event: string;
  reference: string | null;
  status_code: number | null;
  error: string | null;
}

// Paystack waits 30 s for an answer and counts anything but 200 as a failure
// (https://paystack.com/docs/payments/webhooks/).
const TIMEOUT_MS = 30_000;

export class WebhookDispatcher {
  #sent: Sent[] = [];

  constructor(private config: () => { url: string; retryMs: number[] }) {}

  /** Sends now and retries in the background after each configured delay; resolves with the first attempt. */
  dispatch(sent: Sent): Promise<Attempt> {
    this.#sent.push(sent);
    const retryMs = [...this.config().retryMs];
    const attempt = async (n: number): Promise<Attempt> => {
      const a = await this.#post(sent);
      if (a.status_code !== 200 && n < retryMs.length) setTimeout(() => attempt(n + 1), retryMs[n]);
      return a;
    };
    return attempt(0);
  }

  async #post(s: Sent): Promise<Attempt> {
    const a: Attempt = { event: s.event, reference: s.reference, status_code: null, error: null };
    try {
      const res = await fetch(this.config().url, {
        method: "POST",
        headers: { "content-type": "application/json", "x-paystack-signature": s.signature },
        body: s.body,
        signal: AbortSignal.timeout(TIMEOUT_MS),
      });
      await res.body?.cancel();
      a.status_code = res.status;
      if (res.status !== 200) a.error = `HTTP ${res.status}`;
    } catch (e) {
      const cause = (e as { cause?: Error }).cause;
      a.error = e instanceof Error && e.name === "TimeoutError"
        ? "timeout"
        : `${e}${cause ? `: ${cause.message}` : ""}`;
    }
    return a;
  }

  /** Every event sent (each once, whatever its retries), oldest first; filtered when given. */
  list(reference?: string, event?: string): Sent[] {
    return this.#sent.filter((s) => (!reference || s.reference === reference) && (!event || s.event === event));
  }

  /** The last `event` sent for `reference`. */
  last(reference: string, event: string): Sent | undefined {
    return this.list(reference, event).at(-1);
  }
}
