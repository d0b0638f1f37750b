// Webhook signing and delivery for the Paystack emulator.
// Only Web Crypto, fetch and timers are used, so this module also loads under Node (tests import
// signPaystackBody directly).

const encoder = new TextEncoder();

function toHex(buf: ArrayBuffer): string {
  return Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, "0"))
    .join("");
}

/**
 * The x-paystack-signature value: lowercase hex HMAC-SHA512 of the exact body bytes, keyed with
 * the secret key.
 */
export async function signPaystackBody(
  secretKey: string,
  body: string | Uint8Array,
): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secretKey),
    { name: "HMAC", hash: "SHA-512" },
    false,
    ["sign"],
  );
  const bytes = typeof body === "string" ? encoder.encode(body) : body;
  return toHex(
    await crypto.subtle.sign("HMAC", key, bytes as Uint8Array<ArrayBuffer>),
  );
}

/** The exact bytes Paystack sends: JSON of {event, data}. */
export function eventBody(event: string, data: unknown): string {
  return JSON.stringify({ event, data });
}

export interface Attempt {
  attempt: number;
  url: string;
  status_code: number | null;
  error: string | null;
  at: string;
  duration_ms: number;
  /** first 500 characters of the receiver's answer */
  response_body: string | null;
}

export type DeliveryStatus =
  | "pending"
  | "retrying"
  | "delivered"
  | "failed"
  | "cancelled";

export interface Delivery {
  id: number;
  event: string;
  reference: string | null;
  body: string;
  /** the header value sent, or null when sent without the header */
  signature: string | null;
  status: DeliveryStatus;
  attempts: Attempt[];
  /** 1 + number of retry delays configured when the delivery was queued */
  max_attempts: number;
  next_attempt_at: string | null;
  created_at: string;
  finished_at: string | null;
  /** how it came about: "charge", "refund", "dispute", "replay", "reorder", "send" */
  source: string;
}

export interface DeliveryConfig {
  url: string;
  retryMs: number[];
  timeoutMs: number;
}

export interface DispatchInput {
  event: string;
  reference: string | null;
  body: string;
  signature: string | null;
  source: string;
}

export interface Dispatched {
  delivery: Delivery;
  /** settles when the first attempt has finished (never rejects) */
  first: Promise<Attempt>;
}

export class WebhookDispatcher {
  deliveries: Delivery[] = [];
  #nextId = 1;
  #timers = new Set<ReturnType<typeof setTimeout>>();
  #abort = new AbortController();

  constructor(
    private config: () => DeliveryConfig,
    private log: (line: string) => void = () => {},
  ) {}

  dispatch(input: DispatchInput): Dispatched {
    const cfg = this.config();
    const delivery: Delivery = {
      id: this.#nextId++,
      event: input.event,
      reference: input.reference,
      body: input.body,
      signature: input.signature,
      status: "pending",
      attempts: [],
      max_attempts: 1 + cfg.retryMs.length,
      next_attempt_at: null,
      created_at: new Date().toISOString(),
      finished_at: null,
      source: input.source,
    };
    this.deliveries.push(delivery);
    const retryMs = [...cfg.retryMs];
    const signal = this.#abort.signal;
    const first = this.#attempt(delivery, retryMs, signal);
    return { delivery, first };
  }

  async #attempt(
    d: Delivery,
    retryMs: number[],
    signal: AbortSignal,
  ): Promise<Attempt> {
    const cfg = this.config();
    const n = d.attempts.length + 1;
    const started = Date.now();
    const attempt: Attempt = {
      attempt: n,
      url: cfg.url,
      status_code: null,
      error: null,
      at: new Date(started).toISOString(),
      duration_ms: 0,
      response_body: null,
    };
    try {
      const headers: Record<string, string> = {
        "content-type": "application/json",
        "user-agent": "Paystack-Emulator/1.0",
      };
      if (d.signature !== null) headers["x-paystack-signature"] = d.signature;
      const res = await fetch(cfg.url, {
        method: "POST",
        headers,
        body: d.body,
        signal: AbortSignal.any([signal, AbortSignal.timeout(cfg.timeoutMs)]),
      });
      attempt.status_code = res.status;
      const text = await res.text().catch(() => "");
      attempt.response_body = text.slice(0, 500);
      if (res.status !== 200) attempt.error = `HTTP ${res.status}`;
    } catch (err) {
      attempt.error = describeError(err);
    }
    attempt.duration_ms = Date.now() - started;
    if (signal.aborted) {
      d.status = "cancelled";
      return attempt;
    }
    d.attempts.push(attempt);
    this.log(
      `webhook ${d.event} ${d.reference ?? "-"} attempt ${n}: ${
        attempt.status_code ?? attempt.error
      }`,
    );
    if (attempt.status_code === 200) {
      d.status = "delivered";
      d.next_attempt_at = null;
      d.finished_at = new Date().toISOString();
    } else if (n <= retryMs.length) {
      const delay = retryMs[n - 1];
      d.status = "retrying";
      d.next_attempt_at = new Date(Date.now() + delay).toISOString();
      const t = setTimeout(() => {
        this.#timers.delete(t);
        if (!signal.aborted) void this.#attempt(d, retryMs, signal);
      }, delay);
      this.#timers.add(t);
    } else {
      d.status = "failed"; // gave up
      d.next_attempt_at = null;
      d.finished_at = new Date().toISOString();
    }
    return attempt;
  }

  /** Last delivery of `event` for `reference` (the body a replay re-sends). */
  last(reference: string, event: string): Delivery | undefined {
    for (let i = this.deliveries.length - 1; i >= 0; i--) {
      const d = this.deliveries[i];
      if (d.reference === reference && d.event === event) return d;
    }
    return undefined;
  }

  list(
    filter: { reference?: string | null; event?: string | null },
  ): Delivery[] {
    return this.deliveries.filter((d) =>
      (!filter.reference || d.reference === filter.reference) &&
      (!filter.event || d.event === filter.event)
    );
  }

  /** Cancels every pending retry and in-flight attempt and forgets all deliveries. */
  clear(): void {
    this.#abort.abort();
    this.#abort = new AbortController();
    for (const t of this.#timers) clearTimeout(t);
    this.#timers.clear();
    for (const d of this.deliveries) {
      if (d.status === "pending" || d.status === "retrying") {
        d.status = "cancelled";
      }
    }
    this.deliveries = [];
  }
}

function describeError(err: unknown): string {
  if (err instanceof Error) {
    if (err.name === "TimeoutError") return "timeout";
    const cause = (err as { cause?: unknown }).cause;
    const causeMsg = cause instanceof Error ? `: ${cause.message}` : "";
    return `${err.name}: ${err.message}${causeMsg}`;
  }
  return String(err);
}
