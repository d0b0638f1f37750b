// The 100,000-key fleet of bench:reconcile and bench:state-loss: seeding users and keys on both sides,
// pg_cron paused, reconcile cycles started as pg_cron starts them, and single invocations measured alone.
//
// Seeding (not measured): users are inserted into auth.users with SQL in batches of 5,000, so the real
// sign-up trigger (handle_new_user) runs for each (profile, +2.00 grant, key row, provisioning job); its
// pg_net call to provision-key is switched off inside each batch's transaction by renaming the vault secret
// project_url (renamed back before commit, so nothing outside the batch ever sees it missing). The keys are
// then marked active as complete_provisioning would, and the same keys (same raw values, alias, user,
// max_budget = grant, random spend) are created on the LiteLLM emulator with POST /admin/import.
// VACUUM ANALYZE afterwards stands in for autovacuum.
//
// Cycle: `select private.kick_reconcile()` exactly as the pg_cron job does (it queues N = chunks /
// reconcile_chunks_per_invocation pg_net calls to reconcile-spend, sent concurrently by the stack's pg_net
// worker), then wait until every chunk's last_finished_at is newer than the cycle start. Mode "direct"
// invokes the function N times concurrently from here instead of through pg_net; mode "process" runs each
// invocation in a Deno process of its own (scripts/bench/isolate.ts), PROCESS_CONCURRENCY at a time, and keeps
// each one's CPU time and peak RSS. Between cycles, "a minute
// passes" by moving every chunk's last_finished_at back 2 minutes.
import {
  BenchError,
  cpuCell,
  cpuDelta,
  cpuMs,
  findPostmaster,
  functionStats,
  int,
  invokeFunction,
  litellmAdmin,
  mb,
  ms,
  pool,
  resetFunctionStats,
  rssSampler,
  runId,
  secs,
  sleep,
  sql,
  type StackCpu,
  stackCpu,
  stackPids,
} from "./common.ts";
import { type IsolatedRun, runIsolated } from "./isolate.ts";

const BATCH = 5_000;
const CYCLE_TIMEOUT_MS = 300_000;
const PROCESS_CONCURRENCY = 4;
const DISABLED_SECRET = "project_url:bench-disabled";

/** Mulberry32: reproducible spend values. */
export function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// deno-lint-ignore no-explicit-any
type Sql = any;

/**
 * Switches private.invoke_function off (on: false) or back on by renaming the vault secret project_url:
 * with it missing, invoke_function queues nothing and returns null. tx: inside a transaction, or global.
 */
export async function functionCalls(on: boolean, tx: Sql = sql()) {
  const [from, to] = on ? [DISABLED_SECRET, "project_url"] : ["project_url", DISABLED_SECRET];
  await tx`select vault.update_secret(s.id, new_name := ${to}) from vault.secrets s where s.name = ${from}
            and not exists (select 1 from vault.secrets where name = ${to})`;
}

/**
 * Runs fn with pg_cron's jobs paused (the benchmark starts every run itself) once whatever cron started
 * before has finished; restores the jobs (and invoke_function) afterwards, whatever happens.
 * fn gets the paused jobs (to play cron's part when the benchmark wants it).
 */
export async function withCronPaused<T>(
  fn: (jobs: { jobid: number; jobname: string; schedule: string; command: string }[]) => Promise<T>,
) {
  const db = sql();
  if (!stackPids().gateway) console.log("note: gateway pid unknown (no stack.json): /proc measurements are skipped");
  await findPostmaster();
  const paused = await db<{ jobid: number; jobname: string; schedule: string; command: string }[]>`
    select jobid, jobname, schedule, command from cron.job where active`;
  for (const j of paused) await db`select cron.alter_job(${j.jobid}::bigint, active := false)`;
  try {
    await waitIdle(120_000);
    return await fn(paused);
  } finally {
    for (const j of paused) await db`select cron.alter_job(${j.jobid}::bigint, active := true)`.catch(() => {});
    await functionCalls(true).catch(() => {});
  }
}

/** The id of the last pg_net request queued so far (text: a bigint), to count the requests after it. */
export async function netMark(): Promise<string> {
  const [{ id }] = await sql()<{ id: string }[]>`
    select (case when is_called then last_value else last_value - 1 end)::text as id from net.http_request_queue_id_seq`;
  return id;
}

