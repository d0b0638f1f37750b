// `npm run deploy:rehearse`: plays docs/deploy.md's CLI path, step for step (scripts/deploy-steps.ts), on a
// fresh local "project": the stack started bare (STACK_BARE=1: platform only) with hosted's roles (postgres
// is not a superuser) and the new API keys (STACK_KEYS=new). Each step runs the same command as on hosted
// where that command works locally (supabase db push, SQL as postgres, npm run deploy:check), and the
// local equivalent where it talks to supabase.com, Paystack or a LiteLLM config file (functions deploy
// restarts the functions host with exactly the injected variables plus the secrets file; the emulators'
// admin APIs stand for Paystack's dashboard and LiteLLM's config.yaml).
// Prints each step's result and duration, stops everything it started, exits 1 at the first failure, and
// names an earlier step whose result is missing when that is the cause.
//   --skip "<step>"   leave a step out, to see how a deploy without it fails (repeatable)
// Ports: STACK_*_PORT as for every stack tool, by default npm test's + 200 (546xx); folder .local/rehearse
// (DEPLOY_REHEARSE_DIR).
import postgres from "postgres";
import { PLATFORM_INJECTED } from "../supabase/functions/_shared/config.ts";
import { configToml, verifyJwtFlags } from "../stack/platform/config-toml.ts";
import { INTENDED_VERIFY_JWT, parseEnvFile, REQUIRED_VAULT_SECRETS } from "./deploy-check.ts";
import { DEPLOY_STEPS, type DeployStep, envNamesIn, SECRETS_TEMPLATE } from "./deploy-steps.ts";

const ROOT = new URL("..", import.meta.url).pathname.replace(/\/$/, "");
// This run's ports and folder, set before the stack's modules read them. Variables of another stack or
// deploy (SUPABASE_*, LITELLM_*, ...) are dropped: the rehearsal makes its own.
const PORT_DEFAULTS = {
  STACK_GATEWAY_PORT: 54621,
  STACK_DB_PORT: 54622,
  STACK_WEB_PORT: 54623,
  STACK_LITELLM_PORT: 4210,
  STACK_PAYSTACK_PORT: 54630,
  STACK_POOLER_PORT: 54629,
};
for (const [k, v] of Object.entries(PORT_DEFAULTS)) if (!Deno.env.get(k)) Deno.env.set(k, String(v));
for (const k of Object.keys(Deno.env.toObject())) {
  if (
    /^(SUPABASE_|LITELLM_|PAYSTACK_|ALERT_|DB_POOL|STACK_(BARE|SERVICES|GRANTS|DEMO))|^(CRON_SECRET|LOG_LEVEL)$/.test(k)
  ) Deno.env.delete(k);
}
const LOCAL = Deno.env.get("DEPLOY_REHEARSE_DIR") ?? `${ROOT}/.local/rehearse`;
const PROJECT_DIR = `${LOCAL}/project`; // what has been "uploaded" to the project: functions, config.toml, secrets
Deno.env.set("STACK_LOCAL_DIR", LOCAL);
Deno.env.set("STACK_KEYS", "new");
Deno.env.set("STACK_QUIET", "1"); // the services log to files; the console has one line per step
Deno.env.set("STACK_SUPABASE_DIR", `${PROJECT_DIR}/supabase`); // the functions host serves only deployed functions
const { ADMIN_PORTS, PORTS, SYSTEM_ENV, functionsHostEnv } = await import("../stack/local-env.ts");
const { pids, portFree, startService, stopServices } = await import("../stack/services.ts");
const { call, until } = await import("../stack/demo.ts");

// The rehearsal's LiteLLM batch write interval (proxy_batch_write_at; LiteLLM's default is 10 s).
const BATCH_WRITE_AT_S = 2;
// Where Paystack sends webhooks before step 8 sets the URL: nowhere (.invalid never resolves, RFC 2606).
const WEBHOOK_UNSET = "http://webhook-url-not-set.invalid/";
const SITE_URL = `http://127.0.0.1:${PORTS.web}`;
const SECRETS_FILE = `${PROJECT_DIR}/.env.deploy`;
const COMPROMISED_LITELLM = ["1.82.7", "1.82.8"];

class StepFailed extends Error {}
const fail = (msg: string): never => {
  throw new StepFailed(msg);
};
const randomHex = (bytes: number) =>
  Array.from(crypto.getRandomValues(new Uint8Array(bytes)), (b) => b.toString(16).padStart(2, "0")).join("");
const tail = (text: string, lines = 3) => text.trim().split("\n").slice(-lines).join(" | ");

