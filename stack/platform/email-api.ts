// The local stack's email API: a Resend-compatible capture at /_stack/email-api (what EMAIL_API_URL points
// at on this stack, stack/local-env.ts). POST /emails with `Authorization: Bearer <EMAIL_API_KEY>` and
// Resend's fields (from, to, subject, html, text) answers {"id": ...} and writes the message to the stack's
// outbox (stack/platform/mail.ts, shown at /_stack/mail), as https://resend.com/docs/api-reference/emails/send-email
// describes. A repeated Idempotency-Key answers the first id and writes nothing
// (https://resend.com/docs/dashboard/emails/idempotency-keys); the same key with another message is 409.
//
// For tests: POST /_stack/email-api/fail {"to": address, "times": N, "status": 500} makes the next N sends
// to that address fail with that status (per address, so tests running at once do not interfere).
// Test infrastructure only: never deployed.
import { json } from "./http.ts";
import { sendMail } from "./mail.ts";

interface Sent {
  id: string;
  fingerprint: string;
}
const byKey = new Map<string, Sent>(); // Idempotency-Key -> the first answer (the gateway's lifetime, like the outbox)
const failures = new Map<string, { times: number; status: number }>();

const error = (status: number, name: string, message: string) => json({ statusCode: status, name, message }, status);

function recipients(to: unknown): string[] | null {
  const list = typeof to === "string" ? [to] : to;
  if (!Array.isArray(list) || list.length === 0 || list.length > 50) return null;
  return list.every((a) => typeof a === "string" && /^[^\s@]+@[^\s@]+$/.test(a))
    ? list.map((a) => a.toLowerCase())
    : null;
}

/** The message's first http(s) link: the dashboard link of a notification email. */
const firstLink = (text: string) => /https?:\/\/\S+/.exec(text)?.[0] ?? "";

async function send(req: Request): Promise<Response> {
  const key = Deno.env.get("EMAIL_API_KEY");
  const auth = req.headers.get("authorization") ?? "";
  if (!auth.startsWith("Bearer ")) return error(401, "missing_api_key", "Missing API key in the authorization header.");
  if (!key || auth.slice(7) !== key) return error(403, "invalid_api_key", "API key is invalid");
  const body = await req.json().catch(() => null) as Record<string, unknown> | null;
  const to = recipients(body?.to);
  if (!body || typeof body.from !== "string" || !to || typeof body.subject !== "string") {
    return error(422, "validation_error", "from, to and subject are required");
  }
  if (typeof body.text !== "string" && typeof body.html !== "string") {
    return error(422, "validation_error", "one of html or text is required");
  }
  const failing = failures.get(to[0]);
  if (failing && failing.times > 0) {
    failing.times--;
    return error(failing.status, "application_error", "capture told to fail (POST /_stack/email-api/fail)");
  }
  const idem = req.headers.get("idempotency-key");
  const fingerprint = JSON.stringify([body.from, to, body.subject, body.text, body.html]);
  const earlier = idem ? byKey.get(idem) : undefined;
  if (earlier) {
    if (earlier.fingerprint !== fingerprint) {
      return error(409, "invalid_idempotent_request", "Same idempotency key used with a different request payload.");
    }
    return json({ id: earlier.id });
  }
  const text = typeof body.text === "string" ? body.text : String(body.html).replace(/<[^>]*>/g, " ");
  const mail = sendMail({
    to: to[0],
    subject: body.subject,
    type: "notification",
    link: firstLink(text),
    text,
    from: body.from,
    ...(idem ? { idempotency_key: idem } : {}),
  });
  if (idem) byKey.set(idem, { id: mail.id, fingerprint });
  return json({ id: mail.id });
}

/** POST /_stack/email-api/emails (the capture) and POST /_stack/email-api/fail (the failure toggle). */
export async function emailApiRoute(req: Request, path: string): Promise<Response> {
  if (req.method !== "POST") return json({ message: "use POST" }, 405);
  if (path === "/_stack/email-api/emails") return await send(req);
  if (path === "/_stack/email-api/fail") {
    const b = await req.json().catch(() => null) as { to?: unknown; times?: unknown; status?: unknown } | null;
    const to = recipients(b?.to);
    const times = Number(b?.times ?? 1), status = Number(b?.status ?? 500);
    if (!to || !Number.isInteger(times) || times < 0 || !Number.isInteger(status) || status < 400 || status > 599) {
      return json({ message: 'send {"to": address, "times": N, "status": 4xx or 5xx}' }, 400);
    }
    failures.set(to[0], { times, status });
    return json({ to: to[0], times, status });
  }
  return json({ message: "not found" }, 404);
}