/**
 * Waits (up to timeoutMs) until nothing pg_net started is left: an empty request queue, no reconcile run or
 * chunk lease open, no provisioning job running, and (since: a netMark) a response to every request queued
 * after the mark. Returns whether it got there in time.
 */
export async function waitIdle(timeoutMs: number, since: string | null = null): Promise<boolean> {
  const until = performance.now() + timeoutMs;
  for (;;) {
    const [{ busy }] = await sql()<{ busy: number }[]>`
      select ((select count(*) from net.http_request_queue)
              + (select count(*) from public.reconcile_chunks where lease_until > now())
              + (select count(*) from private.reconcile_runs
                  where finished_at is null and started_at > now() - interval '2 minutes')
              + (select count(*) from private.provisioning_jobs where status = 'running' and locked_until > now())
              + case when ${since}::bigint is null then 0 else
                  (select case when is_called then last_value else last_value - 1 end from net.http_request_queue_id_seq)
                  - ${since}::bigint - (select count(*) from net._http_response where id > ${since}::bigint) end
             )::int as busy`;
    if (busy === 0) return true;
    if (performance.now() > until) return false;
    await sleep(100);
  }
}

export interface Fleet {
  rawKeys: string[];
  owners: { alias: string; userId: string; keyId: string }[]; // rawKeys order
  spendMicros: number[]; // each key's spend on LiteLLM, micro-USD (rawKeys order)
  grantMicros: number; // the sign-up grant, micro-USD
  chunks: number;
  perInvocation: number; // reconcile_chunks_per_invocation
}

/** Seeds `count` users with active keys, in our database and on the LiteLLM emulator (see the top). */
export async function seedFleet(count: number): Promise<Fleet> {
  const db = sql();
  const [{ grant, rpm, tpm }] = await db<{ grant: string; rpm: number; tpm: number }[]>`
    select private.setting_numeric('signup_grant_usd')::text as grant, private.setting_numeric('key_rpm_limit')::int as rpm,
           private.setting_numeric('key_tpm_limit')::int as tpm`;
  const tag = runId();
  const rand = rng(20261126);
  const rawKeys: string[] = [];
  const owners: Fleet["owners"] = [];
  const spendMicros: number[] = [];
  let tDb = 0;
  let tEmu = 0;
  const t0 = performance.now();
  let pendingImport: Promise<void> = Promise.resolve();
  for (let from = 0; from < count; from += BATCH) {
    const to = Math.min(count, from + BATCH) - 1;
    const tb = performance.now();
    const keys = await db.begin(async (tx: Sql) => {
      // (invoke_function's "vault secrets not set" warnings still reach the server log: as on hosted,
      // postgres may not change log_min_messages.)
      await tx`set local client_min_messages = error`;
      await functionCalls(false, tx);
      const users = await tx<{ id: string }[]>`
        insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
                                raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
        select '00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated', 'authenticated',
               'bench-rec-' || ${tag}::text || '-' || g || '@example.com', '', now(),
               '{"provider":"email","providers":["email"]}'::jsonb, '{}'::jsonb, now(), now()
          from generate_series(${from}::int, ${to}::int) g
        returning id`;
      const ids = users.map((u: { id: string }) => u.id);
      await tx`update private.provisioning_jobs
                  set status = 'done', attempts = 1, finished_at = now(), updated_at = now(), locked_until = null
                where user_id = any(${ids}::uuid[]) and status = 'queued'`;
      const rows = await tx<{ id: string; key_value: string; key_alias: string; user_id: string }[]>`
        update public.api_keys
           set status = 'active', activated_at = now(), litellm_max_budget = ${grant}::numeric,
               observed_max_budget = ${grant}::numeric, sync_status = 'synced', last_sync_at = now()
         where user_id = any(${ids}::uuid[]) and status = 'pending'
        returning id, key_value, key_alias, user_id`;
      await functionCalls(true, tx);
      return rows;
    });
    tDb += performance.now() - tb;
    if (keys.length !== to - from + 1) {
      throw new BenchError(`batch ${from}: ${keys.length} keys for ${to - from + 1} users`);
    }
    const entries = keys.map((k: { id: string; key_value: string; key_alias: string; user_id: string }) => {
      const spend = Math.round((0.01 + rand() * 1.98) * 1e6);
      rawKeys.push(k.key_value);
      owners.push({ alias: k.key_alias, userId: k.user_id, keyId: k.id });
      spendMicros.push(spend);
      return {
        key: k.key_value,
        key_alias: k.key_alias,
        max_budget: Number(grant),
        spend: spend / 1e6,
        user_id: k.user_id,
        rpm_limit: rpm,
        tpm_limit: tpm,
        metadata: { app: "litellm-credits", user_id: k.user_id, key_id: k.id },
      };
    });
    // The emulator import of this batch overlaps the next database batch.
    await pendingImport;
    pendingImport = (async () => {
      const te = performance.now();
      const r = await litellmAdmin("/admin/import", { keys: entries });
      tEmu += performance.now() - te;
      if (r.keys_created !== entries.length) throw new BenchError(`emulator import: ${JSON.stringify(r)}`);
    })();
    if ((from / BATCH) % 4 === 3) console.log(`  loaded ${int(to + 1)} users/keys (${secs(performance.now() - t0)})`);
  }
  await pendingImport;
  const [{ queued }] = await db<{ queued: number }[]>`select count(*)::int as queued from net.http_request_queue`;
  const tv = performance.now();
  await db.unsafe("vacuum analyze public.api_keys");
  await db.unsafe("vacuum analyze private.provisioning_jobs");
  await db.unsafe(
    "analyze auth.users, public.profiles, public.credit_ledger, public.spend_snapshots, public.reconcile_chunks",
  );
  const [counts] = await db<{ active: number; total: number; chunks: number; per: number }[]>`
    select (select count(*) from public.api_keys where status = 'active')::int as active,
           (select count(*) from public.api_keys)::int as total,
           (select coalesce(max(reconcile_chunk) + 1, 0) from public.api_keys)::int as chunks,
           private.setting_numeric('reconcile_chunks_per_invocation')::int as per`;
  const emu = await litellmAdmin("/admin/stats");
  console.log(
    `setup: ${int(count)} users + keys in ${secs(performance.now() - t0)} (SQL with the sign-up trigger ${
      secs(tDb)
    }, ` +
      `emulator import ${secs(tEmu)}, vacuum analyze ${secs(performance.now() - tv)}); ${
        int(counts.active)
      } active keys ` +
      `of ${int(counts.total)} in ${counts.chunks} chunks (${counts.per} per invocation); emulator holds ${
        int(emu.keys)
      } ` +
      `keys; pg_net calls queued by the load: ${queued}`,
  );
  if (queued > 0) {
    throw new BenchError("the load queued pg_net calls (the trigger's provision-key call was not switched off)");
  }
  return {
    rawKeys,
    owners,
    spendMicros,
    grantMicros: Math.round(Number(grant) * 1e6),
    chunks: counts.chunks,
    perInvocation: counts.per,
  };
}

