// JWTs and API keys as hosted Supabase checks them: HS256 with the project's JWT secret, and an `apikey`
// that must be one of the project's keys (hosted's API gateway rejects anything else before Auth/REST).
import { errors, jwtVerify, type JWTPayload, SignJWT } from "jose";
import { json } from "./http.ts";

const env = (k: string) => {
  const v = Deno.env.get(k);
  if (!v) throw new Error(`gateway: ${k} is not set (start it through stack/main.ts)`);
  return v;
};

export const SECRET = new TextEncoder().encode(env("SUPABASE_JWT_SECRET"));
export const ANON_KEY = env("SUPABASE_ANON_KEY");
export const SERVICE_KEY = env("SUPABASE_SERVICE_ROLE_KEY");
export const SUPABASE_URL = env("SUPABASE_URL");

export type Claims = JWTPayload & { role?: string; session_id?: string; email?: string };

export type Verified = { ok: true; claims: Claims } | { ok: false; expired: boolean; message: string };

export async function verifyJwt(token: string): Promise<Verified> {
  try {
    const { payload } = await jwtVerify(token, SECRET, { algorithms: ["HS256"] });
    return { ok: true, claims: payload as Claims };
  } catch (e) {
    const expired = e instanceof errors.JWTExpired;
    return { ok: false, expired, message: expired ? "JWT expired" : (e as Error).message };
  }
}

export async function signJwt(claims: Record<string, unknown>, iat: number, exp: number): Promise<string> {
  return await new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .sign(SECRET);
}

/** Hosted's gateway (Kong key-auth) in front of /auth/v1 and /rest/v1: undefined when the key is fine. */
export function checkApiKey(req: Request): Response | undefined {
  const key = req.headers.get("apikey") ?? new URL(req.url).searchParams.get("apikey");
  if (!key) {
    return json({ message: "No API key found in request", hint: "No `apikey` request header or url param was found." }, 401);
  }
  if (key !== ANON_KEY && key !== SERVICE_KEY) {
    return json({ message: "Invalid API key", hint: "Double check your Supabase `anon` or `service_role` API key." }, 401);
  }
  return undefined;
}
