// GoTrue (Supabase Auth) stand-in at /auth/v1: email + password only, confirmations off, GoTrue's
// response and error shapes (the legacy {code, error_code, msg} form that auth-js reads), users in
// auth.users, sessions in auth.sessions, rotating refresh tokens in auth.refresh_tokens.
import { adminSql, type Tx } from "./db.ts";
import { bearer, json, log } from "./http.ts";
import { authenticate, checkApiKey, JWKS, signJwt, SUPABASE_URL, verifyJwt } from "./jwt.ts";

const sql = adminSql(5, "stack-gateway-auth");

const EXPIRES_IN = 3600;
const REUSE_INTERVAL_S = 10; // GoTrue's refresh_token_reuse_interval: parallel tabs may refresh with the same token
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

class AuthError extends Error {
  constructor(readonly status: number, readonly code: string, msg: string, readonly extra: Record<string, unknown> = {}) {
    super(msg);
  }
}
const fail = (status: number, code: string, msg: string, extra?: Record<string, unknown>): never => {
  throw new AuthError(status, code, msg, extra);
};

// deno-lint-ignore no-explicit-any
type Row = Record<string, any>;
const iso = (d: Date | null | undefined) => (d ? new Date(d).toISOString() : null);

function userJson(u: Row) {
  return {
    id: u.id,
    aud: u.aud,
    role: u.role,
    email: u.email,
    email_confirmed_at: iso(u.email_confirmed_at),
    phone: u.phone ?? "",
    confirmed_at: iso(u.confirmed_at),
    last_sign_in_at: iso(u.last_sign_in_at),
    app_metadata: u.raw_app_meta_data ?? {},
    user_metadata: u.raw_user_meta_data ?? {},
    identities: [],
    created_at: iso(u.created_at),
    updated_at: iso(u.updated_at),
    is_anonymous: u.is_anonymous ?? false,
  };
}

function newRefreshToken(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
}

/** The response of every successful sign-in: GoTrue's AccessTokenResponse. */
async function sessionJson(user: Row, session: Row, refreshToken: string) {
  const iat = Math.floor(Date.now() / 1000);
  const exp = iat + EXPIRES_IN;
  const access_token = await signJwt({
    iss: `${SUPABASE_URL}/auth/v1`,
    aud: "authenticated",
    sub: user.id,
    email: user.email,
    phone: user.phone ?? "",
    role: user.role ?? "authenticated",
    app_metadata: user.raw_app_meta_data ?? {},
    user_metadata: user.raw_user_meta_data ?? {},
    aal: "aal1",
    amr: [{ method: "password", timestamp: Math.floor(new Date(session.created_at).getTime() / 1000) }],
    session_id: session.id,
    is_anonymous: user.is_anonymous ?? false,
  }, iat, exp);
  return { access_token, token_type: "bearer", expires_in: EXPIRES_IN, expires_at: exp, refresh_token: refreshToken, user: userJson(user) };
}

async function startSession(tx: Tx, user: Row) {
  const [session] = await tx`insert into auth.sessions (id, user_id) values (gen_random_uuid(), ${user.id}) returning *`;
  const token = newRefreshToken();
  await tx`insert into auth.refresh_tokens (token, user_id, session_id) values (${token}, ${user.id}, ${session.id})`;
  const [fresh] = await tx`update auth.users set last_sign_in_at = now(), updated_at = now() where id = ${user.id} returning *`;
  return await sessionJson(fresh, session, token);
}

async function body(req: Request): Promise<Row> {
  try {
    const b = await req.json();
    return b && typeof b === "object" ? b : {};
  } catch (e) {
    return fail(400, "bad_json", `Could not parse request body as JSON: ${(e as Error).message}`);
  }
}

function checkPassword(password: unknown): string {
  if (typeof password !== "string" || password === "") return fail(422, "validation_failed", "Signup requires a valid password");
  if (password.length < 6) {
    return fail(422, "weak_password", "Password should be at least 6 characters.", { weak_password: { reasons: ["length"] } });
  }
  return password;
}

function checkEmail(email: unknown): string {
  if (typeof email !== "string" || email.trim() === "") return fail(400, "validation_failed", "To signup, please provide your email");
  if (!/^[^\s@]+@[^\s@]+$/.test(email.trim())) return fail(400, "validation_failed", "Unable to validate email address: invalid format");
  return email.trim().toLowerCase();
}

/** Inserts the user as GoTrue does; the project's auth.users triggers (handle_new_user) run in this transaction. */
async function insertUser(tx: Tx, email: string, password: string, userMeta: unknown, appMeta: Row, confirmed: boolean) {
  const [u] = await tx`
    insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
                            raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
    values ('00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated', 'authenticated', ${email},
            extensions.crypt(${password}, extensions.gen_salt('bf')), case when ${confirmed}::boolean then now() end,
            ${sql.json(appMeta)}, ${sql.json((userMeta && typeof userMeta === "object" ? userMeta : {}) as Row)}, now(), now())
    returning *`;
  return u;
}

