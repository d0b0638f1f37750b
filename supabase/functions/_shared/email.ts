// The one place that calls the email API: POST <EMAIL_API_URL>/emails, Resend's shape
// (https://resend.com/docs/api-reference/emails/send-email): Bearer key; from, to, subject, html, text;
// the answer {"id": ...}. Every request carries the email's own Idempotency-Key: the provider answers a
// repeated key with the first answer and sends nothing again, for 24 hours
// (https://resend.com/docs/dashboard/emails/idempotency-keys), so a run that died after the provider
// accepted an email cannot send it twice on the retry.
//
// The key is a secret and an address is personal: neither is logged or returned in an error (errors are
// reduced to "http <status>" / "timeout" / "unreachable"; fetch errors name the URL).
import { config } from "./config.ts";

export interface Email {
  to: string;
  subject: string;
  text: string;
  html: string;
  idempotencyKey: string;
}

/** ok: the provider's email id. Not ok: retry (429, 409 in flight, 5xx, no answer) or give up (other 4xx). */
export type SendResult = { ok: true; id: string } | { ok: false; error: string; retry: boolean };

/** Whether emails can be sent at all (a key and a sender); unset, notifications stay in the dashboard. */
export function emailConfigured(): boolean {
  const c = config();
  return Boolean(c.EMAIL_API_KEY && c.EMAIL_FROM);
}

export async function sendEmail(email: Email): Promise<SendResult> {
  const c = config();
  if (!c.EMAIL_API_KEY || !c.EMAIL_FROM) return { ok: false, error: "email is not configured", retry: false };
  try {
    const res = await fetch(`${c.EMAIL_API_URL.replace(/\/+$/, "")}/emails`, {
      method: "POST",
      headers: {
        "Authorization": `Bearer ${c.EMAIL_API_KEY}`,
        "Content-Type": "application/json",
        "Idempotency-Key": email.idempotencyKey,
      },
      body: JSON.stringify({
        from: c.EMAIL_FROM,
        to: [email.to],
        subject: email.subject,
        html: email.html,
        text: email.text,
      }),
      signal: AbortSignal.timeout(c.EMAIL_API_TIMEOUT_MS),
    });
    const body = await res.json().catch(() => null) as { id?: unknown } | null;
    if (res.ok && typeof body?.id === "string" && body.id) return { ok: true, id: body.id };
    if (res.ok) return { ok: false, error: "answer without an id", retry: true };
    // 409: the same key is still being processed (retry later) or was used for another email (never resolves,
    // but retrying costs nothing and gives up after the attempts).
    return {
      ok: false,
      error: `http ${res.status}`,
      retry: res.status >= 500 || res.status === 429 || res.status === 409,
    };
  } catch (e) {
    const timeout = e instanceof DOMException && (e.name === "TimeoutError" || e.name === "AbortError");
    return { ok: false, error: timeout ? `no answer within ${c.EMAIL_API_TIMEOUT_MS} ms` : "unreachable", retry: true };
  }
}