/** "A minute passes": every chunk is due again. */
export async function nextMinute() {
  await sql()`update public.reconcile_chunks set last_finished_at = last_finished_at - interval '2 minutes', lease_until = null
               where last_finished_at is not null`;
}

/** Only these chunks are due (the others finished just now); chunk rows exist, as the first claim creates them. */
export async function dueOnly(chunks: number[], total: number) {
  const db = sql();
  await db`insert into public.reconcile_chunks (chunk) select generate_series(0, ${
    total - 1
  }::int) on conflict do nothing`;
  await db`update public.reconcile_chunks set lease_until = null,
             last_finished_at = case when chunk = any(${chunks}::int[]) then now() - interval '2 minutes' else now() end`;
}

/**
 * One invocation of a function alone on the machine, so the gateway's CPU delta (/proc) and its RSS growth
 * (sampled every 5 ms) are that invocation's own; plus the gateway's own figures and LiteLLM's requests.
 */
export async function isolated(name: string, body: unknown, label: string) {
  await sleep(500);
  await resetFunctionStats();
  await litellmAdmin("/admin/stats/reset", {});
  const gw = stackPids().gateway;
  const sampler = rssSampler(gw, 5);
  const cpu0 = gw ? cpuMs(gw) : null;
  const t = performance.now();
  const r = await invokeFunction(name, body);
  const wall = performance.now() - t;
  const cpu1 = gw ? cpuMs(gw) : null;
  const rss = sampler.stop();
  const fn = (await functionStats())[name];
  const ll = await litellmAdmin("/admin/stats");
  const cpu = cpu0 === null || cpu1 === null ? null : cpu1 - cpu0;
  // deno-lint-ignore no-explicit-any
  const report: any = r.body;
  return {
    label,
    status: r.status,
    report,
    wall,
    cpu,
    rss,
    fn,
    litellm: ll.total as number,
    litellmByRoute: ll.requests,
  };
}
export type Isolated = Awaited<ReturnType<typeof isolated>>;

