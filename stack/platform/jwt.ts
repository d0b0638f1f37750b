// API keys and JWTs as hosted Supabase's API gateway and Auth treat them, in the stack's two key modes
// (STACK_KEYS, see stack/local-env.ts):
//   new     apikey sb_publishable_... (role anon) or sb_secret_... (role service_role; refused from a
//           browser); user JWTs signed ES256 with a kid, public key served as JWKS; no legacy JWT key works.
//   legacy  apikey = the anon or service_role key, themselves HS256 JWTs; user JWTs HS256.
// The API keys come from the env hosted injects into functions; the signing key or JWT secret from the
// stack's private file (PLATFORM_KEYS_FILE), never from env.
// Sources: https://supabase.com/docs/guides/api/api-keys, https://supabase.com/docs/guides/auth/signing-keys
import { createLocalJWKSet, errors, importJWK, type JWK, type JWTPayload, jwtVerify, SignJWT } from "jose";
import { PLATFORM_KEYS_FILE, type PlatformKeys } from "../local-env.ts";
import { bearer, json } from "./http.ts";

const env = (k: string) => {
  const v = Deno.env.get(k);
  if (!v) throw new Error(`gateway: ${k} is not set (start it through stack/main.ts)`);
  return v;
};
const namedKeys = (k: string) => Object.values(JSON.parse(env(k)) as Record<string, string>);

const platform = JSON.parse(Deno.readTextFileSync(PLATFORM_KEYS_FILE)) as PlatformKeys;
export const MODE = platform.mode;
export const SUPABASE_URL = env("SUPABASE_URL");

const PUBLISHABLE = MODE === "new" ? namedKeys("SUPABASE_PUBLISHABLE_KEYS") : [env("SUPABASE_ANON_KEY")];
const SECRET = MODE === "new" ? namedKeys("SUPABASE_SECRET_KEYS") : [env("SUPABASE_SERVICE_ROLE_KEY")];

// new: the ES256 pair (public half = the JWKS Auth serves); legacy: the shared secret, and no public key.
const signing = platform.signing_key;
const { d: _private, ...publicJwk } = signing ?? ({} as JWK);
export const JWKS = { keys: signing ? [{ ...publicJwk, use: "sig" }] : [] };
const ALG = signing ? "ES256" : "HS256";
const secret = new TextEncoder().encode(platform.jwt_secret ?? "");
const signKey = signing ? await importJWK(signing, ALG) : secret;
const publicKeys = createLocalJWKSet(JWKS);
const verify = (token: string) =>
  signing ? jwtVerify(token, publicKeys, { algorithms: [ALG] }) : jwtVerify(token, secret, { algorithms: [ALG] });

export type Claims = JWTPayload & { role?: string; session_id?: string; email?: string };

export type Verified = { ok: true; claims: Claims } | { ok: false; expired: boolean; message: string };

/** A JWT signed with the project's current key (ES256 in new mode, HS256 in legacy mode). */
export async function verifyJwt(token: string): Promise<Verified> {
  try {
    const { payload } = await verify(token);
    return { ok: true, claims: payload as Claims };
  } catch (e) {
    const expired = e instanceof errors.JWTExpired;
    return { ok: false, expired, message: expired ? "JWT expired" : (e as Error).message };
  }
}

export async function signJwt(claims: Record<string, unknown>, iat: number, exp: number): Promise<string> {
  return await new SignJWT(claims)
    .setProtectedHeader(signing ? { alg: ALG, kid: signing.kid, typ: "JWT" } : { alg: ALG, typ: "JWT" })
    .setIssuedAt(iat)
    .setExpirationTime(exp)
    .sign(signKey);
}

/** The edge runtime's verify_jwt: it only knows the legacy JWT secret, so in new mode nothing passes. */
export async function platformVerifyJwt(token: string): Promise<boolean> {
  return MODE === "legacy" && (await verifyJwt(token)).ok;
}

/** A secret API key (new) or the service_role key (legacy). */
export function isServiceKey(value: string | null | undefined): boolean {
  return !!value && SECRET.includes(value);
}

function apiKeyOf(req: Request): string | null {
  return req.headers.get("apikey") ?? new URL(req.url).searchParams.get("apikey");
}

/** Hosted's API gateway in front of /auth/v1 and /rest/v1: undefined when the key is fine. */
export function checkApiKey(req: Request): Response | undefined {
  const key = apiKeyOf(req);
  if (!key) {
    return json(
      { message: "No API key found in request", hint: "No `apikey` request header or url param was found." },
      401,
    );
  }
  if (!PUBLISHABLE.includes(key) && !SECRET.includes(key)) {
    return json({ message: "Invalid API key", hint: "Double check your Supabase API key." }, 401);
  }
  // Hosted refuses a secret key sent by a browser (it matches on the User-Agent).
  if (MODE === "new" && SECRET.includes(key) && /^Mozilla\//.test(req.headers.get("user-agent") ?? "")) {
    return json({ message: "Forbidden use of secret API key in browser" }, 401);
  }
  return undefined;
}

/**
 * The role a request runs as, after checkApiKey: a user JWT in Authorization decides; with none (or the
 * same sb_ key there, as supabase-js sends it) the apikey's role. Legacy: the apikey is itself a JWT.
 */
export async function authenticate(
  req: Request,
): Promise<{ ok: true; role: string; claims: Claims } | Verified & { ok: false }> {
  const key = apiKeyOf(req)!;
  const token = bearer(req);
  if (MODE === "new" && (!token || token === key)) {
    const role = SECRET.includes(key) ? "service_role" : "anon";
    return { ok: true, role, claims: { role } };
  }
  const v = await verifyJwt(token ?? key);
  return v.ok ? { ok: true, role: v.claims.role ?? "anon", claims: v.claims } : v;
}
