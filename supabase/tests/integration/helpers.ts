// Shared test helpers. The stack is started by scripts/test.sh, which exports its env (.local/test/stack.env).
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import { generateKeyPair, importJWK, type JWK, SignJWT } from "jose";
import { spawn, spawnSync } from "node:child_process";
import { createServer } from "node:http";
import postgres from "postgres";

export function env(name: string): string {
  const v = process.env[name];
  if (!v) {
    throw new Error(`${name} is not set: run the tests with \`npm test\` (it starts the stack and exports its env)`);
  }
  return v;
}

// ---- API keys and JWTs of the stack's key mode (STACK_KEYS in stack.env, see stack/local-env.ts)
export const keysMode = (): "new" | "legacy" => (process.env.STACK_KEYS === "legacy" ? "legacy" : "new");
/** The browser-safe key: publishable (new mode), anon (legacy). */
export const publishableKey = () => process.env.SUPABASE_PUBLISHABLE_KEY ?? env("SUPABASE_ANON_KEY");
/** The server key: secret (new mode), service_role (legacy). */
export const secretKey = () => process.env.SUPABASE_SECRET_KEY ?? env("SUPABASE_SERVICE_ROLE_KEY");
/** The Supabase CLI's well-known local JWT secret: what legacy-style keys and tokens are signed with. */
export const WELL_KNOWN_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long";

/** The stand-in Auth's private key material (the gateway's 0600 file): tests sign tokens as the project would. */
export function platformKeys(): { mode: "new" | "legacy"; signing_key?: JWK & { kid: string }; jwt_secret?: string } {
  return JSON.parse(readFileSync(join(env("STACK_LOCAL_DIR"), "platform-keys.json"), "utf8"));
}

type Claims = Record<string, unknown>;
const unixNow = () => Math.floor(Date.now() / 1000);

/** A JWT signed with the project's own key: ES256 with its kid (new mode) or HS256 (legacy); 1 h unless exp is given. */
export async function signAsProject(claims: Claims): Promise<string> {
  const p = platformKeys();
  const jwt = new SignJWT({ exp: unixNow() + 3600, ...claims }).setIssuedAt();
  if (p.signing_key) {
    return await jwt.setProtectedHeader({ alg: "ES256", kid: p.signing_key.kid, typ: "JWT" }).sign(
      await importJWK(p.signing_key, "ES256"),
    );
  }
  return await jwt.setProtectedHeader({ alg: "HS256", typ: "JWT" }).sign(new TextEncoder().encode(p.jwt_secret));
}

/** A JWT signed with a key the project does not have (a fresh ES256 pair), under the given kid. */
export async function signWithForeignKey(claims: Claims, kid?: string): Promise<string> {
  const { privateKey } = await generateKeyPair("ES256");
  return await new SignJWT({ exp: unixNow() + 3600, ...claims }).setIssuedAt()
    .setProtectedHeader({ alg: "ES256", typ: "JWT", ...(kid ? { kid } : {}) }).sign(privateKey);
}

/** An HS256 JWT signed with the given secret. */
export async function signHs256(claims: Claims, secret: string): Promise<string> {
  return await new SignJWT({ exp: unixNow() + 3600, ...claims }).setIssuedAt().setProtectedHeader({
    alg: "HS256",
    typ: "JWT",
  })
    .sign(new TextEncoder().encode(secret));
}

/** An unsecured JWT ("alg": "none"): header and claims, empty signature. */
export function unsignedJwt(claims: Claims): string {
  const part = (o: unknown) => Buffer.from(JSON.stringify(o)).toString("base64url");
  return `${part({ alg: "none", typ: "JWT" })}.${part({ exp: unixNow() + 3600, ...claims })}.`;
}

/** The claims of a JWT (not verified). */
export function claimsOf(token: string): Claims {
  return JSON.parse(Buffer.from(token.split(".")[1], "base64url").toString());
}

let _sql: postgres.Sql | undefined;
/** Postgres as the postgres user, for fixtures and for reading outcomes. */
export function sql(): postgres.Sql {
  _sql ??= postgres(env("SUPABASE_DB_URL"), {
    max: 25,
    onnotice: () => {},
    types: { numeric: { to: 1700, from: [1700], serialize: String, parse: (v: string) => v } },
  });
  return _sql;
}
export async function closeSql() {
  await _sql?.end({ timeout: 5 });
  _sql = undefined;
}

