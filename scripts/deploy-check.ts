// `npm run deploy:check -- --db-url <url> [--env-file .env]`: is a hosted (or local) setup ready to go
// live? Prints a checklist, names what is missing, exits 1 if anything is. It reads, never changes.
//
//   database     reachable with --db-url (or SUPABASE_DB_URL)
//   extensions   pg_cron, pg_net and supabase_vault installed
//   vault        secrets project_url and cron_secret exist (their values are never printed; cron_secret is
//                compared with CRON_SECRET from the env file inside the database, answer match/mismatch)
//   cron         jobs provision-key-sweep, reconcile-spend, cleanup, ops-sweep, usage-pull, send-notifications,
//                auto-topup, promo-expiry, retention-prune scheduled and active
//   migrations   every supabase/migrations file is recorded in supabase_migrations.schema_migrations
//   verify_jwt   supabase/config.toml has the intended flag for every function (and no function without one)
//   env file     every variable the functions require (from _shared/config.ts) is set and well-formed
//   keys         what each API key mode needs (new: publishable/secret keys and asymmetric JWT signing
//                keys; legacy: anon/service_role keys and the JWT secret), and (when probing) which one
//                the project's Auth uses, read from <url>/auth/v1/.well-known/jwks.json
//   functions    (when project_url is reachable, or --url) each function answers at /functions/v1/<name>,
//                and /health says ok
import postgres from "postgres";
import { configSchema, PLATFORM_INJECTED } from "../supabase/functions/_shared/config.ts";
import { parseConfigToml, verifyJwtFlags } from "../stack/platform/config-toml.ts";

const ROOT = new URL("..", import.meta.url).pathname;

/**
 * The flags we intend (docs/deploy.md, step 5): a change here is a security decision. All false: the
 * platform check refuses the new API keys and asymmetric user tokens, so every function checks its
 * callers itself (supabase/config.toml says how).
 */
export const INTENDED_VERIFY_JWT: Record<string, boolean> = {
  "provision-key": false, // pg_cron / pg_net with the cron secret
  "reconcile-spend": false, // pg_cron / pg_net with the cron secret
  "paystack-webhook": false, // Paystack signs with HMAC, it cannot send a JWT
  "health": false, // uptime monitors
  "ops-sweep": false, // pg_cron / pg_net with the cron secret
  "send-notifications": false, // pg_net / pg_cron with the cron secret
  "auto-topup": false, // pg_cron / pg_net (the crossing trigger) with the cron secret
  "push-budget": false, // operators, with a secret key (checked by the function)
  "litellm-spend-callback": false, // LiteLLM's logging callback with LITELLM_CALLBACK_SECRET
  "checkout": false, // signed-in users: the function verifies the JWT (_shared/auth.ts)
  "rotate-key": false, // signed-in users (JWT verified by the function), operators with a secret key
  "usage-pull": false, // pg_cron / pg_net with the cron secret, operators with a secret key
  "redeem-promo": false, // signed-in users: the function verifies the JWT (_shared/auth.ts)
};
const REQUIRED_CRON_JOBS = [
  "provision-key-sweep",
  "reconcile-spend",
  "cleanup",
  "ops-sweep",
  "usage-pull",
  "send-notifications",
  "auto-topup",
  "promo-expiry",
  "retention-prune",
];
const REQUIRED_EXTENSIONS = ["pg_cron", "pg_net", "supabase_vault"];
export const REQUIRED_VAULT_SECRETS = ["project_url", "cron_secret"];

interface Check {
  group: string;
  name: string;
  ok: boolean;
  detail?: string;
  info?: boolean; // informational: never fails the run
}

function parseArgs(argv: string[]) {
  const flags: Record<string, string | boolean> = {};
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") continue;
    if (!a.startsWith("--")) throw new Error(`unexpected argument ${a} (see --help)`);
    const [name, inline] = a.slice(2).split(/=(.*)/s, 2) as [string, string | undefined];
    if (["json", "help", "no-probe"].includes(name)) flags[name] = true;
    else if (["db-url", "env-file", "config", "url", "migrations"].includes(name)) {
      const v = inline ?? argv[++i];
      if (v === undefined) throw new Error(`--${name} needs a value`);
      flags[name] = v;
    } else throw new Error(`unknown option --${name} (see --help)`);
  }
  return flags;
}

