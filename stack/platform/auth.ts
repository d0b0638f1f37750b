// GoTrue (Supabase Auth) stand-in at /auth/v1: email + password, GoTrue's response and error shapes (the
// legacy {code, error_code, msg} form that auth-js reads), users in auth.users, sessions in auth.sessions,
// rotating refresh tokens in auth.refresh_tokens. Email confirmation as supabase/config.toml says
// ([auth.email] enable_confirmations): sign-up answers the user without a session and "sends" the link
// (stack/platform/mail.ts), GET /verify confirms and redirects with a session in the URL fragment, and
// password sign-in before that is refused. CAPTCHA as GoTrue's security.captcha when the stack is started
// with STACK_AUTH_CAPTCHA_SECRET. Shapes from github.com/supabase/auth: internal/api/signup.go, verify.go,
// mail.go, token.go, middleware.go (verifyCaptcha), internal/tokens/service.go (AsRedirectURL).
import { createHash, randomInt } from "node:crypto";
import { configToml } from "./config-toml.ts";
import { adminSql, type Tx } from "./db.ts";
import { bearer, json, log } from "./http.ts";
import { authenticate, checkApiKey, JWKS, signJwt, SUPABASE_URL, verifyJwt } from "./jwt.ts";
import { sendMail } from "./mail.ts";

const sql = adminSql(5, "stack-gateway-auth");

const toml = configToml();
const CONFIRMATIONS = toml.get("auth.email")?.get("enable_confirmations") === true;
// config.toml's site_url (the dashboard) on this stack's own web port: where links go back to by default.
const SITE_URL = (() => {
  const u = new URL(String(toml.get("auth")?.get("site_url") ?? "http://127.0.0.1:54323"));
  u.port = Deno.env.get("STACK_WEB_PORT") ?? u.port;
  return u.toString();
})();
const OTP_EXP_S = 86400; // GoTrue's mailer otp_exp default: a confirmation link works for a day
const MAX_FREQUENCY_S = 60; // GoTrue's smtp max_frequency default: one confirmation mail a minute per user
// The provider's siteverify is on the internet, which the local stack does not reach: with a secret set,
// a request must carry a token (GoTrue's first check); the token itself is not verified here.
const CAPTCHA_SECRET = Deno.env.get("STACK_AUTH_CAPTCHA_SECRET") ?? "";

const EXPIRES_IN = 3600;
const REUSE_INTERVAL_S = 10; // GoTrue's refresh_token_reuse_interval: parallel tabs may refresh with the same token
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

class AuthError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    msg: string,
    readonly extra: Record<string, unknown> = {},
  ) {
    super(msg);
  }
}
const fail = (status: number, code: string, msg: string, extra?: Record<string, unknown>): never => {
  throw new AuthError(status, code, msg, extra);
};

// deno-lint-ignore no-explicit-any
type Row = Record<string, any>;
const iso = (d: Date | null | undefined) => (d ? new Date(d).toISOString() : null);