/** The worst CPU of an isolated invocation: the gateway's own figure or the /proc delta, whichever is higher. */
export const isolatedCpu = (p: Isolated) => Math.max(p.fn?.max_cpu_ms ?? 0, p.cpu ?? 0);

export interface InvocationReport {
  outcome?: string;
  claimed?: number;
  chunks?: number;
  keys?: number;
  snapshots?: number;
  repairs?: number;
  missing?: number;
  recreated?: number;
  litellm_requests?: number;
  sql_round_trips?: number;
  wall_ms?: number;
  error?: string | null;
}

export interface CycleResult {
  label: string;
  invocations: number;
  chunks: number;
  chunksDone: number;
  wallMs: number; // cycle start -> last chunk finished (Postgres clock)
  clientWallMs: number; // kick -> every invocation finished (our clock)
  litellmRequests: number;
  litellmByRoute: Record<string, number>;
  sqlRoundTrips: number | null;
  reportsMissing: number;
  reports: InvocationReport[];
  snapshots: number;
  keysUpdated: number;
  reportedSnapshots: number;
  alertsFired: number | null;
  repairs: number;
  outcomes: Record<string, number>;
  maxInvocationWallMs: number;
  gwMaxCpuMs: number | null;
  gwMaxRssMb: number | null;
  gwInvocations: number;
  rss: { baseline: number | null; peak: number | null; end: number | null };
  cpu: StackCpu;
  isolated: IsolatedRun[]; // mode "process": each invocation's own figures
}

export type CycleMode = "pg_net" | "direct" | "process";

/** Low-balance alert events so far (null when the product has no alert table). */
async function alertEvents(): Promise<number | null> {
  const [{ has }] = await sql()<{ has: boolean }[]>`select to_regclass('private.alert_events') is not null as has`;
  if (!has) return null;
  const [{ n }] = await sql().unsafe(`select count(*)::int as n from private.alert_events`);
  return n;
}