async function exec(cmd: string, args: string[]): Promise<{ code: number; out: string }> {
  const r = await new Deno.Command(cmd, { args, cwd: ROOT, stdin: "null", stdout: "piped", stderr: "piped" }).output();
  const dec = new TextDecoder();
  return { code: r.code, out: dec.decode(r.stdout) + dec.decode(r.stderr) };
}

/** A GET/POST that returns status and parsed body (whatever the status), for checks that expect a failure. */
async function probe(url: string, init: RequestInit = {}): Promise<{ status: number; body: unknown }> {
  const r = await fetch(url, { ...init, signal: AbortSignal.timeout(10_000) });
  const text = await r.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch { /* not JSON */ }
  return { status: r.status, body };
}

// ---- What the steps learn and leave behind
interface Project {
  env: Record<string, string>; // the bare stack's stack.env: URLs, keys, the emulators' credentials
  url: string;
  dbUrl: string; // direct connection as postgres, as the CLI takes it
  publishable: string;
  secret: string;
  injected: Record<string, string>; // what hosted injects into every function
}
let stack: Deno.ChildProcess | undefined;
let project: Project | undefined;
let sql: postgres.Sql | undefined;
let secrets: Record<string, string> | undefined;

const need = () => project ?? fail("there is no project (step 1 did not run)");
const db = () => sql ?? fail("no database connection (step 1 did not run)");
const secretsSet = () => secrets ?? fail(`no secrets file ${SECRETS_FILE}`);
const fn = (name: string) => `${need().url}/functions/v1/${name}`;
const litellmAdmin = () => `http://127.0.0.1:${ADMIN_PORTS.litellm}/admin`;
const paystackAdmin = () => `http://127.0.0.1:${ADMIN_PORTS.paystack}/admin`;
const bearer = (key: string) => ({ Authorization: `Bearer ${key}` });
const processEnv = () =>
  Object.fromEntries(SYSTEM_ENV.filter((n) => Deno.env.get(n) !== undefined).map((n) => [n, Deno.env.get(n)!]));

