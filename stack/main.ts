// `npm start`: the Docker-free local stack. Starts Postgres, applies the platform stand-ins and our
// migrations, starts the gateway (Auth/REST/Functions stand-ins + pg_net worker), the emulators and the
// dashboard, prints the URLs and a demo login, and stops everything on Ctrl-C.
import { ADMIN_PORTS, bare, DB_URL, LOCAL_DIR, localEnv, PORTS, ROOT, writeEnvFile } from "./local-env.ts";
import { fail, say, StackError } from "./log.ts";
import { BOOTSTRAP_ROLE, type Cluster, pgMajor, psql, run, startCluster, stopCluster, stopStaleCluster } from "./pg.ts";
import { pids, portFree, type Service, startService, stopServices } from "./services.ts";
import { PGBOUNCER, type Pooler, poolerUrl, poolerWanted, startPooler } from "./pooler.ts";
import { createDemoUser } from "./demo.ts";

const STATE = `${LOCAL_DIR}/stack.json`;
const READY = `${LOCAL_DIR}/stack.ready`;

function killStale() {
  // Processes a crashed run left behind (we own them: their pids are in our state file).
  try {
    const prev = JSON.parse(Deno.readTextFileSync(STATE)) as { pids: Record<string, number>; main?: number };
    for (const pid of [prev.main, ...Object.values(prev.pids)]) {
      if (!pid || pid === Deno.pid) continue;
      try {
        Deno.kill(pid, "SIGKILL");
      } catch { /* gone */ }
    }
  } catch { /* no previous state */ }
  try {
    Deno.removeSync(READY);
  } catch { /* none */ }
}

async function applyDatabase(env: Record<string, string>) {
  // The platform's part runs as its superuser, like hosted's init scripts; the project's part as postgres.
  for (const f of [...Deno.readDirSync(`${ROOT}/stack/platform/sql`)].map((e) => e.name).sort()) {
    await psql({ file: `${ROOT}/stack/platform/sql/${f}` }, BOOTSTRAP_ROLE);
  }
  // STACK_GRANTS=legacy: the default grants of projects created before May 30, 2026, before our migrations run.
  if (Deno.env.get("STACK_GRANTS") === "legacy") {
    await psql({ file: `${ROOT}/stack/platform/legacy-default-grants.sql` });
  } else if (Deno.env.get("STACK_GRANTS")) {
    fail(`STACK_GRANTS must be "legacy" or unset (got "${Deno.env.get("STACK_GRANTS")}")`);
  }
  if (bare()) return say("bare project (STACK_BARE=1): platform only, no migrations, no vault secrets");
  // The secrets our cron jobs read, as a deployer stores them on hosted Supabase (docs/deploy.md, step 6).
  await psql({
    sql: `select vault.create_secret('${env.SUPABASE_URL}', 'project_url');
          select vault.create_secret('${env.CRON_SECRET}', 'cron_secret');`,
  });
  const push = await run(`${ROOT}/node_modules/.bin/supabase`, [
    "db",
    "push",
    "--db-url",
    `${DB_URL}?sslmode=disable`,
    "--include-all",
    "--yes",
    "--workdir",
    ROOT,
  ], {});
  if (push.code !== 0) {
    fail(`supabase db push failed: ${(push.stderr || push.stdout).trim().split("\n").slice(-3).join(" | ")}`);
  }
  say("migrations applied with supabase db push");
}

/** Newest modification time (ms) of a file or of any file under a folder; 0 when absent. */
function newest(path: string): number {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(path);
  } catch {
    return 0;
  }
  if (!info.isDirectory) return info.mtime?.getTime() ?? 0;
  let max = 0;
  for (const e of Deno.readDirSync(path)) max = Math.max(max, newest(`${path}/${e.name}`));
  return max;
}

/**
 * Builds the dashboard (web/ -> web/dist) when web/dist is missing or older than its sources, so
 * `npm start` and `npm test` always serve the current dashboard. Builds into a private folder and swaps
 * it in, so a stack of another profile serving web/dist at the same time never sees a half-written build.
 */
async function ensureWebBuild(): Promise<void> {
  const web = `${ROOT}/web`;
  const built = newest(`${web}/dist/index.html`);
  const sources = Math.max(
    newest(`${web}/src`),
    newest(`${web}/index.html`),
    newest(`${web}/vite.config.ts`),
    newest(`${ROOT}/package-lock.json`),
  );
  if (built && built >= sources) return;
  const t0 = Date.now();
  const tmp = `${web}/.dist-${Deno.pid}`;
  const r = await run(
    `${ROOT}/node_modules/.bin/vite`,
    ["build", "--config", `${web}/vite.config.ts`, "--outDir", tmp],
    {},
  )
    .catch((e) => ({
      code: 1,
      stdout: "",
      stderr: `cannot run vite (npm run setup installs it): ${(e as Error).message}`,
    }));
  if (r.code !== 0) {
    try {
      Deno.removeSync(tmp, { recursive: true });
    } catch { /* none */ }
    const why = (r.stderr || r.stdout).trim().split("\n").slice(-3).join(" | ");
    if (!built) fail(`the dashboard build failed (npm run build:web): ${why}`);
    say(`dashboard build failed, serving the previous build: ${why}`);
    return;
  }
  const old = `${web}/.dist-old-${Deno.pid}`;
  try {
    Deno.renameSync(`${web}/dist`, old);
  } catch { /* no previous build */ }
  try {
    Deno.renameSync(tmp, `${web}/dist`);
  } catch {
    Deno.removeSync(tmp, { recursive: true }); // another stack swapped in its (equally fresh) build first
  }
  try {
    Deno.removeSync(old, { recursive: true });
  } catch { /* none */ }
  const size = /web bundle: .*/.exec(r.stdout)?.[0] ?? "";
  say(`dashboard built in ${((Date.now() - t0) / 1000).toFixed(1)} s; ${size}`);
}

