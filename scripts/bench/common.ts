// Shared helpers of the benchmark scripts (scripts/bench/*.ts). They run inside a private stack started by
// scripts/with-stack.sh (STACK_PROFILE=bench), which exports the stack's env; everything is loopback.
import postgres from "postgres";

export class BenchError extends Error {}

export function env(name: string): string {
  const v = Deno.env.get(name);
  if (!v) throw new BenchError(`${name} is not set: run the benchmark through its npm script (npm run bench:...)`);
  return v;
}

/** The project's API keys: publishable and secret (new key mode), else the legacy anon and service_role keys. */
export const publishableKey = () => Deno.env.get("SUPABASE_PUBLISHABLE_KEY") ?? env("SUPABASE_ANON_KEY");
export const secretKey = () => Deno.env.get("SUPABASE_SECRET_KEY") ?? env("SUPABASE_SERVICE_ROLE_KEY");

let _sql: postgres.Sql | undefined;
/** Postgres as the postgres user (fixtures and reading outcomes). Numerics stay strings (exact). */
export function sql(): postgres.Sql {
  _sql ??= postgres(env("SUPABASE_DB_URL"), {
    max: 12,
    onnotice: () => {},
    connection: { application_name: "bench" },
    types: { numeric: { to: 1700, from: [1700], serialize: (v: unknown) => String(v), parse: (v: string) => v } },
  });
  return _sql;
}
export async function closeSql() {
  await _sql?.end({ timeout: 5 });
  _sql = undefined;
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Nearest-rank percentile of numbers (not mutated). */
export function pct(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))];
}

export function stats(values: number[]) {
  return {
    n: values.length,
    p50: pct(values, 50),
    p95: pct(values, 95),
    max: values.length ? Math.max(...values) : NaN,
    mean: values.length ? values.reduce((a, b) => a + b, 0) / values.length : NaN,
  };
}

export const ms = (v: number) => (Number.isFinite(v) ? `${Math.round(v)} ms` : "n/a");
export const secs = (v: number) => (Number.isFinite(v) ? `${(v / 1000).toFixed(2)} s` : "n/a");
export const int = (v: number) => (Number.isFinite(v) ? Math.round(v).toLocaleString("en-US") : "n/a");

/** Prints an aligned text table (also valid Markdown). */
export function table(headers: string[], rows: (string | number)[][]) {
  const cells = [headers, ...rows.map((r) => r.map(String))];
  const widths = headers.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? "").length)));
  const line = (r: string[]) => `| ${r.map((c, i) => c.padEnd(widths[i])).join(" | ")} |`;
  console.log(line(headers));
  console.log(`|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`);
  for (const r of cells.slice(1)) console.log(line(r));
}

export const verdict = (ok: boolean) => (ok ? "PASS" : "MISS");

/** Runs fn over items with at most `concurrency` in flight; results in input order. */
export async function pool<T, R>(
  items: T[],
  concurrency: number,
  fn: (item: T, i: number) => Promise<R>,
): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < items.length; i = next++) out[i] = await fn(items[i], i);
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return out;
}

export function adminUrl(baseUrl: string): string {
  const u = new URL(baseUrl);
  u.port = String(Number(u.port) + 1);
  return u.origin;
}

async function adminCall(
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
  if (!r.ok) throw new BenchError(`admin ${method} ${path} -> ${r.status}: ${text.slice(0, 300)}`);
  return text ? JSON.parse(text) : null;
}
// deno-lint-ignore no-explicit-any
export const litellmAdmin = (path: string, body?: unknown, method?: string): Promise<any> =>
  adminCall(env("LITELLM_BASE_URL"), env("LITELLM_MASTER_KEY"), path, body, method);
// deno-lint-ignore no-explicit-any
export const paystackAdmin = (path: string, body?: unknown, method?: string): Promise<any> =>
  adminCall(env("PAYSTACK_BASE_URL"), env("PAYSTACK_SECRET_KEY"), path, body, method);

