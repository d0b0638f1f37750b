// Who is calling checkout and rotate-key: the signed-in user behind the request's access token, verified
// here because verify_jwt is off for every function (the platform check accepts neither the new API keys
// nor asymmetric user tokens; see supabase/config.toml).
//
//   asymmetric token (ES256, RS256 or EdDSA, header kid): checked locally against the project's public keys,
//     SUPABASE_JWKS when it has keys, else <SUPABASE_URL>/auth/v1/.well-known/jwks.json (cached per
//     isolate, fetched again for a kid it does not know): issuer, audience "authenticated", expiry.
//   HS256 token (a project still on the legacy JWT secret, whose JWKS publishes no symmetric key): Auth
//     is asked (GET /auth/v1/user), as supabase-js getClaims() does.
// Either way the claims must say role "authenticated" with a uuid sub and session_id, and the session must
// still exist (private.session_is_active, one database round trip): a token alone stays valid until its
// exp even after the user signed out.
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  errors,
  type JWTPayload,
  jwtVerify,
  type JWTVerifyGetKey,
} from "jose";
import { config, publishableKey } from "./config.ts";
import { db } from "./db.ts";
import { bearerToken, HttpError } from "./http.ts";

export interface CallerUser {
  id: string;
  sessionId: string;
}

// The asymmetric algorithms of Supabase's JWT signing keys (https://supabase.com/docs/guides/auth/signing-keys).
const ASYMMETRIC = ["ES256", "RS256", "EdDSA"];
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const AUTH_TIMEOUT_MS = 5000;

const notSignedIn = (why: string) =>
  new HttpError(401, "not_signed_in", `your session is not valid (${why}); sign in again`);
const authUnavailable = () => new HttpError(503, "auth_unavailable", "could not check your session; try again");

let keySets: { local?: JWTVerifyGetKey; remote: JWTVerifyGetKey } | undefined;

/** The project's public signing keys: the injected set, and the discovery endpoint behind it (per isolate). */
function projectKeys(): { local?: JWTVerifyGetKey; remote: JWTVerifyGetKey } {
  if (!keySets) {
    const c = config();
    keySets = {
      local: c.SUPABASE_JWKS?.keys.length
        ? createLocalJWKSet(c.SUPABASE_JWKS as Parameters<typeof createLocalJWKSet>[0])
        : undefined,
      // jose caches the set and fetches it again when a token names a kid it does not hold (a new key
      // rotated in), at most every 30 s.
      remote: createRemoteJWKSet(new URL(`${authUrl()}/.well-known/jwks.json`), {
        timeoutDuration: AUTH_TIMEOUT_MS,
        cooldownDuration: 30_000,
      }),
    };
  }
  return keySets;
}

function authUrl(): string {
  return `${config().SUPABASE_URL.replace(/\/+$/, "")}/auth/v1`;
}

/** Signature, issuer, audience and expiry of an asymmetric token. */
async function verifyAsymmetric(token: string): Promise<JWTPayload> {
  const options = {
    issuer: authUrl(),
    audience: "authenticated",
    algorithms: ASYMMETRIC,
    requiredClaims: ["exp", "sub"],
  };
  const { local, remote } = projectKeys();
  try {
    if (local) {
      try {
        return (await jwtVerify(token, local, options)).payload;
      } catch (e) {
        if (!(e instanceof errors.JWKSNoMatchingKey)) throw e; // a key newer than the injected set: ask the endpoint
      }
    }
    return (await jwtVerify(token, remote, options)).payload;
  } catch (e) {
    if (e instanceof errors.JWTExpired) throw notSignedIn("expired");
    if (e instanceof errors.JWKSTimeout || e instanceof errors.JWKSInvalid || e instanceof TypeError) {
      throw authUnavailable();
    }
    if (e instanceof errors.JOSEError) {
      throw notSignedIn(e instanceof errors.JWTClaimValidationFailed ? `${e.claim} claim` : "signature");
    }
    throw e;
  }
}

/** A legacy HS256 token: the claims we can check without the secret, then Auth decides (it also checks the session). */
async function verifyWithAuth(token: string): Promise<JWTPayload> {
  const claims = decodeJwt(token);
  const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (typeof claims.exp !== "number" || claims.exp * 1000 <= Date.now()) throw notSignedIn("expired");
  if (!aud.includes("authenticated")) throw notSignedIn("aud claim");
  if (claims.iss !== authUrl()) throw notSignedIn("iss claim");
  let res: Response;
  try {
    res = await fetch(`${authUrl()}/user`, {
      headers: { apikey: publishableKey(), Authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(AUTH_TIMEOUT_MS),
    });
  } catch {
    throw authUnavailable();
  }
  const body = await res.json().catch(() => null) as { id?: string; error_code?: string } | null;
  if (res.status >= 500) throw authUnavailable();
  if (!res.ok || body?.id !== claims.sub) {
    throw notSignedIn(body?.error_code === "session_not_found" ? "signed out" : "refused by Auth");
  }
  return claims;
}

/** The signed-in user of the request, or 401 (503 when the keys or Auth cannot be reached). */
export async function requireUser(req: Request): Promise<CallerUser> {
  const token = bearerToken(req);
  if (!token) throw new HttpError(401, "not_signed_in", "sign in first");
  let alg: string | undefined;
  let unverified: JWTPayload;
  try {
    alg = decodeProtectedHeader(token).alg;
    unverified = decodeJwt(token);
  } catch {
    throw notSignedIn("not a JWT"); // e.g. an API key sent as a user token
  }
  // Refused before any signature check or round trip (the anon and service_role keys are JWTs too);
  // once the signature is verified, these same claims are trusted.
  if (unverified.role !== "authenticated") throw notSignedIn("not a user token");
  let claims: JWTPayload & { session_id?: unknown };
  if (alg && ASYMMETRIC.includes(alg)) claims = await verifyAsymmetric(token);
  else if (alg === "HS256") claims = await verifyWithAuth(token);
  else throw notSignedIn(`algorithm ${alg ?? "missing"}`);
  const sub = claims.sub ?? "";
  const sessionId = typeof claims.session_id === "string" ? claims.session_id : "";
  if (!UUID.test(sub) || !UUID.test(sessionId)) throw notSignedIn("sub or session_id claim");
  const [{ active }] = await db()<
    { active: boolean }[]
  >`select private.session_is_active(${sessionId}, ${sub}) as active`;
  if (!active) throw notSignedIn("signed out");
  return { id: sub, sessionId };
}