export function adminUrl(baseUrl: string): string {
  const u = new URL(baseUrl);
  u.port = String(Number(u.port) + 1);
  return u.origin;
}

async function admin(
  base: string,
  secret: string,
  path: string,
  body?: unknown,
  method = body === undefined ? "GET" : "POST",
) {
  const r = await fetch(`${adminUrl(base)}${path}`, {
    method,
    headers: { Authorization: `Bearer ${secret}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`admin ${path} -> ${r.status}: ${text}`);
  return text ? JSON.parse(text) : null;
}
export const litellmAdmin = (path: string, body?: unknown, method?: string) =>
  admin(env("LITELLM_BASE_URL"), env("LITELLM_MASTER_KEY"), path, body, method);
export const paystackAdmin = (path: string, body?: unknown, method?: string) =>
  admin(env("PAYSTACK_BASE_URL"), env("PAYSTACK_SECRET_KEY"), path, body, method);

/** A LiteLLM management call as our backend would make it (master key). */
export async function litellmApi(path: string, body?: unknown) {
  const r = await fetch(`${env("LITELLM_BASE_URL")}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { Authorization: `Bearer ${env("LITELLM_MASTER_KEY")}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: await r.json().catch(() => null) };
}

export async function keyOnLiteLLM(key: string) {
  const r = await litellmApi(`/key/info?key=${encodeURIComponent(key)}`);
  return r.status === 200 ? r.body.info : null;
}

/** POST to one of our functions. An API key (sb_...) also goes in apikey, as supabase-js sends it. */
export async function invoke(
  name: string,
  body: unknown = {},
  token = env("CRON_SECRET"),
  headers: Record<string, string> = {},
) {
  const r = await fetch(`${env("SUPABASE_URL")}/functions/v1/${name}`, {
    method: "POST",
    headers: {
      Authorization: `Bearer ${token}`,
      ...(token.startsWith("sb_") ? { apikey: token } : {}),
      "Content-Type": "application/json",
      ...headers,
    },
    body: typeof body === "string" ? body : JSON.stringify(body),
  });
  const text = await r.text();
  let json: any = null;
  try {
    json = JSON.parse(text);
  } catch { /* not JSON */ }
  return { status: r.status, body: json, text };
}

// Node 20 has no global WebSocket and supabase-js will not build its realtime client without one;
// these tests never use realtime.
class NoWebSocket {
  constructor() {
    throw new Error("realtime is not used by these tests");
  }
}

export function anonClient(): SupabaseClient {
  return createClient(env("SUPABASE_URL"), publishableKey(), {
    auth: { persistSession: false, autoRefreshToken: false },
    realtime: { transport: NoWebSocket as never },
  });
}

export function uniqueEmail(tag = "user"): string {
  return `${tag}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}@example.com`;
}

export interface TestUser {
  id: string;
  email: string;
  client: SupabaseClient;
  token: string;
}

/** Signs up through the Auth API (fires handle_new_user); with confirmations on there is no session yet. */
export async function signUpUnconfirmed(tag = "user"): Promise<{ id: string; email: string; client: SupabaseClient }> {
  const client = anonClient();
  const email = uniqueEmail(tag);
  const { data, error } = await client.auth.signUp({ email, password: "correct-horse-battery" });
  if (error || !data.user) throw new Error(`sign-up failed: ${error?.message}`);
  return { id: data.user.id, email, client };
}

export interface Mail {
  id: string;
  to: string;
  from?: string; // notification emails (the email API capture)
  subject: string;
  type: string;
  link: string;
  text: string;
  sent_at: string;
}

/** What the stand-in Auth "emailed" to an address, newest first (the stack's outbox, /_stack/mail.json). */
export async function mailTo(email: string): Promise<Mail[]> {
  const r = await fetch(`${env("SUPABASE_URL")}/_stack/mail.json?to=${encodeURIComponent(email)}`);
  if (!r.ok) throw new Error(`/_stack/mail.json answered ${r.status}`);
  return await r.json();
}

/** The newest sign-up confirmation link sent to an address. */
export async function confirmationLink(email: string): Promise<string> {
  const mail = await waitFor(
    async () => (await mailTo(email)).find((m) => m.type === "signup"),
    `a confirmation email to ${email}`,
    5_000,
  );
  return mail.link;
}

/** Opens an emailed link as a browser would: Auth answers 303 to the redirect URL with a session (or an error) in the fragment. */
export async function openLink(link: string): Promise<{ status: number; location: string; fragment: URLSearchParams }> {
  const r = await fetch(link, { redirect: "manual" });
  await r.body?.cancel();
  const location = r.headers.get("location") ?? "";
  return { status: r.status, location, fragment: new URLSearchParams(location.split("#")[1] ?? "") };
}

/** Confirms a signed-up address through its emailed link and signs the client in with the session the link returns. */
export async function confirmEmail(email: string, client: SupabaseClient): Promise<string> {
  const { status, fragment } = await openLink(await confirmationLink(email));
  const access_token = fragment.get("access_token");
  const refresh_token = fragment.get("refresh_token");
  if (status !== 303 || !access_token || !refresh_token) {
    throw new Error(`confirming ${email} failed: ${status} ${fragment}`);
  }
  const { error } = await client.auth.setSession({ access_token, refresh_token });
  if (error) throw new Error(`the confirmation link's session was refused: ${error.message}`);
  return access_token;
}

/** Signs up through the Auth API (fires handle_new_user), confirms the address through the emailed link
 * (which grants the sign-up credit) and returns a signed-in client. */
export async function signUp(tag = "user"): Promise<TestUser> {
  const u = await signUpUnconfirmed(tag);
  return { ...u, token: await confirmEmail(u.email, u.client) };
}

export async function waitFor<T>(
  fn: () => Promise<T | null | undefined | false>,
  what: string,
  timeoutMs = 10_000,
  everyMs = 100,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v) return v as T;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? ` (last error: ${last})` : ""}`);
}

export async function liveKey(userId: string) {
  const [k] = await sql()`select * from public.api_keys where user_id = ${userId} and status <> 'retired'`;
  return k as {
    id: string;
    key_value: string;
    key_token: string;
    status: string;
    sync_status: string;
    litellm_max_budget: string | null;
    key_alias: string;
  };
}

/** The user's live key once it is active on LiteLLM with the ledger's budget, else null. */
export async function keyInSync(userId: string) {
  const [k] = await sql()`select k.*, private.key_target_budget(k.id) as target from public.api_keys k
                           where k.user_id = ${userId} and k.status <> 'retired'`;
  return k?.status === "active" && k.sync_status === "synced" && Number(k.litellm_max_budget) === Number(k.target)
    ? k
    : null;
}

/**
 * Signs up, confirms, and waits until the key is active on LiteLLM with the ledger's budget (provisioning may
 * create it at 0 before the confirmation's grant; push-budget then raises it).
 */
export async function activeUser(tag = "user"): Promise<TestUser & { key: string; keyId: string }> {
  const u = await signUp(tag);
  const k = await waitFor(() => keyInSync(u.id), "the key to turn active with the ledger's budget", 15_000);
  return { ...u, key: k.key_value, keyId: k.id };
}

/**
 * Runs a fixture (supabase/tests/integration/fixtures/<script> <args...> 0) on a free port with `baseEnv`
 * (the test env unless given, e.g. one without a variable) plus `extraEnv`; resolves once it said its port
 * ("serving ... on <port>") and answers HTTP. Its output is kept in `out` (a test can read what it logged,
 * and a failure to start says what it printed); stop() ends it.
 */
export async function serveFixture(
  script: string,
  args: string[],
  extraEnv: Record<string, string> = {},
  baseEnv: NodeJS.ProcessEnv = process.env,
) {
  const child = spawn(`${process.cwd()}/node_modules/.bin/deno`, [
    "run",
    "-A",
    `supabase/tests/integration/fixtures/${script}`,
    ...args,
    "0",
  ], {
    env: { ...baseEnv, NO_COLOR: "1", ...extraEnv },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const served = { url: "", out: "", stop: () => child.kill("SIGTERM") };
  let exited = "";
  child.on("exit", (code, signal) => (exited = `exited (${code ?? signal})`));
  child.stdout!.on("data", (c) => (served.out += c));
  child.stderr!.on("data", (c) => (served.out += c));
  try {
    await waitFor(
      async () => {
        if (exited) throw new Error(`${script} ${exited}: ${served.out.slice(-500)}`);
        const port = /serving \S+ on (\d+)/.exec(served.out)?.[1];
        if (!port) return false;
        served.url = `http://127.0.0.1:${port}`;
        const r = await fetch(`${served.url}/`); // any answer: it is listening
        await r.body?.cancel();
        return true;
      },
      `${script} to answer`,
      15_000,
    );
  } catch (e) {
    served.stop();
    throw new Error(`${(e as Error).message}\n${script} printed: ${served.out.slice(-1000)}`);
  }
  return served;
}