/** POST to LiteLLM's API with the master key (as our backend calls it). */
// deno-lint-ignore no-explicit-any
export async function litellmApi(path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const r = await fetch(`${env("LITELLM_BASE_URL")}${path}`, {
    method: body === undefined ? "GET" : "POST",
    headers: { Authorization: `Bearer ${env("LITELLM_MASTER_KEY")}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: r.status, body: await r.json().catch(() => null) };
}

/** LiteLLM's rows of many keys (raw values or sha256 tokens), by token, through /v2/key/info in batches of 1000. */
// deno-lint-ignore no-explicit-any
export async function litellmKeyRows(keys: string[]): Promise<Map<string, any>> {
  // deno-lint-ignore no-explicit-any
  const out = new Map<string, any>();
  for (let i = 0; i < keys.length; i += 1000) {
    const r = await litellmApi("/v2/key/info", { keys: keys.slice(i, i + 1000) });
    if (r.status !== 200) throw new BenchError(`/v2/key/info -> ${r.status}`);
    for (const row of r.body.info) out.set(row.token, row);
  }
  return out;
}

/** max_budget of many keys (by sha256 token), through /v2/key/info in batches of 1000. */
export async function litellmBudgets(tokens: string[]): Promise<Map<string, number | null>> {
  const rows = await litellmKeyRows(tokens);
  return new Map([...rows].map(([token, row]) => [token, row.max_budget ?? null]));
}

/** Calls one of our functions as pg_cron does (cron secret); the body parsed when it is JSON. */
// deno-lint-ignore no-explicit-any
export async function invokeFunction(name: string, body: unknown): Promise<{ status: number; body: any }> {
  const r = await fetch(`${env("SUPABASE_URL")}/functions/v1/${name}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${env("CRON_SECRET")}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  try {
    return { status: r.status, body: JSON.parse(text) };
  } catch {
    return { status: r.status, body: null };
  }
}

export interface FnStats {
  invocations: number;
  errors: number;
  max_cpu_ms: number;
  max_rss_mb: number;
  total_wall_ms: number;
}
/** The gateway's per-function stats (GET /_stack/functions/stats, secret key). */
export async function functionStats(): Promise<Record<string, FnStats>> {
  const r = await fetch(`${env("SUPABASE_URL")}/_stack/functions/stats`, { headers: { apikey: secretKey() } });
  if (!r.ok) throw new BenchError(`functions stats -> ${r.status}`);
  return await r.json();
}
export async function resetFunctionStats() {
  const r = await fetch(`${env("SUPABASE_URL")}/_stack/functions/stats/reset`, {
    method: "POST",
    headers: { apikey: secretKey() },
  });
  await r.body?.cancel();
  if (!r.ok) throw new BenchError(`functions stats reset -> ${r.status}`);
}

// --- the transaction pooler (PgBouncer, when the stack runs one) ---

export interface PoolerTotals {
  queries: number; // SQL queries PgBouncer passed on for the functions
  waitMs: number; // time clients waited for a server connection
  cpuMs: number | null; // PgBouncer's own CPU
}

/** PgBouncer's running totals for the functions' database (admin console SHOW STATS), null without a pooler. */
export async function poolerTotals(): Promise<PoolerTotals | null> {
  const url = Deno.env.get("DB_POOLER_URL");
  if (!url) return null;
  const u = new URL(url);
  u.pathname = "/pgbouncer";
  // The admin console speaks only the simple query protocol and has no pg_type to read.
  const admin = postgres(u.toString(), { max: 1, fetch_types: false, onnotice: () => {} });
  try {
    const rows = await admin.unsafe("SHOW STATS");
    const r = rows.find((x) => x.database === new URL(url).pathname.slice(1));
    const pid = stackPids().pooler;
    return {
      queries: Number(r?.total_query_count ?? 0),
      waitMs: Number(r?.total_wait_time ?? 0) / 1000,
      cpuMs: pid ? cpuMs(pid) : null,
    };
  } finally {
    await admin.end({ timeout: 1 });
  }
}

/** What the pooler did between two readings, as one table cell. */
export function poolerDelta(a: PoolerTotals | null, b: PoolerTotals | null, requests: number): string {
  if (!a || !b) return "n/a (no pooler)";
  const cpu = a.cpuMs === null || b.cpuMs === null ? "n/a" : ms(b.cpuMs - a.cpuMs);
  return `${int(b.queries - a.queries)} queries (${
    ((b.queries - a.queries) / requests).toFixed(1)
  } per request), waited for a server ${ms(b.waitMs - a.waitMs)} in total, PgBouncer CPU ${cpu}`;
}

// --- processes of the stack (Linux /proc) ---

/** Pids of the stack's services (gateway, litellm, paystack, web), from the stack's state file. */
export function stackPids(): Record<string, number> {
  const dir = env("STACK_LOCAL_DIR");
  try {
    return JSON.parse(Deno.readTextFileSync(`${dir}/stack.json`)).pids ?? {};
  } catch {
    return {};
  }
}

/** Resident set size of a process, MB (null when it cannot be read). */
export function rssMb(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
    return m ? Number(m[1]) / 1024 : null;
  } catch {
    return null;
  }
}

/** CPU time (user + system) a process has used so far, ms (clock ticks assumed 100 Hz, Linux default). */
export function cpuMs(pid: number): number | null {
  try {
    const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[11]) + Number(f[12])) * 10; // utime, stime (fields 14, 15)
  } catch {
    return null;
  }
}

