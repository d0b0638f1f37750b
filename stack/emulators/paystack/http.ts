// Small HTTP helpers shared by the API, checkout and admin handlers.

export function json(status: number, body: unknown): Response {
  return Response.json(body, { status });
}

export function fail(status: number, message: string, extra: Record<string, unknown> = {}): Response {
  return json(status, { status: false, message, ...extra });
}

/** A refusal with Paystack's error body; thrown anywhere, answered by the handler. */
export class PaystackError extends Error {
  constructor(public httpStatus: number, message: string, public extra: Record<string, unknown> = {}) {
    super(message);
  }
}

/** Reads a JSON or form-encoded body into a plain object. Empty body -> {}. */
export async function readBody(req: Request): Promise<Record<string, unknown>> {
  const text = await req.text();
  if (text.trim() === "") return {};
  if ((req.headers.get("content-type") ?? "").includes("application/x-www-form-urlencoded")) {
    return Object.fromEntries(new URLSearchParams(text));
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new PaystackError(400, "Invalid JSON body");
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) {
    throw new PaystackError(400, "Request body must be a JSON object");
  }
  return parsed as Record<string, unknown>;
}

/** Checks `Authorization: Bearer <secret>` in constant time. */
export function hasBearer(req: Request, secret: string): boolean {
  const m = /^Bearer\s+(.+)$/i.exec((req.headers.get("authorization") ?? "").trim());
  const a = new TextEncoder().encode(m?.[1].trim() ?? "");
  const b = new TextEncoder().encode(secret);
  let diff = a.length ^ b.length;
  for (let i = 0; i < a.length && i < b.length; i++) diff |= a[i] ^ b[i];
  return m !== null && diff === 0;
}

/** Runs a route; a PaystackError becomes its response, anything else a 500. */
export async function answer(what: string, route: () => Promise<Response>): Promise<Response> {
  try {
    return await route();
  } catch (e) {
    if (e instanceof PaystackError) return fail(e.httpStatus, e.message, e.extra);
    console.error(`paystack emulator: ${what} error: ${e instanceof Error ? e.stack : e}`);
    return fail(500, "Internal emulator error");
  }
}

/** A non-negative integer (subunits, milliseconds) given as a number or a string of digits; null otherwise. */
export function parseSubunits(v: unknown): number | null {
  const n = typeof v === "number" ? v : typeof v === "string" && /^\d+$/.test(v.trim()) ? Number(v) : NaN;
  return Number.isSafeInteger(n) && n >= 0 ? n : null;
}

/** Whether a request field was given at all (Paystack ignores null and "" like a missing field). */
export const given = (v: unknown) => v !== undefined && v !== null && v !== "";

export function escapeHtml(s: string): string {
  const entities: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };
  return s.replace(/[&<>"']/g, (c) => entities[c]);
}