/**
 * Serves ONE of our functions alone (fixtures/serve-function.ts) on a free port with exactly the environment
 * given, e.g. a broken or missing database URL, without touching the shared stack. Call stop() when done.
 */
export async function serveAlone(name: string, fnEnv: NodeJS.ProcessEnv) {
  const s = await serveFixture("serve-function.ts", [name], {}, fnEnv);
  return { url: `${s.url}/functions/v1/${name}`, output: () => s.out, stop: s.stop };
}

/**
 * Waits until our LiteLLM client's circuit breaker is closed (LITELLM_BREAKER_COOLDOWN_MS after it opened, at
 * once when it never did), as health reports it to a secret key (fresh, not its 10 s cache). The local stack
 * runs every function in one isolate (stack/platform/functions-host.ts), so that is the breaker every
 * function uses; on hosted each isolate has its own.
 */
export async function breakerClosed() {
  await waitFor(
    async () => (await invoke("health", {}, secretKey())).body?.litellm?.circuit_open === false,
    "the LiteLLM circuit breaker to close",
    15_000,
    100,
  );
}

/** One reconcile run that actually processed chunks (a cron-started run may hold the lease briefly). */
export async function reconcileNow() {
  return await waitFor(
    async () => {
      const r = await invoke("reconcile-spend", { force: true, max_chunks: 100 });
      return r.status === 200 && r.body.claimed > 0 && r.body.outcome === "ok" ? r.body : null;
    },
    "a reconcile run that claims chunks",
    15_000,
    300,
  );
}

