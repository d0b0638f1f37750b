// Request plumbing shared by every function: JSON responses, CORS, caller authentication, bounded bodies,
// validated JSON bodies, the client's IP, and the one structured log line per invocation.
import { isIP } from "node:net";
import type { z } from "zod";
import { config, ConfigError, serviceKeys } from "./config.ts";
import { log } from "./log.ts";

export const corsHeaders = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Headers": "authorization, x-client-info, apikey, content-type, x-region",
  "Access-Control-Allow-Methods": "POST, OPTIONS",
  "Access-Control-Expose-Headers": "retry-after, x-request-id",
};

export class HttpError extends Error {
  constructor(
    public status: number,
    public code: string,
    message: string,
    public headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...corsHeaders, ...headers },
  });
}

/** Constant-time comparison of two strings (length is not secret here: both sides are fixed-format). */
export function timingSafeEqual(a: string, b: string): boolean {
  const ea = new TextEncoder().encode(a);
  const eb = new TextEncoder().encode(b);
  let diff = ea.length ^ eb.length;
  const n = Math.max(ea.length, eb.length);
  for (let i = 0; i < n; i++) diff |= (ea[i] ?? 0) ^ (eb[i] ?? 0);
  return diff === 0;
}

/** The token of an `Authorization: Bearer <token>` header ("" when there is none). */
export function bearerToken(req: Request): string {
  return /^Bearer\s+(\S+)\s*$/i.exec(req.headers.get("Authorization") ?? "")?.[1] ?? "";
}

/** Whether `value` equals one of `candidates`, each compared in constant time. */
function matchesAny(value: string, candidates: string[]): boolean {
  let hit = false;
  for (const c of candidates) hit = timingSafeEqual(value, c) || hit; // no early exit: every comparison runs
  return hit;
}

/**
 * The caller is an operator: it sent a current secret key or the legacy service role key, in
 * `Authorization: Bearer` or in `apikey` (hosted Supabase wants the new keys in `apikey`; they are not JWTs).
 */
export function isServiceCaller(req: Request): boolean {
  const keys = serviceKeys();
  const sent = [bearerToken(req), req.headers.get("apikey") ?? ""].filter(Boolean);
  return keys.length > 0 && sent.some((t) => matchesAny(t, keys));
}

/** Functions called by pg_cron/pg_net or operators: the cron secret or a service key, nothing else. */
export function requireCronOrService(req: Request): "cron" | "service_role" {
  const token = bearerToken(req);
  if (token && timingSafeEqual(token, config().CRON_SECRET)) return "cron";
  if (isServiceCaller(req)) return "service_role";
  throw new HttpError(401, "unauthorized", "this function needs the cron secret or a secret API key");
}

/**
 * The request body, refused with 413 once it exceeds maxBytes: by Content-Length before reading anything,
 * else while streaming (a chunked body without a length), so an oversized body is never held in memory.
 */
export async function readBodyLimited(req: Request, maxBytes: number): Promise<Uint8Array<ArrayBuffer>> {
  const tooLarge = () => new HttpError(413, "payload_too_large", `the body is larger than ${maxBytes} bytes`);
  const declared = Number(req.headers.get("content-length") ?? NaN);
  if (declared > maxBytes) {
    await req.body?.cancel().catch(() => {});
    throw tooLarge();
  }
  const chunks: Uint8Array[] = [];
  let size = 0;
  if (req.body) {
    for await (const chunk of req.body) {
      size += chunk.byteLength;
      if (size > maxBytes) throw tooLarge(); // leaving the loop cancels the stream
      chunks.push(chunk);
    }
  }
  const out = new Uint8Array(new ArrayBuffer(size));
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.byteLength;
  }
  return out;
}

/**
 * The caller's IP address as the platform's proxy reports it: the first entry of CLIENT_IP_HEADER
 * (x-forwarded-for unless configured; README "Abuse controls" says why). null when absent or not an IP
 * literal, so nothing a client sends there is ever stored or counted unvalidated.
 */
export function clientIp(req: Request): string | null {
  const first = req.headers.get(config().CLIENT_IP_HEADER)?.split(",")[0]?.trim() ?? "";
  return isIP(first) ? first : null;
}

/**
 * The JSON body checked against schema (an empty body reads as {}): 400 invalid_json when it is not JSON,
 * 400 invalid_request when it does not fit, with `usage` (what to send) or else zod's list of what is wrong.
 */
export async function parseBody<S extends z.ZodType>(req: Request, schema: S, usage?: string): Promise<z.output<S>> {
  let raw: unknown = {};
  const text = await req.text();
  if (text.trim()) {
    try {
      raw = JSON.parse(text);
    } catch {
      throw new HttpError(400, "invalid_json", "the request body is not valid JSON");
    }
  }
  const r = schema.safeParse(raw);
  if (r.success) return r.data;
  const issues = r.error.issues.map((i) => `${i.path.join(".")}: ${i.message}`).join("; ");
  throw new HttpError(400, "invalid_request", usage ?? issues);
}

/**
 * Wraps a handler: CORS preflight, one JSON log line per invocation (function, duration, outcome,
 * request id), and errors turned into JSON answers without leaking internals.
 */
export function handler(name: string, fn: (req: Request, ctx: { requestId: string }) => Promise<Response>) {
  return async (req: Request): Promise<Response> => {
    if (req.method === "OPTIONS") return new Response(null, { status: 204, headers: corsHeaders });
    const requestId = req.headers.get("x-request-id") ?? crypto.randomUUID();
    const started = performance.now();
    let res: Response;
    let outcome = "ok";
    let error: string | undefined;
    try {
      res = await fn(req, { requestId });
      if (res.status >= 400) outcome = res.status >= 500 ? "error" : "rejected";
    } catch (e) {
      if (e instanceof HttpError) {
        outcome = e.status >= 500 ? "error" : "rejected";
        error = e.message;
        res = json({ error: e.code, message: e.message }, e.status, e.headers);
      } else if (e instanceof ConfigError) {
        // The details (which variable) go to the log only: a caller learns nothing about our setup.
        outcome = "error";
        error = e.message;
        log.error("configuration error", { function: name, request_id: requestId, error: e.message });
        res = json({ error: "misconfigured" }, 500);
      } else {
        outcome = "error";
        error = e instanceof Error ? e.message : String(e);
        res = json({
          error: "internal_error",
          message: "unexpected error; see the function logs",
          request_id: requestId,
        }, 500);
      }
    }
    log.info("invocation", {
      function: name,
      request_id: requestId,
      method: req.method,
      status: res.status,
      outcome,
      duration_ms: Math.round(performance.now() - started),
      ...(error ? { error } : {}),
    });
    res.headers.set("x-request-id", requestId);
    return res;
  };
}