let postmasterPid: number | null | undefined;
/** Finds the stack's postmaster (its data directory's postmaster.pid), for postgresCpuMs. */
export async function findPostmaster() {
  const [{ dir }] = await sql()<
    { dir: string }[]
  >`select setting as dir from pg_settings where name = 'data_directory'`;
  try {
    postmasterPid = Number(Deno.readTextFileSync(`${dir}/postmaster.pid`).split("\n")[0]);
  } catch {
    postmasterPid = null; // not readable: Postgres CPU is not reported
  }
}

/** Postgres CPU so far, ms: the postmaster's own and its reaped children's time, plus live children's. */
export function postgresCpuMs(): number | null {
  if (!postmasterPid) return null;
  try {
    const read = (pid: number) => {
      const s = Deno.readTextFileSync(`/proc/${pid}/stat`);
      return s.slice(s.lastIndexOf(")") + 2).split(" ");
    };
    const f = read(postmasterPid);
    let ticks = Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]); // utime stime cutime cstime
    for (const e of Deno.readDirSync("/proc")) {
      if (!/^\d+$/.test(e.name)) continue;
      try {
        const c = read(Number(e.name));
        if (Number(c[1]) === postmasterPid) ticks += Number(c[11]) + Number(c[12]);
      } catch { /* exited */ }
    }
    return ticks * 10;
  } catch {
    return null;
  }
}

/** CPU so far of the gateway, the LiteLLM emulator, Postgres and PgBouncer (ms; null when unreadable). */
export function stackCpu() {
  const pids = stackPids();
  const of = (pid: number | undefined) => (pid ? cpuMs(pid) : null);
  return { gateway: of(pids.gateway), litellm: of(pids.litellm), postgres: postgresCpuMs(), pooler: of(pids.pooler) };
}
export type StackCpu = ReturnType<typeof stackCpu>;
const minus = (a: number | null, b: number | null) => (a === null || b === null ? null : b - a);
/** What each process used between two stackCpu() readings. */
export const cpuDelta = (a: StackCpu, b: StackCpu): StackCpu => ({
  gateway: minus(a.gateway, b.gateway),
  litellm: minus(a.litellm, b.litellm),
  postgres: minus(a.postgres, b.postgres),
  pooler: minus(a.pooler, b.pooler),
});
/** "gateway / emulator / Postgres / PgBouncer" CPU, as one table cell. */
export const cpuCell = (c: StackCpu) =>
  [c.gateway, c.litellm, c.postgres, c.pooler].map((v) => ms(v ?? NaN)).join(" / ");

export const mb = (v: number | null) => (v === null || !Number.isFinite(v) ? "n/a" : `${v.toFixed(1)} MB`);

/** Samples a process's RSS every `everyMs` until stopped: baseline, peak, last. */
export function rssSampler(pid: number | undefined, everyMs = 20) {
  const baseline = pid ? rssMb(pid) : null;
  let peak = baseline ?? 0;
  let last = baseline;
  const timer = pid
    ? setInterval(() => {
      const v = rssMb(pid);
      if (v !== null) {
        last = v;
        peak = Math.max(peak, v);
      }
    }, everyMs)
    : undefined;
  return {
    stop() {
      clearInterval(timer);
      const end = pid ? rssMb(pid) : null;
      if (end !== null) peak = Math.max(peak, end);
      return { baseline, peak: pid ? peak : null, end: end ?? last };
    },
  };
}