/** GoTrue's User JSON: unset timestamps are left out (omitempty). */
function userJson(u: Row) {
  const optional = {
    email_confirmed_at: u.email_confirmed_at,
    confirmation_sent_at: u.confirmation_sent_at,
    confirmed_at: u.confirmed_at,
    last_sign_in_at: u.last_sign_in_at,
  };
  return {
    id: u.id,
    aud: u.aud,
    role: u.role,
    email: u.email,
    phone: u.phone ?? "",
    ...Object.fromEntries(Object.entries(optional).filter(([, v]) => v).map(([k, v]) => [k, iso(v)])),
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

type Method = "password" | "otp";

/** The response of every successful sign-in: GoTrue's AccessTokenResponse. */
async function sessionJson(user: Row, session: Row, refreshToken: string, method: Method) {
  const iat = Math.floor(Date.now() / 1000);
  const exp = iat + EXPIRES_IN;
  const access_token = await signJwt(
    {
      iss: `${SUPABASE_URL}/auth/v1`,
      aud: "authenticated",
      sub: user.id,
      email: user.email,
      phone: user.phone ?? "",
      role: user.role ?? "authenticated",
      app_metadata: user.raw_app_meta_data ?? {},
      user_metadata: user.raw_user_meta_data ?? {},
      aal: "aal1",
      amr: [{ method, timestamp: Math.floor(new Date(session.created_at).getTime() / 1000) }],
      session_id: session.id,
      is_anonymous: user.is_anonymous ?? false,
    },
    iat,
    exp,
  );
  return {
    access_token,
    token_type: "bearer",
    expires_in: EXPIRES_IN,
    expires_at: exp,
    refresh_token: refreshToken,
    user: userJson(user),
  };
}

async function startSession(tx: Tx, user: Row, method: Method = "password") {
  const [session] =
    await tx`insert into auth.sessions (id, user_id) values (gen_random_uuid(), ${user.id}) returning *`;
  const token = newRefreshToken();
  await tx`insert into auth.refresh_tokens (token, user_id, session_id) values (${token}, ${user.id}, ${session.id})`;
  const [fresh] =
    await tx`update auth.users set last_sign_in_at = now(), updated_at = now() where id = ${user.id} returning *`;
  return await sessionJson(fresh, session, token, method);
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
  if (typeof password !== "string" || password === "") {
    return fail(422, "validation_failed", "Signup requires a valid password");
  }
  if (password.length < 6) {
    return fail(422, "weak_password", "Password should be at least 6 characters.", {
      weak_password: { reasons: ["length"] },
    });
  }
  return password;
}

function checkEmail(email: unknown): string {
  if (typeof email !== "string" || email.trim() === "") {
    return fail(400, "validation_failed", "To signup, please provide your email");
  }
  if (!/^[^\s@]+@[^\s@]+$/.test(email.trim())) {
    return fail(400, "validation_failed", "Unable to validate email address: invalid format");
  }
  return email.trim().toLowerCase();
}

/** Inserts the user as GoTrue does; the project's auth.users triggers (handle_new_user) run in this transaction. */
async function insertUser(
  tx: Tx,
  email: string,
  password: string,
  userMeta: unknown,
  appMeta: Row,
  confirmed: boolean,
) {
  const [u] = await tx`
    insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
                            raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
    values ('00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated', 'authenticated', ${email},
            extensions.crypt(${password}, extensions.gen_salt('bf')), case when ${confirmed}::boolean then now() end,
            ${sql.json(appMeta)}, ${
    sql.json((userMeta && typeof userMeta === "object" ? userMeta : {}) as Row)
  }, now(), now())
    returning *`;
  return u;
}

/** A failure inside the insert is GoTrue's "Database error saving new user", unless it is the email's own unique index. */
function savingUserFailed(e: unknown, existsCode: string, existsMsg: string): never {
  if (e instanceof AuthError) throw e;
  const pg = e as { code?: string; constraint_name?: string; message?: string; where?: string };
  if (pg.code === "23505" && pg.constraint_name === "users_email_partial_key") fail(422, existsCode, existsMsg);
  log(
    `auth: saving new user failed: ${pg.code ?? ""} ${pg.message ?? e}${
      pg.where ? ` (${pg.where.split("\n")[0]})` : ""
    }`,
  );
  return fail(500, "unexpected_failure", "Database error saving new user");
}

/** GoTrue's verifyCaptcha: signup and password sign-in need gotrue_meta_security.captcha_token; admin callers do not. */
async function requireCaptcha(req: Request, b: Row) {
  if (!CAPTCHA_SECRET) return;
  const caller = await authenticate(req);
  if (caller.ok && caller.role === "service_role") return;
  const token = b.gotrue_meta_security?.captcha_token;
  if (typeof token !== "string" || token.trim() === "") {
    fail(400, "captcha_failed", "captcha protection: request disallowed (no captcha_token found)");
  }
}

const isLoopback = (host: string) => /^127\.\d+\.\d+\.\d+$/.test(host) || host === "[::1]";

/** GoTrue's IsRedirectURLValid: back to the site (any port on a loopback host), or a loopback IP address. */
function redirectAllowed(candidate: string): boolean {
  let r: URL;
  try {
    r = new URL(candidate);
  } catch {
    return false;
  }
  const site = new URL(SITE_URL);
  if (
    r.hostname === site.hostname && r.protocol === site.protocol &&
    (r.port === site.port || isLoopback(r.hostname) || r.hostname === "localhost")
  ) return true;
  return /^https?:$/.test(r.protocol) && isLoopback(r.hostname);
}

/** GoTrue's GetReferrer: redirect_to if allowed, else the Referer header if allowed, else the site URL. */
function referrer(req: Request): string {
  for (const c of [new URL(req.url).searchParams.get("redirect_to"), req.headers.get("referer")]) {
    if (c && redirectAllowed(c)) return c;
  }
  return SITE_URL;
}

/** GoTrue's sendConfirmation: a token hash (sha224 of email + a 6-digit code) and the link to /verify, at most once a minute. */
async function newConfirmation(tx: Tx, user: Row, redirectTo: string) {
  const sentAt = user.confirmation_sent_at ? new Date(user.confirmation_sent_at).getTime() : 0;
  const wait = Math.ceil((sentAt + MAX_FREQUENCY_S * 1000 - Date.now()) / 1000);
  if (wait > 0) {
    fail(429, "over_email_send_rate_limit", `For security purposes, you can only request this after ${wait} seconds.`);
  }
  const otp = String(randomInt(0, 1_000_000)).padStart(6, "0");
  const token = createHash("sha224").update(user.email + otp).digest("hex");
  const [u] =
    await tx`update auth.users set confirmation_token = ${token}, confirmation_sent_at = now() where id = ${user.id} returning *`;
  const redirect = /[&=#]/.test(redirectTo) ? encodeURIComponent(redirectTo) : redirectTo; // GoTrue's encodeRedirectURL
  const link = `${SUPABASE_URL}/auth/v1/verify?token=${token}&type=signup&redirect_to=${redirect}`;
  return {
    user: u,
    mail: {
      to: u.email,
      subject: "Confirm your email address",
      type: "signup" as const,
      link,
      text: `Follow the link below to confirm this email address and finish signing up. Or enter the code ${otp}.`,
    },
  };
}

/** What GoTrue answers for an address that is already confirmed, so sign-up does not reveal who is registered. */
function obfuscatedUser(email: string, data: unknown) {
  const now = new Date().toISOString();
  return {
    id: crypto.randomUUID(),
    aud: "authenticated",
    role: "",
    email,
    phone: "",
    confirmation_sent_at: now,
    app_metadata: { provider: "email", providers: ["email"] },
    user_metadata: data && typeof data === "object" ? data : {},
    identities: [],
    created_at: now,
    updated_at: now,
    is_anonymous: false,
  };
}

async function signup(req: Request) {
  const b = await body(req);
  await requireCaptcha(req, b);
  const email = checkEmail(b.email);
  const password = checkPassword(b.password);
  const redirectTo = referrer(req);
  try {
    const out = await sql.begin(async (tx) => {
      const [existing] = await tx`select * from auth.users where email = ${email} for update`;
      if (!CONFIRMATIONS) {
        if (existing) fail(422, "user_already_exists", "User already registered");
        const user = await insertUser(tx, email, password, b.data, { provider: "email", providers: ["email"] }, true);
        return { body: await startSession(tx, user) };
      }
      if (existing?.email_confirmed_at) return { body: obfuscatedUser(email, b.data) };
      // New, or signed up before and never confirmed: (re)send the link, as GoTrue does.
      const user = existing ??
        await insertUser(tx, email, password, b.data, { provider: "email", providers: ["email"] }, false);
      const sent = await newConfirmation(tx, user, redirectTo);
      return { body: userJson(sent.user), mail: sent.mail };
    });
    if (out.mail) sendMail(out.mail); // after commit: a rolled-back sign-up sends nothing
    return json(out.body);
  } catch (e) {
    savingUserFailed(e, "user_already_exists", "User already registered");
  }
}

/**
 * GET /verify?token=...&type=signup&redirect_to=... (the emailed link; no apikey, as on hosted): confirms the
 * address (the database's confirmation trigger grants the sign-up credit) and redirects (303) with a session
 * in the URL fragment, or with error, error_code and error_description there.
 */
async function verify(req: Request) {
  const q = new URL(req.url).searchParams;
  const token = q.get("token") ?? "";
  const type = q.get("type") ?? "";
  if (!type) fail(400, "validation_failed", "Verify requires a verification type");
  if (!token) fail(400, "validation_failed", "Verify requires a token or a token hash");
  const redirectTo = referrer(req);
  let fragment: Record<string, string>;
  try {
    if (type !== "signup") fail(400, "validation_failed", "Unsupported verification type"); // the stand-in sends only sign-up links
    const s = await sql.begin(async (tx) => {
      // A second click waits for the first and then finds no user with this token.
      const [u] =
        await tx`select * from auth.users where confirmation_token = ${token} and deleted_at is null for update`;
      if (!u || !u.confirmation_sent_at || Date.now() > new Date(u.confirmation_sent_at).getTime() + OTP_EXP_S * 1000) {
        fail(403, "otp_expired", "Email link is invalid or has expired");
      }
      if (u.banned_until && new Date(u.banned_until) > new Date()) fail(403, "user_banned", "User is banned");
      const [confirmed] = await tx`
        update auth.users set email_confirmed_at = now(), confirmation_token = '', updated_at = now(),
               raw_user_meta_data = coalesce(raw_user_meta_data, '{}'::jsonb) || '{"email_verified": true}'::jsonb
         where id = ${u.id} returning *`;
      return await startSession(tx, confirmed, "otp");
    });
    fragment = {
      access_token: s.access_token,
      expires_at: String(s.expires_at),
      expires_in: String(s.expires_in),
      refresh_token: s.refresh_token,
      sb: "",
      token_type: s.token_type,
      type,
    };
  } catch (e) {
    if (!(e instanceof AuthError)) throw e;
    const oauth: Record<number, string> = {
      400: "invalid_request",
      401: "unauthorized_client",
      403: "access_denied",
      500: "server_error",
    };
    fragment = {
      ...(oauth[e.status] ? { error: oauth[e.status] } : {}),
      error_code: e.code,
      error_description: e.message,
      sb: "",
    };
  }
  return new Response(null, { status: 303, headers: { location: `${redirectTo}#${new URLSearchParams(fragment)}` } });
}

async function passwordGrant(req: Request) {
  const b = await body(req);
  await requireCaptcha(req, b);
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
    return await sessionJson(user, session, next, "password");
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
    return fail(
      403,
      "bad_jwt",
      `invalid JWT: unable to parse or verify signature, ${
        v.expired ? "token has invalid claims: token is expired" : v.message
      }`,
    );
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
  else if (scope === "others") {
    await sql`delete from auth.sessions where user_id = ${user.id} and id is distinct from ${sessionId ?? null}`;
  } else await sql`delete from auth.sessions where user_id = ${user.id}`;
  return new Response(null, { status: 204 });
}

/** The service-role admin endpoints tests commonly use (auth.admin.createUser / getUserById / deleteUser). */
async function admin(req: Request, path: string) {
  const caller = await authenticate(req); // a secret key, or a JWT with role service_role
  if (!caller.ok || !["service_role", "supabase_admin"].includes(caller.role)) {
    fail(403, "not_admin", "User not allowed");
  }
  const id = path.match(/^\/admin\/users\/([^/]+)$/)?.[1];
  if (path === "/admin/users" && req.method === "POST") {
    const b = await body(req);
    const email = checkEmail(b.email);
    const password = checkPassword(b.password);
    try {
      return await sql.begin(async (tx) => {
        const appMeta = { provider: "email", providers: ["email"], ...(b.app_metadata ?? {}) };
        return json(
          userJson(await insertUser(tx, email, password, b.user_metadata, appMeta, b.email_confirm === true)),
        );
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
  mailer_autoconfirm: !CONFIRMATIONS,
  phone_autoconfirm: false,
  sms_provider: "",
  saml_enabled: false,
};

/** GoTrue's error answer for AuthError, and its generic 500 for anything else. */
async function authErrors(req: Request, path: string, fn: () => Promise<Response>): Promise<Response> {
  try {
    return await fn();
  } catch (e) {
    if (e instanceof AuthError) {
      return json({ code: e.status, error_code: e.code, msg: e.message, ...e.extra }, e.status);
    }
    log(`auth: ${req.method} ${path} failed: ${(e as Error).message}`);
    return json({
      code: 500,
      error_code: "unexpected_failure",
      msg: "Unexpected failure, please check server logs for more information",
    }, 500);
  }
}

export async function handleAuth(req: Request, path: string): Promise<Response> {
  // The signing keys' discovery endpoint is public (no apikey): legacy HS256 projects publish no key.
  if (["/.well-known/jwks.json", "/jwks"].includes(path) && req.method === "GET") {
    return json(JWKS, 200, { "cache-control": "public, max-age=600" });
  }
  // The emailed link is opened in a browser: hosted routes /auth/v1/verify without the apikey check too
  // (supabase/supabase docker/volumes/api/kong.yml, service auth-v1-open).
  if (path === "/verify" && req.method === "GET") return await authErrors(req, path, () => verify(req));
  const keyError = checkApiKey(req);
  if (keyError) return keyError;
  return await authErrors(req, path, async () => {
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
  });
}

export async function closeAuth() {
  await sql.end({ timeout: 2 });
}