/** One reconcile cycle: kick (through pg_net, or direct), wait for every chunk, collect the numbers. */
export async function cycle(label: string, mode: CycleMode = "pg_net"): Promise<CycleResult> {
  const db = sql();
  const pids = stackPids();
  await litellmAdmin("/admin/stats/reset", {});
  await resetFunctionStats();
  const [{ chunks }] = await db<{ chunks: number }[]>`
    select coalesce(max(reconcile_chunk) + 1, 0)::int as chunks from public.api_keys`;
  const [before] = await db<{ t: Date; xid: string; snap: string; net: string; run: string }[]>`
    select now() as t, (pg_current_xact_id()::text::bigint % 4294967296)::text as xid,
           (select coalesce(max(id), 0) from public.spend_snapshots)::text as snap,
           (select last_value from net.http_request_queue_id_seq)::text as net,
           (select coalesce(max(id), 0) from private.reconcile_runs)::text as run`;
  const alerts0 = await alertEvents();
  const sampler = rssSampler(pids.gateway);
  const cpu0 = stackCpu();
  const t0 = performance.now();

  let invocations: number;
  let direct: Promise<{ status: number; body: InvocationReport | null }[]> | null = null;
  const isolatedRuns: IsolatedRun[] = [];
  let requestIds: string[] = [];
  if (mode === "pg_net") {
    // The kick's own requests, read before its commit hands them to the worker: the cycle's alerts queue
    // send-notifications calls through pg_net too, and their answers are not this cycle's reports.
    [invocations, requestIds] = await db.begin(async (tx) => {
      const [{ n }] = await tx<{ n: number }[]>`select private.kick_reconcile() as n`;
      const ids = await tx<{ id: string }[]>`
        select id::text from net.http_request_queue where id > ${before.net} and url like '%/reconcile-spend'`;
      return [n, ids.map((r) => r.id)] as const;
    });
  } else {
    const [{ per }] = await db<{ per: number }[]>`
      select private.setting_numeric('reconcile_chunks_per_invocation')::int as per`;
    invocations = Math.ceil(chunks / per);
    const slots = Array.from({ length: invocations }, (_, i) => ({
      source: "bench",
      slot: i + 1,
      cycle_started_at: before.t.toISOString(), // as the cron kick passes it
    }));
    direct = mode === "direct"
      ? Promise.all(slots.map((b) => invokeFunction("reconcile-spend", b)))
      : pool(slots, PROCESS_CONCURRENCY, async (b) => {
        const r = await runIsolated("reconcile-spend", b);
        isolatedRuns.push(r);
        return r;
      });
  }

  // Every chunk finished after the start, or every invocation over (then some chunk failed), or timeout.
  const deadline = performance.now() + CYCLE_TIMEOUT_MS;
  let done = 0;
  for (;;) {
    const [s] = await db<{ done: number; runs_open: number; runs: number }[]>`
      select (select count(*) from public.reconcile_chunks where last_finished_at >= ${before.t})::int as done,
             (select count(*) from private.reconcile_runs where id > ${before.run} and finished_at is null)::int as runs_open,
             (select count(*) from private.reconcile_runs where id > ${before.run})::int as runs`;
    done = s.done;
    if (done >= chunks) break;
    if (s.runs >= invocations && s.runs_open === 0) break;
    if (performance.now() > deadline) break;
    await sleep(50);
  }
  // Wait for the invocations themselves to end (their last SQL call comes after the last chunk).
  const reports: (InvocationReport | null)[] = [];
  if (direct) {
    for (const r of await direct) reports.push(r.body);
  } else {
    const until = performance.now() + 60_000;
    for (;;) {
      const rows = await db<{ content: string | null }[]>`
        select r.content from net._http_response r where r.id = any(${requestIds}::bigint[])`;
      if (rows.length >= invocations || performance.now() > until) {
        for (const r of rows) {
          try {
            reports.push(r.content ? JSON.parse(r.content) : null);
          } catch {
            reports.push(null);
          }
        }
        break;
      }
      await sleep(50);
    }
  }
  const until = performance.now() + 60_000;
  while (performance.now() < until) {
    const [{ open }] = await db<{ open: number }[]>`
      select count(*)::int as open from private.reconcile_runs where id > ${before.run} and finished_at is null`;
    if (open === 0) break;
    await sleep(50);
  }
  const clientWallMs = performance.now() - t0;
  const rss = sampler.stop();
  const cpu = cpuDelta(cpu0, stackCpu());

  const [after] = await db<{ wall_ms: number; snapshots: number; keys_updated: number }[]>`
    select (extract(epoch from (select max(last_finished_at) from public.reconcile_chunks) - ${before.t}::timestamptz) * 1000)::float8
             as wall_ms,
           (select count(*) from public.spend_snapshots where id > ${before.snap})::int as snapshots,
           (select count(*) from public.api_keys where age(xmin) < age(${before.xid}::text::xid))::int as keys_updated`;
  const runs = await db<{ outcome: string; snapshots: number; repairs: number; wall: number }[]>`
    select outcome, snapshots, repairs, (extract(epoch from finished_at - started_at) * 1000)::float8 as wall
      from private.reconcile_runs where id > ${before.run}`;
  const ll = await litellmAdmin("/admin/stats");
  const fn = (await functionStats())["reconcile-spend"];
  const alerts1 = await alertEvents();
  const good = reports.filter((r): r is InvocationReport => r !== null && typeof r.sql_round_trips === "number");
  const outcomes: Record<string, number> = {};
  for (const r of runs) outcomes[r.outcome] = (outcomes[r.outcome] ?? 0) + 1;

  return {
    label,
    invocations,
    chunks,
    chunksDone: done,
    wallMs: after.wall_ms,
    clientWallMs,
    litellmRequests: ll.total,
    litellmByRoute: ll.requests,
    sqlRoundTrips: good.length ? good.reduce((a, r) => a + (r.sql_round_trips ?? 0), 0) : null,
    reportsMissing: invocations - good.length,
    reports: good,
    snapshots: after.snapshots,
    keysUpdated: after.keys_updated,
    reportedSnapshots: runs.reduce((a, r) => a + r.snapshots, 0),
    alertsFired: alerts0 === null || alerts1 === null ? null : alerts1 - alerts0,
    repairs: runs.reduce((a, r) => a + r.repairs, 0),
    outcomes,
    maxInvocationWallMs: Math.max(0, ...runs.map((r) => r.wall)),
    gwMaxCpuMs: fn?.max_cpu_ms ?? null,
    gwMaxRssMb: fn?.max_rss_mb ?? null,
    gwInvocations: fn?.invocations ?? 0,
    rss,
    cpu,
    isolated: isolatedRuns,
  };
}