/** A failure inside the insert is GoTrue's "Database error saving new user", unless it is the email's own unique index. */
function savingUserFailed(e: unknown, existsCode: string, existsMsg: string): never {
  if (e instanceof AuthError) throw e;
  const pg = e as { code?: string; constraint_name?: string; message?: string; where?: string };
  if (pg.code === "23505" && pg.constraint_name === "users_email_partial_key") fail(422, existsCode, existsMsg);
  log(`auth: saving new user failed: ${pg.code ?? ""} ${pg.message ?? e}${pg.where ? ` (${pg.where.split("\n")[0]})` : ""}`);
  return fail(500, "unexpected_failure", "Database error saving new user");
}

async function signup(req: Request) {
  const b = await body(req);
  const email = checkEmail(b.email);
  const password = checkPassword(b.password);
  try {
    return await sql.begin(async (tx) => {
      const [exists] = await tx`select 1 from auth.users where email = ${email}`;
      if (exists) fail(422, "user_already_exists", "User already registered");
      const user = await insertUser(tx, email, password, b.data, { provider: "email", providers: ["email"] }, true);
      return json(await startSession(tx, user));
    });
  } catch (e) {
    savingUserFailed(e, "user_already_exists", "User already registered");
  }
}

async function passwordGrant(req: Request) {
  const b = await body(req);
  const email = typeof b.email === "string" ? b.email.trim().toLowerCase() : "";
  const password = typeof b.password === "string" ? b.password : "";
  if (!email || !password) fail(400, "validation_failed", "missing email or phone");
  return await sql.begin(async (tx) => {
    const [u] = await tx`
      select u.*, case when coalesce(u.encrypted_password, '') = '' then false
                       else u.encrypted_password = extensions.crypt(${password}, u.encrypted_password) end as password_ok
        from auth.users u where u.email = ${email} and u.deleted_at is null`;
    if (!u || !u.password_ok) fail(400, "invalid_credentials", "Invalid login credentials");
    if (!u.email_confirmed_at) fail(400, "email_not_confirmed", "Email not confirmed");
    if (u.banned_until && new Date(u.banned_until) > new Date()) fail(400, "user_banned", "User is banned");
    return json(await startSession(tx, u));
  });
}

async function refreshGrant(req: Request) {
  const b = await body(req);
  const token = typeof b.refresh_token === "string" ? b.refresh_token : "";
  if (!token) fail(400, "validation_failed", "Refresh Token is missing");
  const out = await sql.begin(async (tx) => {
    const [rt] = await tx`
      select rt.*, extract(epoch from now() - rt.updated_at) as age_s from auth.refresh_tokens rt
        join auth.sessions s on s.id = rt.session_id where rt.token = ${token} for update of rt`;
    if (!rt) return "not_found" as const;
    const [session] = await tx`update auth.sessions set updated_at = now() where id = ${rt.session_id} returning *`;
    const [user] = await tx`select * from auth.users where id = ${session.user_id} and deleted_at is null`;
    if (!user) return "not_found" as const;
    let next: string;
    if (rt.revoked) {
      // GoTrue: a just-rotated token (another tab refreshed first) gets the session's current token back;
      // an older one is token reuse, which revokes the whole session (committed, hence no throw here).
      const [active] = await tx`
        select token from auth.refresh_tokens where session_id = ${rt.session_id} and not revoked order by id desc limit 1`;
      if (!active || Number(rt.age_s) > REUSE_INTERVAL_S) {
        await tx`update auth.refresh_tokens set revoked = true, updated_at = now() where session_id = ${rt.session_id}`;
        return "reused" as const;
      }
      next = active.token;
    } else {
      next = newRefreshToken();
      await tx`update auth.refresh_tokens set revoked = true, updated_at = now() where id = ${rt.id}`;
      await tx`insert into auth.refresh_tokens (token, user_id, session_id, parent) values (${next}, ${user.id}, ${session.id}, ${token})`;
    }
    return await sessionJson(user, session, next);
  });
  if (out === "not_found") fail(400, "refresh_token_not_found", "Invalid Refresh Token: Refresh Token Not Found");
  if (out === "reused") fail(400, "refresh_token_already_used", "Invalid Refresh Token: Already Used");
  return json(out);
}