/** The machine, for the results table: CPU model, cores, memory, date. */
export function machine() {
  let model = "unknown";
  let memGb = NaN;
  try {
    model = /model name\s*:\s*(.+)/.exec(Deno.readTextFileSync("/proc/cpuinfo"))?.[1]?.trim() ?? model;
  } catch { /* not Linux */ }
  try {
    memGb = Number(/MemTotal:\s+(\d+) kB/.exec(Deno.readTextFileSync("/proc/meminfo"))?.[1]) / 1024 / 1024;
  } catch { /* not Linux */ }
  return {
    cpu: model,
    cores: navigator.hardwareConcurrency,
    mem: `${memGb.toFixed(1)} GiB`,
    date: new Date().toISOString().replace(/\.\d+Z$/, "Z"),
  };
}

/** 1/5/15-minute load averages: other work on the machine skews the numbers (2 cores). */
export function loadAvg(): string {
  try {
    return Deno.readTextFileSync("/proc/loadavg").split(" ").slice(0, 3).join(" ");
  } catch {
    return "n/a";
  }
}

export function printMachine(title: string) {
  const m = machine();
  console.log(`\n== ${title}`);
  console.log(
    `machine: ${m.cpu}, ${m.cores} cores, ${m.mem} RAM; ${m.date}; Deno ${Deno.version.deno}; load average ${loadAvg()}`,
  );
  const pooled = Deno.env.get("DB_POOLER_URL");
  console.log(
    `functions' database: ${
      pooled ? `through PgBouncer (transaction mode, :${new URL(pooled).port})` : "direct (SUPABASE_DB_URL)"
    }, DB_POOL_MAX ${Deno.env.get("DB_POOL_MAX") ?? "default"}`,
  );
}

/**
 * Sign-up through the Auth stand-in (POST /auth/v1/signup with the publishable key), as the dashboard does,
 * then the confirmation link from the stack's outbox (/_stack/mail.json), as the user would open it: the
 * confirmation grants the sign-up credit and the link's redirect carries the session. ms is the sign-up
 * request alone.
 */
export async function signUp(
  email: string,
  password = "bench-password-1",
): Promise<{ ok: true; id: string; token: string; ms: number } | { ok: false; error: string; ms: number }> {
  const t0 = performance.now();
  let t = 0;
  try {
    const r = await fetch(`${env("SUPABASE_URL")}/auth/v1/signup`, {
      method: "POST",
      headers: {
        apikey: publishableKey(),
        Authorization: `Bearer ${publishableKey()}`,
        "Content-Type": "application/json",
      },
      body: JSON.stringify({ email, password }),
    });
    const body = await r.json().catch(() => null);
    t = performance.now() - t0;
    if (!r.ok || !body?.id) {
      return { ok: false, error: `HTTP ${r.status}: ${JSON.stringify(body).slice(0, 200)}`, ms: t };
    }
    const mail = await (await fetch(`${env("SUPABASE_URL")}/_stack/mail.json?to=${encodeURIComponent(email)}`)).json();
    const link = await fetch(mail[0]?.link ?? "about:blank", { redirect: "manual" });
    await link.body?.cancel();
    const token = new URLSearchParams((link.headers.get("location") ?? "").split("#")[1] ?? "").get("access_token");
    if (!token) {
      return {
        ok: false,
        error: `confirmation link: HTTP ${link.status} ${link.headers.get("location") ?? ""}`.slice(0, 200),
        ms: t,
      };
    }
    return { ok: true, id: body.id, token, ms: t };
  } catch (e) {
    return { ok: false, error: (e as Error).message, ms: t || performance.now() - t0 };
  }
}

/** A run id so repeated runs against one stack never collide on emails. */
export const runId = () => Date.now().toString(36) + Math.random().toString(36).slice(2, 6);

/** Runs main(); exit 1 only when the benchmark could not run (a missed target is not an error). */
export function runBench(main: () => Promise<void>) {
  main().then(async () => {
    console.log(`load average at the end: ${loadAvg()}`);
    await closeSql();
    Deno.exit(0);
  }, async (e) => {
    console.error(`\nbenchmark could not run: ${e instanceof BenchError ? e.message : (e as Error).stack ?? e}`);
    await closeSql().catch(() => {});
    Deno.exit(1);
  });
}