function services(env: Record<string, string>, gatewayEnv: Record<string, string>): Service[] {
  const all: Service[] = [
    {
      name: "litellm",
      entry: "stack/emulators/litellm/main.ts",
      port: PORTS.litellm,
      readyPath: "/health/liveliness",
      env: {
        LITELLM_EMULATOR_PORT: String(PORTS.litellm),
        LITELLM_EMULATOR_ADMIN_PORT: String(ADMIN_PORTS.litellm),
        // Like a proxy configured with our generic API logging callback (callback_type: generic_api); a bare
        // project's proxy is not configured for it yet.
        ...(bare() ? {} : {
          LITELLM_CALLBACK_URL: `${env.SUPABASE_URL}/functions/v1/litellm-spend-callback`,
          LITELLM_CALLBACK_AUTH: `Bearer ${env.LITELLM_CALLBACK_SECRET}`,
        }),
      },
    },
    {
      name: "paystack",
      entry: "stack/emulators/paystack/main.ts",
      port: PORTS.paystack,
      env: {
        PAYSTACK_EMULATOR_PORT: String(PORTS.paystack),
        PAYSTACK_EMULATOR_ADMIN_PORT: String(ADMIN_PORTS.paystack),
      },
    },
    // The functions run in the gateway: it gets only what hosted injects into functions (local-env.ts).
    {
      name: "gateway",
      entry: "stack/platform/gateway.ts",
      port: PORTS.gateway,
      readyPath: "/health",
      onlyEnv: gatewayEnv,
    },
    { name: "web", entry: "stack/web-server.ts", port: PORTS.web },
  ];
  const external = {
    litellm: !env.LITELLM_BASE_URL.includes(`:${PORTS.litellm}`),
    paystack: !env.PAYSTACK_BASE_URL.includes(`:${PORTS.paystack}`),
  };
  // STACK_SERVICES=litellm,gateway limits what starts (e.g. "none" for a database-only stack).
  const only = Deno.env.get("STACK_SERVICES");
  return all.filter((s) => {
    if (only !== undefined && !only.split(",").includes(s.name)) return false;
    if ((s.name === "litellm" && external.litellm) || (s.name === "paystack" && external.paystack)) {
      say(
        `${s.name}: using ${
          s.name === "litellm" ? env.LITELLM_BASE_URL : env.PAYSTACK_BASE_URL
        } (emulator not started)`,
      );
      return false;
    }
    try {
      Deno.statSync(`${ROOT}/${s.entry}`);
      return true;
    } catch {
      say(`${s.name}: not built yet (${s.entry} missing), skipped`);
      return false;
    }
  });
}

/** Everything the stack needs from Debian and npm, checked before anything starts. */
function preflight() {
  const major = pgMajor();
  const extDir = Deno.env.get("STACK_PG_EXTENSION_DIR") ?? `/usr/share/postgresql/${major}/extension`;
  const needs: [string, string][] = [
    [
      `${extDir}/pg_cron.control`,
      `Debian package postgresql-${major}-cron is missing: run \`npm run setup\` (or apt-get install postgresql-${major}-cron)`,
    ],
    [
      `${extDir}/pgtap.control`,
      `Debian package postgresql-${major}-pgtap is missing: run \`npm run setup\` (or apt-get install postgresql-${major}-pgtap)`,
    ],
    [
      `${extDir}/plpgsql_check.control`,
      `Debian package postgresql-${major}-plpgsql-check is missing: run \`npm run setup\` (or apt-get install postgresql-${major}-plpgsql-check)`,
    ],
    [`${extDir}/pg_net.control`, "the pg_net stand-in extension is not installed: run `npm run setup`"],
    [`${extDir}/supabase_vault.control`, "the supabase_vault stand-in extension is not installed: run `npm run setup`"],
    [`${ROOT}/node_modules/.bin/supabase`, "the Supabase CLI is missing from node_modules: run `npm run setup`"],
    ...(poolerWanted()
      ? [[PGBOUNCER, "PgBouncer is missing: run `npm run setup` (or apt-get install pgbouncer)"] as [string, string]]
      : []),
  ];
  for (const [path, message] of needs) {
    try {
      Deno.statSync(path);
    } catch {
      fail(message);
    }
  }
}