/** GoTrue's requireAuthentication: a valid access token whose user and session still exist. */
async function requireUser(req: Request) {
  const token = bearer(req);
  if (!token) return fail(401, "no_authorization", "This endpoint requires a Bearer token");
  const v = await verifyJwt(token);
  if (!v.ok) {
    return fail(403, "bad_jwt", `invalid JWT: unable to parse or verify signature, ${v.expired ? "token has invalid claims: token is expired" : v.message}`);
  }
  const sub = v.claims.sub;
  if (!sub || !UUID.test(sub)) return fail(403, "bad_jwt", "invalid claim: missing sub claim");
  const [user] = await sql`select * from auth.users where id = ${sub} and deleted_at is null`;
  if (!user) return fail(403, "user_not_found", "User from sub claim in JWT does not exist");
  const sid = v.claims.session_id;
  if (sid) {
    const [s] = UUID.test(sid) ? await sql`select id from auth.sessions where id = ${sid}` : [];
    if (!s) return fail(403, "session_not_found", "Session from session_id claim in JWT does not exist");
  }
  return { user, claims: v.claims, sessionId: sid };
}

async function logout(req: Request) {
  const { user, sessionId } = await requireUser(req);
  const scope = new URL(req.url).searchParams.get("scope") ?? "global";
  // Deleting a session cascades to its refresh tokens (GoTrue's Logout does the same).
  if (scope === "local" && sessionId) await sql`delete from auth.sessions where id = ${sessionId}`;
  else if (scope === "others") await sql`delete from auth.sessions where user_id = ${user.id} and id is distinct from ${sessionId ?? null}`;
  else await sql`delete from auth.sessions where user_id = ${user.id}`;
  return new Response(null, { status: 204 });
}

/** The service-role admin endpoints tests commonly use (auth.admin.createUser / getUserById / deleteUser). */
async function admin(req: Request, path: string) {
  const caller = await authenticate(req); // a secret key, or a JWT with role service_role
  if (!caller.ok || !["service_role", "supabase_admin"].includes(caller.role)) fail(403, "not_admin", "User not allowed");
  const id = path.match(/^\/admin\/users\/([^/]+)$/)?.[1];
  if (path === "/admin/users" && req.method === "POST") {
    const b = await body(req);
    const email = checkEmail(b.email);
    const password = checkPassword(b.password);
    try {
      return await sql.begin(async (tx) => {
        const appMeta = { provider: "email", providers: ["email"], ...(b.app_metadata ?? {}) };
        return json(userJson(await insertUser(tx, email, password, b.user_metadata, appMeta, b.email_confirm === true)));
      });
    } catch (e) {
      savingUserFailed(e, "email_exists", "A user with this email address has already been registered");
    }
  }
  if (id && UUID.test(id) && req.method === "GET") {
    const [u] = await sql`select * from auth.users where id = ${id}`;
    return u ? json(userJson(u)) : fail(404, "user_not_found", "User not found");
  }
  if (id && UUID.test(id) && req.method === "DELETE") {
    try {
      const [u] = await sql`delete from auth.users where id = ${id} returning *`;
      return u ? json(userJson(u)) : fail(404, "user_not_found", "User not found");
    } catch (e) {
      if (e instanceof AuthError) throw e;
      log(`auth: deleting user ${id} failed: ${(e as Error).message}`);
      return fail(500, "unexpected_failure", "Database error deleting user");
    }
  }
  return fail(404, "not_found", "Not found");
}

const SETTINGS = {
  external: { email: true, phone: false, anonymous_users: false },
  disable_signup: false,
  mailer_autoconfirm: true,
  phone_autoconfirm: false,
  sms_provider: "",
  saml_enabled: false,
};

export async function handleAuth(req: Request, path: string): Promise<Response> {
  // The signing keys' discovery endpoint is public (no apikey): legacy HS256 projects publish no key.
  if (["/.well-known/jwks.json", "/jwks"].includes(path) && req.method === "GET") return json(JWKS, 200, { "cache-control": "public, max-age=600" });
  const keyError = checkApiKey(req);
  if (keyError) return keyError;
  try {
    const grant = new URL(req.url).searchParams.get("grant_type");
    if (path === "/health") return json({ version: "stand-in", name: "GoTrue", description: "local stand-in" });
    if (path === "/settings" && req.method === "GET") return json(SETTINGS);
    if (path === "/signup" && req.method === "POST") return await signup(req);
    if (path === "/token" && req.method === "POST") {
      if (grant === "password") return await passwordGrant(req);
      if (grant === "refresh_token") return await refreshGrant(req);
      return fail(400, "unsupported_grant_type", "unsupported_grant_type");
    }
    if (path === "/user" && req.method === "GET") return json(userJson((await requireUser(req)).user));
    if (path === "/logout" && req.method === "POST") return await logout(req);
    if (path.startsWith("/admin/")) return await admin(req, path);
    return fail(404, "not_found", `${req.method} /auth/v1${path} is not supported by the local Auth stand-in`);
  } catch (e) {
    if (e instanceof AuthError) return json({ code: e.status, error_code: e.code, msg: e.message, ...e.extra }, e.status);
    log(`auth: ${req.method} ${path} failed: ${(e as Error).message}`);
    return json({ code: 500, error_code: "unexpected_failure", msg: "Unexpected failure, please check server logs for more information" }, 500);
  }
}

export async function closeAuth() {
  await sql.end({ timeout: 2 });
}