// ---- 1. create project: a fresh platform with nothing of ours on it
async function createProject(): Promise<string> {
  for (const p of [PROJECT_DIR, `${LOCAL}/stack.ready`]) await Deno.remove(p, { recursive: true }).catch(() => {});
  Deno.mkdirSync(`${PROJECT_DIR}/supabase/functions`, { recursive: true });
  const log = await Deno.open(`${LOCAL}/stack-output.log`, { create: true, write: true, truncate: true });
  stack = new Deno.Command(`${ROOT}/node_modules/.bin/deno`, {
    args: ["run", "-A", "stack/main.ts"],
    cwd: ROOT,
    env: {
      STACK_BARE: "1",
      STACK_SERVICES: "pooler,litellm,paystack,gateway",
      STACK_QUIET: "1",
      PAYSTACK_WEBHOOK_URL: WEBHOOK_UNSET,
    },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  for (const s of [stack.stdout, stack.stderr]) {
    (async () => {
      for await (const c of s) await log.write(c);
    })();
  }
  const exited = stack.status.then(() =>
    fail(`the stack exited: ${tail(Deno.readTextFileSync(`${LOCAL}/stack-output.log`))}`)
  );
  await Promise.race([
    exited,
    until("the bare project to start", () => Deno.stat(`${LOCAL}/stack.ready`).then((f) => f.isFile), 180_000),
  ]);
  exited.catch(() => {}); // once up, the stack exits only when stopAll stops it
  const env = parseEnvFile(Deno.readTextFileSync(`${LOCAL}/stack.env`));
  project = {
    env,
    url: env.SUPABASE_URL,
    dbUrl: `${env.SUPABASE_DB_URL}?sslmode=disable`,
    publishable: env.SUPABASE_PUBLISHABLE_KEY,
    secret: env.SUPABASE_SECRET_KEY,
    injected: Object.fromEntries(PLATFORM_INJECTED.filter((n) => env[n] !== undefined).map((n) => [n, env[n]])),
  };
  sql = postgres(project.dbUrl, { max: 2, prepare: false, onnotice: () => {} });
  const [facts] = await sql<{ migrations: string | null; secrets: number }[]>`
    select to_regclass('supabase_migrations.schema_migrations')::text as migrations, (select count(*)::int from vault.secrets) as secrets`;
  const functions = await probe(fn("health"), { method: "OPTIONS" });
  if (facts.migrations || facts.secrets || functions.status !== 404) {
    fail(
      `not a bare project: migrations table ${
        facts.migrations ?? "absent"
      }, ${facts.secrets} vault secrets, health function answered ${functions.status}`,
    );
  }
  return `bare platform at ${project.url}: Auth, REST, the emulators; no migrations, vault secrets or functions`;
}

// ---- 2. link: the connection facts a deployer needs, and what kind of project this is
async function link(): Promise<string> {
  const p = need();
  const [me] = await db()<{ role: string; superuser: boolean; version: string }[]>`
    select current_user as role, rolsuper as superuser, current_setting('server_version') as version from pg_roles where rolname = current_user`;
  if (me.role !== "postgres" || me.superuser) {
    fail(
      `the database login is ${me.role}${me.superuser ? " (superuser)" : ""}: hosted gives postgres, not a superuser`,
    );
  }
  const pooler = postgres(p.env.DB_POOLER_URL ?? fail("the project has no transaction pooler string"), {
    max: 1,
    prepare: false,
    onnotice: () => {},
  });
  const [viaPooler] = await pooler<{ role: string }[]>`select current_user as role`.finally(() =>
    pooler.end({ timeout: 2 })
  );
  if (viaPooler.role !== "postgres") fail(`the transaction pooler logs in as ${viaPooler.role}`);
  await call(`${p.url}/auth/v1/settings`, { headers: { apikey: p.publishable } });
  const jwks = await call(`${p.url}/auth/v1/.well-known/jwks.json`) as { keys: { alg: string; kid: string }[] };
  if (
    !p.publishable.startsWith("sb_publishable_") || !p.secret.startsWith("sb_secret_") || jwks.keys[0]?.alg !== "ES256"
  ) {
    fail("not a project with the new API keys and asymmetric JWT signing keys");
  }
  return `database as postgres (not a superuser), PostgreSQL ${me.version}, direct and through the transaction pooler (port ${
    new URL(p.env.DB_POOLER_URL).port
  }); keys sb_publishable_/sb_secret_; user JWTs ES256 (kid ${jwks.keys[0].kid.slice(0, 8)}…)`;
}

// ---- 3. db push: the real Supabase CLI, as postgres, over the direct connection
const migrationVersions = () =>
  [...Deno.readDirSync(`${ROOT}/supabase/migrations`)].map((e) => e.name).filter((n) => /^\d+_.*\.sql$/.test(n)).map((
    n,
  ) => n.split("_")[0]).sort();

async function dbPush(): Promise<string> {
  const r = await exec(`${ROOT}/node_modules/.bin/supabase`, [
    "db",
    "push",
    "--db-url",
    need().dbUrl,
    "--workdir",
    ROOT,
    "--yes",
  ]);
  if (r.code !== 0) fail(`supabase db push failed: ${tail(r.out)}`);
  const missing = await missingMigrations();
  if (missing.length) fail(`not applied: ${missing.join(", ")}`);
  const jobs = await db()<{ jobname: string }[]>`select jobname from cron.job order by jobname`;
  return `supabase db push --db-url postgresql://postgres:…@…/postgres: ${migrationVersions().length} migrations; cron jobs ${
    jobs.map((j) => j.jobname).join(", ")
  }`;
}

async function missingMigrations(): Promise<string[]> {
  const rows = await db()<{ version: string }[]>`select version from supabase_migrations.schema_migrations`.catch(
    () => [],
  );
  const applied = new Set(rows.map((r) => r.version));
  return migrationVersions().filter((v) => !applied.has(v));
}

// ---- 4. secrets set: the template's names, each with this project's value, into the secrets file
function operatorValues(): Record<string, string> {
  const e = need().env;
  return {
    CRON_SECRET: randomHex(32),
    DB_POOLER_URL: e.DB_POOLER_URL, // the Connect dialog's transaction pooler string (PgBouncer here)
    LITELLM_BASE_URL: e.LITELLM_BASE_URL,
    LITELLM_MASTER_KEY: e.LITELLM_MASTER_KEY, // the proxy's master key (the emulator's)
    LITELLM_CALLBACK_SECRET: randomHex(32),
    PAYSTACK_BASE_URL: e.PAYSTACK_BASE_URL, // hosted: https://api.paystack.co
    PAYSTACK_SECRET_KEY: e.PAYSTACK_SECRET_KEY, // the Paystack account's key (the emulator's)
    PAYSTACK_CALLBACK_URL: `${SITE_URL}/`, // the dashboard (step 9)
  };
}

function secretsSetStep(): string {
  const names = envNamesIn(Deno.readTextFileSync(`${ROOT}/${SECRETS_TEMPLATE}`));
  const reserved = names.filter((n) => n.startsWith("SUPABASE_"));
  if (reserved.length) {
    fail(`${SECRETS_TEMPLATE} lists ${reserved.join(", ")}: hosted injects SUPABASE_* and the CLI skips them`);
  }
  const values = operatorValues();
  const missing = names.filter((n) => !values[n]);
  if (missing.length) fail(`no value for ${missing.join(", ")} (listed in ${SECRETS_TEMPLATE})`);
  Deno.writeTextFileSync(SECRETS_FILE, names.map((n) => `${n}=${values[n]}\n`).join(""), { mode: 0o600 });
  secrets = parseEnvFile(Deno.readTextFileSync(SECRETS_FILE));
  return `${names.length} secrets from ${SECRETS_TEMPLATE} in ${SECRETS_FILE.slice(ROOT.length + 1)}: ${
    names.join(", ")
  }`;
}

// ---- 5. functions deploy: upload every function and config.toml, restart the functions host with exactly
// the injected variables plus the secrets, and prove its environment holds nothing else
async function functionsDeploy(): Promise<string> {
  const p = need();
  const set = secretsSet();
  const target = `${PROJECT_DIR}/supabase`;
  await Deno.remove(`${target}/functions`, { recursive: true }).catch(() => {});
  const cp = await exec("cp", ["-r", `${ROOT}/supabase/functions`, `${ROOT}/supabase/config.toml`, `${target}/`]);
  if (cp.code !== 0) fail(`copying the functions failed: ${tail(cp.out)}`);
  const folders = [...Deno.readDirSync(`${target}/functions`)].filter((e) => e.isDirectory && !e.name.startsWith("_"))
    .map((e) => e.name).sort();
  const flags = verifyJwtFlags(configToml(`${target}/config.toml`));
  const wrong = folders.filter((f) => flags.get(f) !== false || !(f in INTENDED_VERIFY_JWT));
  if (wrong.length) fail(`verify_jwt is not off in config.toml (or not intended) for ${wrong.join(", ")}`);

  const old =
    (JSON.parse(Deno.readTextFileSync(`${LOCAL}/stack.json`)) as { pids: Record<string, number> }).pids.gateway;
  if (old) Deno.kill(old, "SIGTERM"); // the bare project's functions host (no functions, no secrets)
  await until("the old functions host to stop", () => Promise.resolve(portFree(PORTS.gateway)), 10_000);
  const deployed = Object.fromEntries(Object.entries(set).filter(([k]) => !k.startsWith("SUPABASE_"))); // the CLI skips those
  await startService({
    name: "gateway",
    entry: "stack/platform/gateway.ts",
    port: PORTS.gateway,
    readyPath: "/health",
    onlyEnv: functionsHostEnv(deployed, p.injected),
  }, {});
  const counts = checkFunctionsHostEnv(pids().gateway, deployed, p.injected);
  for (const f of folders) {
    const r = await probe(fn(f), { method: "OPTIONS" });
    if (r.status >= 400) fail(`${f} answered ${r.status} after the deploy`);
  }
  return `${folders.length} functions, verify_jwt off for all; functions host env: ${counts}, nothing else`;
}

/** /proc/<pid>/environ of the functions host: the injected variables and the secrets, process settings, nothing else. */
function checkFunctionsHostEnv(
  pid: number,
  deployed: Record<string, string>,
  injected: Record<string, string>,
): string {
  const env = Object.fromEntries(
    Deno.readTextFileSync(`/proc/${pid}/environ`).split("\0").filter(Boolean).map((kv) => {
      const i = kv.indexOf("=");
      return [kv.slice(0, i), kv.slice(i + 1)];
    }),
  );
  const platform = (n: string) => SYSTEM_ENV.includes(n) || n.startsWith("STACK_");
  const extra = Object.keys(env).filter((n) => !platform(n) && !(n in deployed) && !(n in injected));
  if (extra.length) fail(`the functions host has variables that are neither injected nor secrets: ${extra.join(", ")}`);
  const differ = Object.entries({ ...deployed, ...injected }).filter(([k, v]) => env[k] !== v).map(([k]) => k);
  if (differ.length) fail(`the functions host lacks or has other values for ${differ.join(", ")}`);
  const n = Object.keys(env).filter(platform).length;
  return `${Object.keys(injected).length} injected (${Object.keys(injected).join(", ")}) + ${
    Object.keys(deployed).length
  } secrets + ${n} process/stand-in settings`;
}

// ---- 6. vault secrets: what the cron jobs and the sign-up trigger read, created as postgres in SQL
async function vaultSecrets(): Promise<string> {
  const cron = secretsSet().CRON_SECRET ?? fail("the secrets file has no CRON_SECRET");
  await db()`select vault.create_secret(${need().url}, 'project_url')`;
  await db()`select vault.create_secret(${cron}, 'cron_secret')`;
  const missing = await missingVaultSecrets();
  if (missing.length) fail(`missing after create_secret: ${missing.join(", ")}`);
  return "project_url and cron_secret (= CRON_SECRET) created with vault.create_secret as postgres";
}

async function missingVaultSecrets(): Promise<string[]> {
  const rows = await db()<{ name: string }[]>`select name from vault.secrets where name is not null`.catch(() => []);
  return REQUIRED_VAULT_SECRETS.filter((n) => !rows.some((r) => r.name === n));
}

// ---- 7. auth settings: email sign-up on; whether this Auth asks for email confirmation
let confirmationRequired = false;
async function authSettings(): Promise<string> {
  const s = await call(`${need().url}/auth/v1/settings`, { headers: { apikey: need().publishable } }) as {
    disable_signup?: boolean;
    mailer_autoconfirm?: boolean;
    external?: { email?: boolean };
  };
  if (s.disable_signup || s.external?.email !== true) fail("email sign-up is off");
  confirmationRequired = s.mailer_autoconfirm === false;
  return `email sign-up on; email confirmation ${
    confirmationRequired ? "required" : "not required by this Auth (hosted: required by default)"
  }; ` +
    `site URL / redirect URLs: ${SITE_URL}/ (hosted only: the stand-in redirects nowhere)`;
}

// ---- 8. paystack webhook URL: set in the Paystack account (the emulator's admin API)
const webhookUrl = () => fn("paystack-webhook");
async function paystackWebhookUrl(): Promise<string> {
  const key = need().env.PAYSTACK_SECRET_KEY;
  await call(`${paystackAdmin()}/config`, {
    method: "POST",
    headers: bearer(key),
    json: { webhook_url: webhookUrl() },
  });
  const missing = await webhookUrlMissing();
  if (missing) fail(missing);
  return `${webhookUrl()} (Paystack sends from 52.31.139.75, 52.49.173.169, 52.214.14.220)`;
}

async function webhookUrlMissing(): Promise<string | null> {
  const cfg = await call(`${paystackAdmin()}/config`, { headers: bearer(need().env.PAYSTACK_SECRET_KEY) }) as {
    data: { webhook_url: string };
  };
  return cfg.data.webhook_url === webhookUrl() ? null : `Paystack's webhook URL is ${cfg.data.webhook_url}`;
}

// ---- 9. dashboard hosting: build web/, add config.json (publishable key only), serve it statically
async function dashboardHosting(): Promise<string> {
  const p = need();
  const site = `${PROJECT_DIR}/site`;
  const build = await exec(`${ROOT}/node_modules/.bin/vite`, [
    "build",
    "--config",
    `${ROOT}/web/vite.config.ts`,
    "--outDir",
    site,
    "--emptyOutDir",
  ]);
  if (build.code !== 0) fail(`npm run build:web failed: ${tail(build.out)}`);
  const config = {
    SUPABASE_URL: p.url,
    SUPABASE_PUBLISHABLE_KEY: p.publishable,
    LITELLM_PUBLIC_URL: p.env.LITELLM_PUBLIC_URL,
  };
  Deno.writeTextFileSync(`${site}/config.json`, JSON.stringify(config));
  await startService({
    name: "web",
    entry: "stack/web-server.ts",
    port: PORTS.web,
    onlyEnv: { ...processEnv(), STACK_WEB_PORT: String(PORTS.web), STACK_WEB_DIST: site },
  }, {});
  const page = await probe(`${SITE_URL}/`);
  const served = await probe(`${SITE_URL}/config.json`);
  if (page.status !== 200 || !String(page.body).includes("<script")) fail(`the dashboard page answered ${page.status}`);
  if (JSON.stringify(served.body) !== JSON.stringify(config) || JSON.stringify(served.body).includes("sb_secret_")) {
    fail("config.json is not what was uploaded");
  }
  const size = /(\d+(\.\d+)?) KB gzipped \(budget/.exec(build.out)?.[1];
  return `web/ built (${
    size ?? "?"
  } KB gzipped JS), served at ${SITE_URL} with config.json (URL, publishable key, LiteLLM URL)`;
}

// ---- 10. litellm settings: the logging callback, the batch write interval (and rotation_settle_seconds)
const callbackUrl = () => fn("litellm-spend-callback");
async function litellmSettings(): Promise<string> {
  const p = need();
  const master = bearer(p.env.LITELLM_MASTER_KEY);
  const ready = await call(`${p.env.LITELLM_BASE_URL}/health/readiness`) as { litellm_version?: string };
  if (COMPROMISED_LITELLM.includes(ready.litellm_version ?? "")) {
    fail(`LiteLLM ${ready.litellm_version} is a compromised release`);
  }
  const callbackSecret = secretsSet().LITELLM_CALLBACK_SECRET ??
    fail("the secrets file has no LITELLM_CALLBACK_SECRET");
  await call(`${litellmAdmin()}/callback`, {
    method: "POST",
    headers: master,
    json: { endpoint: callbackUrl(), headers: bearer(callbackSecret) },
  });
  await call(`${litellmAdmin()}/config`, {
    method: "POST",
    headers: master,
    json: { batch_write_ms: BATCH_WRITE_AT_S * 1000 },
  });
  const updated = await db()`update private.settings set value = to_jsonb(${
    BATCH_WRITE_AT_S + 6
  }::int) where key = 'rotation_settle_seconds'`;
  if (updated.count !== 1) fail("private.settings has no rotation_settle_seconds (step 3?)");
  return `callback -> ${callbackUrl()}; proxy_batch_write_at ${BATCH_WRITE_AT_S} s, rotation_settle_seconds ${
    BATCH_WRITE_AT_S + 6
  }; ` +
    `version ${ready.litellm_version}; turn_off_message_logging is config.yaml only (not emulated)`;
}

async function callbackMissing(): Promise<string | null> {
  const cb = await call(`${litellmAdmin()}/callback`, { headers: bearer(need().env.LITELLM_MASTER_KEY) }) as {
    endpoint?: string | null;
  };
  return cb.endpoint === callbackUrl() ? null : `LiteLLM's logging callback posts to ${cb.endpoint ?? "nowhere"}`;
}

// ---- 11. deploy:check, as a deployer runs it, must say ready
async function deployCheck(): Promise<string> {
  secretsSet();
  const r = await exec("npm", [
    "run",
    "--silent",
    "deploy:check",
    "--",
    "--db-url",
    need().dbUrl,
    "--env-file",
    SECRETS_FILE,
  ]);
  if (r.code !== 0) fail(`deploy:check: ${tail(r.out.slice(r.out.indexOf("NOT ready")), 8)}`);
  const passed = r.out.split("\n").filter((l) => l.trim().startsWith("✓")).length;
  return `ready: ${passed} checks passed`;
}

// ---- 12. smoke: a user signs up, pays, uses credit, and sees the balance go down
async function smoke(): Promise<string> {
  const p = need();
  const cron = secretsSet().CRON_SECRET;
  const { token, userId, confirmation } = await signUp();
  const rest = { apikey: p.publishable, ...bearer(token) };
  const started = Date.now();
  const key = await until("the user's key to turn active (provision-key via pg_net)", async () => {
    const [k] = await call(`${p.url}/rest/v1/my_key?select=key_value,status`, { headers: rest }) as {
      key_value: string;
      status: string;
    }[];
    return k?.status === "active" ? k.key_value : null;
  }, 30_000);
  const activeIn = ((Date.now() - started) / 1000).toFixed(1);

  const checkout = await call(fn("checkout"), { method: "POST", headers: rest, json: { plan: "starter" } }) as {
    reference: string;
    access_code: string;
  };
  // The hosted checkout page's own form post, with Paystack's success test card.
  const paid = await call(`${p.env.PAYSTACK_BASE_URL}/checkout/${checkout.access_code}/pay`, {
    method: "POST",
    json: { card: "4084084084084081" },
  }) as { status: string };
  if (paid.status !== "success") fail(`the test card payment answered ${paid.status}`);
  const credit = await until("the payment to be credited (paystack-webhook)", async () => {
    const [pm] = await call(`${p.url}/rest/v1/my_payments?select=credit&reference=eq.${checkout.reference}`, {
      headers: rest,
    }) as { credit: string }[];
    return pm?.credit;
  }, 30_000);
  const before = await account(rest);
  const info = await until("LiteLLM's max_budget to equal the ledger", async () => {
    const r = await call(`${p.env.LITELLM_BASE_URL}/key/info`, { headers: bearer(key) }) as {
      info: { max_budget: number; budget_duration: string | null };
    };
    return Number(r.info.max_budget).toFixed(8) === Number(before.granted).toFixed(8) ? r.info : null;
  }, 20_000);
  if (info.budget_duration) fail(`the key has budget_duration ${info.budget_duration}`);

  const chat = await fetch(`${p.env.LITELLM_PUBLIC_URL}/chat/completions`, {
    method: "POST",
    headers: { ...bearer(key), "Content-Type": "application/json" },
    body: JSON.stringify({
      model: "test-expensive",
      messages: [{ role: "user", content: "Deploy rehearsal: say hello." }],
    }),
  });
  await chat.body?.cancel();
  const cost = chat.headers.get("x-litellm-response-cost");
  if (!chat.ok || !(Number(cost) > 0)) fail(`the chat through LiteLLM answered ${chat.status} (cost ${cost})`);
  const pulled = await until("reconcile-spend to record the spend", async () => {
    await call(fn("reconcile-spend"), { method: "POST", headers: bearer(cron), json: { force: true } });
    const [k] = await db()<
      { spend: string }[]
    >`select spend::text from public.api_keys where user_id = ${userId} and status = 'active'`;
    return Number(k?.spend) > 0 ? k.spend : null;
  }, 30_000);
  const after = await account(rest);
  if (!(await functionsUsePooler())) {
    fail("PgBouncer has no client connection of the functions: DB_POOLER_URL is not in use");
  }
  if (
    !(Number(after.remaining) < Number(before.remaining)) ||
    Number(after.remaining) !== Number(after.granted) - Number(after.spent)
  ) {
    fail(`the balance did not go down: remaining ${before.remaining} -> ${after.remaining}`);
  }
  return `sign-up (confirmation ${confirmation}) -> key active in ${activeIn} s -> checkout ${checkout.reference} -> paid on the hosted page -> ` +
    `credited ${credit} (ledger ${before.granted} = LiteLLM max_budget, no budget_duration) -> chat cost ${cost} -> ` +
    `reconciled (spend ${pulled}) -> remaining ${before.remaining} -> ${after.remaining}; the functions' SQL went through the pooler`;
}

/** The functions are PgBouncer's clients (their application_name, _shared/db.ts): DB_POOLER_URL is what they use. */
async function functionsUsePooler(): Promise<boolean> {
  // The admin console speaks only the simple query protocol and has no pg_type to read.
  const admin = postgres(Object.assign(new URL(need().env.DB_POOLER_URL), { pathname: "/pgbouncer" }).toString(), {
    max: 1,
    fetch_types: false,
    onnotice: () => {},
  });
  try {
    const clients = await admin.unsafe("SHOW CLIENTS") as { database: string; application_name: string }[];
    return clients.some((c) => c.database === "postgres" && c.application_name === "litellm-credits-functions");
  } finally {
    await admin.end({ timeout: 2 });
  }
}

async function account(rest: Record<string, string>) {
  const [a] = await call(`${need().url}/rest/v1/my_account?select=granted,spent,remaining`, { headers: rest }) as {
    granted: string;
    spent: string;
    remaining: string;
  }[];
  return a ?? fail("my_account has no row for the user");
}

/** Sign-up through Auth with the publishable key; where Auth asks for email confirmation, an operator confirms it. */
async function signUp(): Promise<{ token: string; userId: string; confirmation: string }> {
  const p = need();
  const user = { email: `rehearsal-${randomHex(4)}@example.com`, password: randomHex(12) };
  const signup = await call(`${p.url}/auth/v1/signup`, {
    method: "POST",
    headers: { apikey: p.publishable },
    json: user,
  }) as {
    access_token?: string;
    id?: string;
    user?: { id: string };
  };
  if (signup.access_token) return { token: signup.access_token, userId: signup.user!.id, confirmation: "not required" };
  const userId = signup.id ?? signup.user?.id ?? fail("sign-up returned neither a session nor a user");
  // GoTrue's admin API (secret key); an Auth without it: the same change in SQL, as in the SQL editor.
  const admin = await probe(`${p.url}/auth/v1/admin/users/${userId}`, {
    method: "PUT",
    headers: { apikey: p.secret, ...bearer(p.secret), "Content-Type": "application/json" },
    body: JSON.stringify({ email_confirm: true }),
  });
  if (admin.status !== 200) {
    await db()`update auth.users set email_confirmed_at = now() where id = ${userId} and email_confirmed_at is null`;
  }
  const session = await call(`${p.url}/auth/v1/token?grant_type=password`, {
    method: "POST",
    headers: { apikey: p.publishable },
    json: user,
  }) as { access_token: string };
  return {
    token: session.access_token,
    userId,
    confirmation: `required, confirmed by ${admin.status === 200 ? "the Auth admin API" : "SQL"}`,
  };
}

// ---- The steps, what each one leaves behind (to name a missing step as the cause of a later failure)
const STEPS: Record<DeployStep, { run: () => Promise<string> | string; missing?: () => Promise<string | null> }> = {
  "create project": { run: createProject },
  "link": { run: link },
  "db push": { run: dbPush, missing: async () => absent(await missingMigrations(), "migrations not applied") },
  "secrets set": {
    run: secretsSetStep,
    missing: () => Promise.resolve(secrets ? null : `no secrets file ${SECRETS_FILE}`),
  },
  "functions deploy": {
    run: functionsDeploy,
    missing:
      async () => ((await probe(fn("health"), { method: "OPTIONS" })).status === 404
        ? "no function is deployed"
        : null),
  },
  "vault secrets": {
    run: vaultSecrets,
    missing: async () => absent(await missingVaultSecrets(), "vault secrets missing"),
  },
  "auth settings": { run: authSettings },
  "paystack webhook URL": { run: paystackWebhookUrl, missing: webhookUrlMissing },
  "dashboard hosting": {
    run: dashboardHosting,
    missing:
      async () => ((await probe(`${SITE_URL}/config.json`).catch(() => null))?.status === 200
        ? null
        : "the dashboard is not served"),
  },
  "litellm settings": { run: litellmSettings, missing: callbackMissing },
  "deploy:check": { run: deployCheck },
  "smoke": { run: smoke },
};

const absent = (items: string[], what: string) => (items.length ? `${what}: ${items.join(", ")}` : null);

/** The first earlier step whose result is not in place, if any. */
async function missingEarlier(index: number): Promise<string | null> {
  for (const [i, name] of DEPLOY_STEPS.slice(0, index).entries()) {
    const why = await STEPS[name].missing?.().catch((e) => (e as Error).message);
    if (why) return `step ${i + 1} "${name}" is missing: ${why}`;
  }
  return null;
}

async function stopAll() {
  await stopServices();
  await sql?.end({ timeout: 2 }).catch(() => {});
  if (!stack) return;
  try {
    stack.kill("SIGINT"); // the stack stops its emulators and the cluster
  } catch { /* already gone */ }
  const stopped = await Promise.race([
    stack.status.then(() => true),
    new Promise<boolean>((r) => setTimeout(() => r(false), 20_000)),
  ]);
  if (!stopped) stack.kill("SIGKILL");
}

function parseSkips(args: string[]): Set<string> {
  const skip = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    if (args[i] === "--") continue;
    if (args[i] !== "--skip" || !(DEPLOY_STEPS as readonly string[]).includes(args[i + 1])) {
      throw new Error(`usage: npm run deploy:rehearse [-- --skip "<step>"]; steps: ${DEPLOY_STEPS.join(", ")}`);
    }
    skip.add(args[++i]);
  }
  return skip;
}

async function main(): Promise<number> {
  const skip = parseSkips(Deno.args);
  const t0 = performance.now();
  console.log(
    `deploy rehearsal (docs/deploy.md, CLI path) on ${
      LOCAL.replace(`${ROOT}/`, "")
    }, ports ${PORTS.gateway} (API) ${PORTS.db} (db)`,
  );
  let passed = 0;
  for (const [i, name] of DEPLOY_STEPS.entries()) {
    const label = `${String(i + 1).padStart(2)}. ${name.padEnd(21)}`;
    if (skip.has(name)) {
      console.log(`${label} SKIP (--skip)`);
      continue;
    }
    const s0 = performance.now();
    const secs = () => `${((performance.now() - s0) / 1000).toFixed(1)} s`;
    try {
      const detail = await STEPS[name].run();
      console.log(`${label} PASS ${secs().padStart(7)}  ${detail}`);
      passed++;
    } catch (e) {
      console.log(`${label} FAIL ${secs().padStart(7)}  ${e instanceof StepFailed ? e.message : (e as Error).stack}`);
      const cause = await missingEarlier(i).catch(() => null);
      if (cause) console.log(`    cause: ${cause}`);
      await stopAll();
      console.log(
        `deploy rehearsal FAILED at step ${i + 1} "${name}" after ${
          ((performance.now() - t0) / 1000).toFixed(1)
        } s (log: ${LOCAL.replace(`${ROOT}/`, "")}/)`,
      );
      return 1;
    }
  }
  await stopAll();
  console.log(
    `deploy rehearsal passed: ${passed} of ${DEPLOY_STEPS.length} steps in ${
      ((performance.now() - t0) / 1000).toFixed(1)
    } s`,
  );
  return skip.size ? 1 : 0; // a rehearsal with steps left out is not a pass
}

if (import.meta.main) {
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    Deno.addSignalListener(sig, () => stopAll().finally(() => Deno.exit(130)));
  }
  try {
    Deno.exit(await main());
  } catch (e) {
    console.error(`deploy:rehearse: ${(e as Error).message}`);
    await stopAll();
    Deno.exit(2);
  }
}