/** The per-cycle rows of the report table (one column per cycle). */
export function cycleRows(cyc: CycleResult[], keys: number): (string | number)[][] {
  return [
    ["invocations (chunks done / chunks)", ...cyc.map((c) => `${c.invocations} (${c.chunksDone} / ${c.chunks})`)],
    ["run outcomes", ...cyc.map((c) => JSON.stringify(c.outcomes))],
    ["full-cycle wall time (start -> last chunk finished)", ...cyc.map((c) => secs(c.wallMs))],
    ["kick -> every invocation finished (client clock)", ...cyc.map((c) => secs(c.clientWallMs))],
    ["longest invocation (reconcile_runs)", ...cyc.map((c) => secs(c.maxInvocationWallMs))],
    [
      "LiteLLM requests (emulator /admin/stats)",
      ...cyc.map((c) => `${int(c.litellmRequests)} ${JSON.stringify(c.litellmByRoute)}`),
    ],
    [
      "SQL round trips (sum of sql_round_trips reported)",
      ...cyc.map((c) =>
        `${c.sqlRoundTrips === null ? "n/a" : int(c.sqlRoundTrips)}${
          c.reportsMissing ? ` (${c.reportsMissing} reports missing)` : ""
        }`
      ),
    ],
    ["snapshots inserted", ...cyc.map((c) => int(c.snapshots))],
    ["api_keys rows updated", ...cyc.map((c) => int(c.keysUpdated))],
    [
      "rows written (snapshots + api_keys)",
      ...cyc.map((c) =>
        `${int(c.snapshots + c.keysUpdated)} (${
          ((100 * (c.snapshots + c.keysUpdated)) / (2 * keys)).toFixed(2)
        }% of 2 x ${int(keys)})`
      ),
    ],
    ["budget repairs", ...cyc.map((c) => int(c.repairs))],
    [
      "low-balance alert events recorded (SQL triggers on the spend writes)",
      ...cyc.map((c) => c.alertsFired === null ? "n/a" : int(c.alertsFired)),
    ],
    ["gateway max_cpu_ms per invocation (process-wide, overlapping)", ...cyc.map((c) => ms(c.gwMaxCpuMs ?? NaN))],
    ["gateway max_rss_mb after an invocation (whole process)", ...cyc.map((c) => mb(c.gwMaxRssMb))],
    [
      "gateway RSS baseline -> peak (sampled every 20 ms)",
      ...cyc.map((c) => `${mb(c.rss.baseline)} -> ${mb(c.rss.peak)}`),
    ],
    ["CPU during the cycle: gateway / LiteLLM emulator / Postgres / PgBouncer", ...cyc.map((c) => cpuCell(c.cpu))],
    [
      "gateway CPU per invocation (cycle total / invocations)",
      ...cyc.map((c) => ms((c.cpu.gateway ?? NaN) / c.invocations)),
    ],
  ];
}

/** The rows every isolated-invocation table has (one column per invocation). */
export function isolatedRows(probes: Isolated[]): (string | number)[][] {
  return [
    ["status / outcome", ...probes.map((p) => `${p.status} / ${p.report?.outcome ?? "-"}`)],
    [
      "LiteLLM requests / SQL round trips",
      ...probes.map((p) => `${p.litellm} / ${p.report?.sql_round_trips ?? "n/a"}`),
    ],
    ["wall time", ...probes.map((p) => ms(p.wall))],
    [
      "CPU (gateway max_cpu_ms; /proc delta)",
      ...probes.map((p) => `${ms(p.fn?.max_cpu_ms ?? NaN)}; ${ms(p.cpu ?? NaN)}`),
    ],
    [
      "gateway RSS before -> peak (growth)",
      ...probes.map((p) =>
        `${mb(p.rss.baseline)} -> ${mb(p.rss.peak)} (+${mb((p.rss.peak ?? NaN) - (p.rss.baseline ?? NaN))})`
      ),
    ],
  ];
}
