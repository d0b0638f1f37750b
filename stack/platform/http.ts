// Small HTTP helpers shared by the gateway's stand-ins.

/** What hosted Supabase's API gateway answers to browsers (the dashboard runs on another origin). */
export const CORS_HEADERS: Record<string, string> = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Headers":
    "authorization, apikey, content-type, x-client-info, prefer, accept, range, accept-profile, content-profile, x-supabase-api-version, x-retry-count",
  "Access-Control-Allow-Methods": "GET, POST, PATCH, DELETE, OPTIONS",
  "Access-Control-Expose-Headers": "content-range, content-location, preference-applied, x-supabase-api-version",
};

export function withCors(res: Response): Response {
  for (const [k, v] of Object.entries(CORS_HEADERS)) res.headers.set(k, v);
  return res;
}

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

/** A body that is already JSON text (built by Postgres): passed through untouched so numbers keep their precision. */
export function rawJson(text: string | null, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(text, { status, headers: { "content-type": "application/json; charset=utf-8", ...headers } });
}

export function bearer(req: Request): string | undefined {
  const m = /^Bearer\s+(.+)$/i.exec(req.headers.get("authorization") ?? "");
  return m?.[1].trim();
}

export function log(msg: string) {
  console.log(`${new Date().toISOString().slice(11, 23)} ${msg}`);
}