async function main() {
  const started = Date.now();
  Deno.mkdirSync(LOCAL_DIR, { recursive: true });
  preflight();
  killStale();
  await stopStaleCluster();
  const { env, gateway: gatewayEnv } = await localEnv();
  // Functions connect through the transaction pooler, as on hosted Supabase (stack/pooler.ts); in a bare
  // project it is only the Connect dialog's string until a deploy sets it as a secret (docs/deploy.md).
  if (poolerWanted()) env.DB_POOLER_URL = poolerUrl(env.SUPABASE_DB_URL);
  if (poolerWanted() && !bare()) gatewayEnv.DB_POOLER_URL = env.DB_POOLER_URL;
  // Only the ports this stack may take (STACK_SERVICES=none needs the database's alone).
  const only = Deno.env.get("STACK_SERVICES")?.split(",");
  const taken = (name: string) => name === "db" || !only || only.includes(name);
  for (
    const [name, port] of [
      ...Object.entries(PORTS).filter(([n]) => taken(n)),
      ...Object.entries(ADMIN_PORTS).filter(([n]) => taken(n)).map(([n, p]) => [`${n} admin`, p] as const),
    ]
  ) {
    if (!(await portFree(port))) {
      fail(
        `port ${port} (${name}) is in use by another process: stop it (ss -ltnp 'sport = :${port}') and start again`,
      );
    }
  }
  let cluster: Cluster | undefined;
  let pooler: Pooler | undefined;
  // Every process we started, so a later start can kill what a crashed run left behind (killStale).
  const saveState = () =>
    Deno.writeTextFileSync(
      STATE,
      JSON.stringify({ main: Deno.pid, pids: { ...pids(), ...(pooler ? { pooler: pooler.pid } : {}) } }),
    );
  let stopping = false;
  const stop = async (code: number) => {
    if (stopping) return;
    stopping = true;
    say("stopping");
    await stopServices();
    await pooler?.stop();
    if (cluster) await stopCluster(cluster);
    try {
      Deno.removeSync(READY);
      Deno.removeSync(STATE);
    } catch { /* fine */ }
    Deno.exit(code);
  };
  Deno.addSignalListener("SIGINT", () => stop(0));
  Deno.addSignalListener("SIGTERM", () => stop(0));
  try {
    const list = services(env, gatewayEnv);
    // The dashboard builds while Postgres starts.
    const webBuild = list.some((s) => s.name === "web") ? ensureWebBuild() : Promise.resolve();
    webBuild.catch(() => {}); // awaited below; keeps an early failure from being reported as unhandled
    cluster = await startCluster();
    saveState();
    await applyDatabase(env);
    // After the platform SQL: it creates the postgres role PgBouncer logs in as (initdb's is supabase_admin).
    if (poolerWanted()) {
      pooler = await startPooler(cluster, env.SUPABASE_DB_URL);
      saveState();
    }
    await webBuild;
    for (const s of list) {
      await startService(s, env);
      saveState();
    }
    // Demo activity needs both emulators (it pays and chats); against real services only the user is made.
    const names = list.map((s) => s.name);
    const demo = bare() ? "none (bare project)" : await createDemoUser(env, {
      activity: ["litellm", "paystack", "gateway"].every((n) => names.includes(n)) &&
        Deno.env.get("STACK_DEMO_ACTIVITY") !== "0",
    });
    writeEnvFile(`${LOCAL_DIR}/stack.env`, env);
    Deno.writeTextFileSync(READY, String(Date.now()));
    const secs = ((Date.now() - started) / 1000).toFixed(1);
    console.log(`
litellm-credits local stack is up (${secs} s)
  Dashboard        http://127.0.0.1:${PORTS.web}
  Supabase API     ${env.SUPABASE_URL}  (auth /auth/v1, rest /rest/v1, functions /functions/v1)
  Postgres         ${DB_URL}${
      env.DB_POOLER_URL
        ? `\n  Pooler           ${env.DB_POOLER_URL}  (PgBouncer, transaction mode: what the functions use)`
        : ""
    }
  LiteLLM proxy    ${env.LITELLM_PUBLIC_URL}
  Paystack         ${env.PAYSTACK_BASE_URL}
  Demo login       ${demo}
  Mail (outbox)    ${env.SUPABASE_URL}/_stack/mail  (sign-up links and notification emails, e.g. the demo's receipts)
  Env for tools    ${LOCAL_DIR}/stack.env
Press Ctrl-C to stop.`);
    setInterval(() => {}, 1 << 30); // stay in the foreground even when no service was started
  } catch (e) {
    console.error(e instanceof StackError ? `[stack] error: ${e.message}` : e);
    await stop(1);
  }
}

main().catch((e) => {
  // Expected failures (a taken port, a missing package) are one line that says what to do.
  console.error(e instanceof StackError ? `[stack] error: ${e.message}` : e);
  Deno.exit(1);
});