/**
 * A Slack-compatible webhook that records what it is sent, installed as the alert_webhook_url vault secret
 * (which wins over ALERT_WEBHOOK_URL: the gateway's env is fixed at start). fail(n): the next n posts get a 500.
 */
export async function alertSink() {
  const received: { text: string; keys: string[] }[] = [];
  let failNext = 0;
  const server = createServer((req, res) => {
    let body = "";
    req.on("data", (c) => (body += c));
    req.on("end", () => {
      if (failNext > 0) {
        failNext--;
        res.writeHead(500).end("busy");
        return;
      }
      const parsed = JSON.parse(body);
      received.push({ text: parsed.text, keys: Object.keys(parsed) });
      res.writeHead(200, { "Content-Type": "text/plain" }).end("ok");
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`;
  await sql()`delete from vault.secrets where name = 'alert_webhook_url'`;
  await sql()`select vault.create_secret(${url}, 'alert_webhook_url')`;
  return {
    received,
    fail: (n: number) => void (failNext = n),
    close: async () => {
      await sql()`delete from vault.secrets where name = 'alert_webhook_url'`;
      await new Promise((r) => server.close(r));
    },
  };
}

/** `npm run admin -- <args>` (scripts/admin.ts) against this stack; json: its --json output parsed. */
export function adminCli(...args: string[]) {
  const r = spawnSync("node_modules/.bin/deno", ["run", "-A", "scripts/admin.ts", ...args], {
    encoding: "utf8",
    env: { ...process.env, ADMIN_NAME: "admin-cli:vitest" },
    timeout: 120_000,
  });
  let json: any = null;
  try {
    json = JSON.parse(r.stdout);
  } catch { /* human output */ }
  return { code: r.status, stdout: r.stdout, stderr: r.stderr, json };
}

/** Can this key make an LLM call right now? (test-free costs nothing, so spend does not move.) */
export async function usable(key: string): Promise<boolean> {
  const r = await fetch(`${env("LITELLM_PUBLIC_URL")}/chat/completions`, {
    method: "POST",
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: JSON.stringify({ model: "test-free", messages: [{ role: "user", content: "hi" }] }),
  });
  await r.body?.cancel();
  return r.status === 200;
}