export function parseEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    if (line.trim().startsWith("#")) continue;
    const m = /^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$/.exec(line);
    if (m) out[m[1]] = m[2].replace(/^(['"])(.*)\1$/, "$2");
  }
  return out;
}

/** Which env names the functions need (no default, not optional), and which are optional. */
export function envNames(): { required: string[]; optional: string[] } {
  const shape = configSchema.shape as Record<string, { safeParse: (v: unknown) => { success: boolean } }>;
  const required: string[] = [];
  const optional: string[] = [];
  for (const [name, field] of Object.entries(shape)) {
    if ((PLATFORM_INJECTED as readonly string[]).includes(name)) continue;
    (field.safeParse(undefined).success ? optional : required).push(name);
  }
  return { required, optional };
}

async function checkDatabase(
  sql: postgres.Sql,
  checks: Check[],
  env: Record<string, string> | null,
  migrationsDir: string,
) {
  const add = (c: Check) => checks.push(c);
  const exts = new Set((await sql<{ extname: string }[]>`select extname from pg_extension`).map((r) => r.extname));
  for (const e of REQUIRED_EXTENSIONS) {
    add({
      group: "extensions",
      name: e,
      ok: exts.has(e),
      detail: exts.has(e)
        ? undefined
        : `create extension ${e} (the migrations do for pg_cron and pg_net; vault is enabled on hosted projects)`,
    });
  }

  // Vault: names only; the cron secret is compared inside the database.
  let names = new Set<string>();
  try {
    names = new Set(
      (await sql<{ name: string }[]>`select name from vault.secrets where name is not null`).map((r) => r.name),
    );
  } catch {
    add({
      group: "vault",
      name: "vault.secrets readable",
      ok: false,
      detail: "vault is not available (supabase_vault)",
    });
  }
  for (const n of REQUIRED_VAULT_SECRETS) {
    add({
      group: "vault",
      name: `secret ${n}`,
      ok: names.has(n),
      detail: names.has(n) ? undefined : `missing: select vault.create_secret('<value>', '${n}');`,
    });
  }
  if (names.has("cron_secret") && env?.CRON_SECRET) {
    const [{ same }] = await sql<{ same: boolean }[]>`
      select coalesce(bool_or(decrypted_secret = ${env.CRON_SECRET}), false) as same from vault.decrypted_secrets where name = 'cron_secret'`;
    add({
      group: "vault",
      name: "cron_secret equals CRON_SECRET of the env file",
      ok: same,
      detail: same
        ? undefined
        : "differ: the cron jobs would get 401 from provision-key, reconcile-spend and ops-sweep",
    });
  }
  if (names.has("project_url")) {
    const [{ valid }] = await sql<{ valid: boolean }[]>`
      select coalesce(bool_and(decrypted_secret ~ '^https?://[^/\\s]+/?$'), false) as valid from vault.decrypted_secrets where name = 'project_url'`;
    add({
      group: "vault",
      name: "project_url is a base URL",
      ok: valid,
      detail: valid ? undefined : "it must look like https://<ref>.supabase.co (no path)",
    });
  }

  // Cron jobs
  let jobs = new Map<string, boolean>();
  try {
    jobs = new Map(
      (await sql<{ jobname: string; active: boolean }[]>`select jobname, active from cron.job`).map((
        r,
      ) => [r.jobname, r.active]),
    );
  } catch {
    add({ group: "cron", name: "cron.job readable", ok: false, detail: "pg_cron is not installed" });
  }
  for (const j of REQUIRED_CRON_JOBS) {
    const active = jobs.get(j);
    add({
      group: "cron",
      name: `job ${j}`,
      ok: active === true,
      detail: active === undefined
        ? "not scheduled (apply the migrations)"
        : active
        ? undefined
        : "scheduled but inactive (select cron.alter_job(<jobid>, active := true))",
    });
  }

  // Migrations
  const files = [...Deno.readDirSync(migrationsDir)].map((e) => e.name).filter((n) => /^\d+_.*\.sql$/.test(n)).sort();
  let applied = new Set<string>();
  try {
    applied = new Set(
      (await sql<{ version: string }[]>`select version from supabase_migrations.schema_migrations`).map((r) =>
        r.version
      ),
    );
  } catch {
    add({
      group: "migrations",
      name: "supabase_migrations.schema_migrations",
      ok: false,
      detail: "not found: run supabase db push",
    });
  }
  const pending = files.filter((f) => !applied.has(f.split("_")[0]));
  add({
    group: "migrations",
    name: `${files.length - pending.length} of ${files.length} applied`,
    ok: pending.length === 0,
    detail: pending.length ? `not applied: ${pending.join(", ")} (run supabase db push)` : undefined,
  });
  const unknown = [...applied].filter((v) => !files.some((f) => f.startsWith(`${v}_`)));
  if (unknown.length) {
    add({
      group: "migrations",
      name: "applied versions without a file here",
      ok: true,
      info: true,
      detail: unknown.join(", "),
    });
  }
}

function checkConfig(checks: Check[], configPath: string, functionsDir: string) {
  let toml = "";
  try {
    toml = Deno.readTextFileSync(configPath);
  } catch {
    checks.push({ group: "verify_jwt", name: configPath, ok: false, detail: "cannot read it" });
    return;
  }
  const flags = verifyJwtFlags(parseConfigToml(toml));
  let folders: string[] = [];
  try {
    folders = [...Deno.readDirSync(functionsDir)].filter((e) => e.isDirectory && !e.name.startsWith("_")).map((e) =>
      e.name
    ).sort();
  } catch { /* none */ }
  for (const [fn, intended] of Object.entries(INTENDED_VERIFY_JWT)) {
    const actual = flags.get(fn);
    checks.push({
      group: "verify_jwt",
      name: `${fn} = ${intended}`,
      ok: actual === intended,
      detail: actual === intended
        ? undefined
        : actual === undefined
        ? `no [functions.${fn}] verify_jwt in config.toml (the default is true)`
        : `config.toml says ${actual}`,
    });
  }
  for (const fn of folders.filter((f) => !(f in INTENDED_VERIFY_JWT))) {
    checks.push({
      group: "verify_jwt",
      name: `${fn}`,
      ok: false,
      detail:
        "a function folder with no intended verify_jwt: decide and add it to scripts/deploy-check.ts and config.toml",
    });
  }
}

// What an unset optional variable means, where "default used" would not say enough.
const UNSET_DETAIL: Record<string, string> = {
  DB_POOLER_URL: "not set: functions connect directly (SUPABASE_DB_URL); set the transaction pooler's URL (port 6543)",
};

function checkEnv(checks: Check[], env: Record<string, string> | null, envPath: string) {
  if (!env) {
    checks.push({
      group: "env file",
      name: envPath,
      ok: false,
      detail: "cannot read it: give --env-file <path> (the file you pass to supabase secrets set)",
    });
    return;
  }
  const { required, optional } = envNames();
  const shape = configSchema.shape as Record<
    string,
    { safeParse: (v: unknown) => { success: boolean; error?: { issues: { message: string }[] } } }
  >;
  for (const name of required) {
    const v = env[name];
    const r = v === undefined || v === "" ? null : shape[name].safeParse(v);
    checks.push({
      group: "env file",
      name,
      ok: !!r?.success,
      detail: r === null ? "missing" : r.success ? undefined : `malformed: ${r.error?.issues[0]?.message}`,
    });
  }
  for (const name of optional) {
    const v = env[name];
    if (v === undefined || v === "") {
      checks.push({
        group: "env file",
        name: `${name} (optional)`,
        ok: true,
        info: true,
        detail: UNSET_DETAIL[name] ?? "not set: default used",
      });
      continue;
    }
    const r = shape[name].safeParse(v);
    checks.push({
      group: "env file",
      name: `${name} (optional)`,
      ok: r.success,
      detail: r.success ? undefined : `malformed: ${r.error?.issues[0]?.message}`,
    });
  }
  const pooler = env.DB_POOLER_URL ? URL.parse(env.DB_POOLER_URL) : null;
  if (pooler && pooler.port !== "6543") {
    checks.push({
      group: "env file",
      name: "DB_POOLER_URL port",
      ok: true,
      info: true,
      detail: `${
        pooler.port || "default"
      }: Supabase's transaction pooler listens on 6543 (5432 is session mode or direct)`,
    });
  }
  for (const name of PLATFORM_INJECTED) {
    if (env[name] !== undefined && name !== "SUPABASE_DB_URL") {
      checks.push({
        group: "env file",
        name: `${name} not set by hand`,
        ok: true,
        info: true,
        detail: "hosted Supabase injects it; supabase secrets set skips SUPABASE_* names",
      });
    }
  }
}

/** What a deploy needs in each API key mode; with a project URL, which mode its Auth signs tokens in. */
async function checkKeys(checks: Check[], base: string | undefined) {
  const info = (name: string, detail: string) => checks.push({ group: "keys", name, ok: true, info: true, detail });
  info(
    "functions",
    "nothing to set: hosted injects SUPABASE_PUBLISHABLE_KEYS, SUPABASE_SECRET_KEYS and SUPABASE_JWKS (new keys) " +
      "or SUPABASE_ANON_KEY and SUPABASE_SERVICE_ROLE_KEY (legacy keys); verify_jwt stays off in both",
  );
  info(
    "operators (npm run admin)",
    "SUPABASE_SECRET_KEY=sb_secret_... (new keys) or SUPABASE_SERVICE_ROLE_KEY (legacy keys) in its --env-file",
  );
  info(
    "dashboard config.json",
    "SUPABASE_PUBLISHABLE_KEY=sb_publishable_... (new keys) or SUPABASE_ANON_KEY (legacy keys)",
  );
  if (!base) return;
  const url = `${base.replace(/\/$/, "")}/auth/v1/.well-known/jwks.json`;
  try {
    const r = await fetch(url, { signal: AbortSignal.timeout(10_000) });
    const jwks = await r.json().catch(() => null) as { keys?: { alg?: string; kid?: string }[] } | null;
    if (!r.ok || !Array.isArray(jwks?.keys)) {
      checks.push({
        group: "keys",
        name: "JWT signing keys discoverable",
        ok: false,
        detail: `${url} answered ${r.status} without a key set`,
      });
      return;
    }
    checks.push({ group: "keys", name: "JWT signing keys discoverable", ok: true });
    const algs = [...new Set(jwks!.keys.map((k) => k.alg ?? "?"))].join(", ");
    info(
      "user tokens",
      jwks!.keys.length
        ? `asymmetric signing keys (${algs}): checkout and rotate-key verify user tokens locally`
        : "legacy JWT secret (HS256, no public key): checkout and rotate-key ask Auth for each user token",
    );
  } catch {
    checks.push({ group: "keys", name: "JWT signing keys discoverable", ok: false, detail: `${url} unreachable` });
  }
}

async function probeFunctions(checks: Check[], base: string) {
  const root = base.replace(/\/$/, "");
  for (const fn of Object.keys(INTENDED_VERIFY_JWT)) {
    try {
      // A CORS preflight: answered by the function itself (our handler) on hosted and locally, without
      // credentials and without side effects. 404 = not deployed.
      const r = await fetch(`${root}/functions/v1/${fn}`, { method: "OPTIONS", signal: AbortSignal.timeout(10_000) });
      await r.body?.cancel();
      checks.push({
        group: "functions",
        name: `${fn} deployed`,
        ok: r.status < 400,
        detail: r.status < 400
          ? undefined
          : r.status === 404
          ? "not deployed (supabase functions deploy)"
          : `answered ${r.status}`,
      });
    } catch {
      checks.push({ group: "functions", name: `${fn} deployed`, ok: false, detail: `${root} unreachable` });
    }
  }
  try {
    const r = await fetch(`${root}/functions/v1/health`, { signal: AbortSignal.timeout(20_000) });
    const body = await r.json().catch(() => null) as Record<string, { status?: string }> | null;
    const bad = body
      ? ["database", "litellm", "paystack", "reconcile"].filter((k) => !["ok", "idle"].includes(body[k]?.status ?? ""))
      : [];
    const hint = body?.reconcile?.status === "never"
      ? " (pg_cron runs reconcile-spend every minute: check again in a minute)"
      : "";
    checks.push({
      group: "functions",
      name: "health is ok",
      ok: r.status === 200,
      detail: r.status === 200
        ? undefined
        : `health answered ${r.status}${
          bad.length ? `: ${bad.map((k) => `${k} ${body?.[k]?.status}`).join(", ")}` : ""
        }${hint}`,
    });
  } catch {
    checks.push({ group: "functions", name: "health is ok", ok: false, detail: "no answer" });
  }
}

const HELP = `usage: npm run deploy:check -- --db-url <postgres url> [--env-file .env] [--url https://<ref>.supabase.co]
  --db-url     the project's database (else SUPABASE_DB_URL)
  --env-file   the file of function secrets (default .env)
  --url        probe the deployed functions here (default: the vault's project_url); --no-probe skips it
  --config     supabase/config.toml to check (default: this repository's)
  --json       machine-readable output`;

async function main(): Promise<number> {
  const flags = parseArgs(Deno.args);
  if (flags.help) {
    console.log(HELP);
    return 0;
  }
  const checks: Check[] = [];
  const envPath = (flags["env-file"] as string | undefined) ?? `${ROOT}.env`;
  let env: Record<string, string> | null = null;
  try {
    env = parseEnvFile(Deno.readTextFileSync(envPath));
  } catch { /* reported by checkEnv */ }
  const dbUrl = (flags["db-url"] as string | undefined) ?? Deno.env.get("SUPABASE_DB_URL");
  let projectUrl = flags.url as string | undefined;

  checkConfig(
    checks,
    (flags.config as string | undefined) ?? `${ROOT}supabase/config.toml`,
    `${ROOT}supabase/functions`,
  );
  checkEnv(checks, env, envPath);
  if (!dbUrl) {
    checks.push({ group: "database", name: "connection", ok: false, detail: "give --db-url (or set SUPABASE_DB_URL)" });
  } else {
    const sql = postgres(dbUrl, { max: 1, prepare: false, connect_timeout: 10, idle_timeout: 5, onnotice: () => {} });
    try {
      await sql`select 1`;
      checks.push({ group: "database", name: "connection", ok: true });
      await checkDatabase(sql, checks, env, (flags.migrations as string | undefined) ?? `${ROOT}supabase/migrations`);
      if (!projectUrl && !flags["no-probe"]) {
        const [row] = await sql<
          { url: string | null }[]
        >`select decrypted_secret as url from vault.decrypted_secrets where name = 'project_url' limit 1`
          .catch(() => [{ url: null }]);
        projectUrl = row?.url ?? undefined;
      }
    } catch (e) {
      const code = (e as { code?: string }).code;
      checks.push({
        group: "database",
        name: "connection",
        ok: false,
        detail: `cannot connect (${code ?? (e as Error).message.split("\n")[0]})`,
      });
    } finally {
      await sql.end({ timeout: 5 });
    }
  }
  const probe = projectUrl && !flags["no-probe"] ? projectUrl : undefined;
  await checkKeys(checks, probe);
  if (probe) await probeFunctions(checks, probe);

  const failed = checks.filter((c) => !c.ok);
  if (flags.json) {
    console.log(
      JSON.stringify(
        {
          ok: failed.length === 0,
          checks,
          missing: failed.map((c) => `${c.group}: ${c.name}${c.detail ? ` (${c.detail})` : ""}`),
        },
        null,
        2,
      ),
    );
  } else {
    let group = "";
    for (const c of checks) {
      if (c.group !== group) {
        group = c.group;
        console.log(`\n${group}`);
      }
      console.log(`  ${c.ok ? (c.info ? "i" : "✓") : "✗"} ${c.name}${c.detail ? ` — ${c.detail}` : ""}`);
    }
    console.log(
      failed.length === 0
        ? "\nready: every check passed"
        : `\nNOT ready: ${failed.length} check${failed.length === 1 ? "" : "s"} failed:\n${
          failed.map((c) => `  - ${c.group}: ${c.name}${c.detail ? ` (${c.detail})` : ""}`).join("\n")
        }`,
    );
  }
  return failed.length === 0 ? 0 : 1;
}

if (import.meta.main) {
  try {
    Deno.exit(await main());
  } catch (e) {
    console.error(`deploy:check: ${(e as Error).message}`);
    Deno.exit(2);
  }
}
