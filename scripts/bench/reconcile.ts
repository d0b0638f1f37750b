// bench:reconcile — one full reconcile cycle over 100,000 keys, then a cycle where 1% of the keys spent.
//
// Setup (not measured): pg_cron's jobs are paused so only the benchmark starts work. 100,000 users are
// inserted into auth.users with SQL in batches of 5,000, so the real sign-up trigger (handle_new_user) runs
// for each (profile, +2.00 grant, key row, provisioning job); its pg_net call to provision-key is switched off
// inside each batch's transaction by renaming the vault secret project_url (renamed back before commit, so
// nothing outside the batch ever sees it missing). The keys are then marked active as complete_provisioning
// would, and the same keys (same raw values, alias, user, max_budget = grant, random spend) are created on
// the LiteLLM emulator with POST /admin/import. VACUUM ANALYZE afterwards stands in for autovacuum.
//
// Cycle: `select private.kick_reconcile()` exactly as the pg_cron job does (it queues N = chunks /
// reconcile_chunks_per_invocation pg_net calls to reconcile-spend, sent concurrently by the stack's pg_net
// worker), then wait until every chunk's last_finished_at is newer than the cycle start.
// BENCH_RECONCILE_MODE=direct invokes the function N times concurrently from here instead of through pg_net.
// Between cycles, "a minute passes" by moving every chunk's last_finished_at back 2 minutes.
//
// Measured per cycle: wall time, LiteLLM requests (emulator /admin/stats), SQL round trips (sum of the
// invocations' own sql_round_trips), rows written (snapshots inserted; api_keys rows whose current version
// was written during the cycle, by xmin), CPU/RSS (gateway /_stack/functions/stats, plus /proc sampling of
// the gateway, emulator and Postgres processes). Then an isolated probe: a single invocation of
// reconcile_chunks_per_invocation chunks with every key changed (the worst case), alone on the machine, so
// its CPU and RSS growth are its own (locally every function shares ONE Deno process, the gateway).
//   npm run bench:reconcile      (BENCH_KEYS=100000 BENCH_CHANGE_PCT=1)
import {
  BenchError,
  cpuMs,
  env,
  functionStats,
  int,
  litellmAdmin,
  ms,
  pool,
  printMachine,
  resetFunctionStats,
  rssSampler,
  runBench,
  runId,
  secs,
  sql,
  stackPids,
  table,
  verdict,
} from "./common.ts";

const KEYS = Number(Deno.env.get("BENCH_KEYS") ?? 100_000);
const BATCH = 5_000;
const CHANGE_PCT = Number(Deno.env.get("BENCH_CHANGE_PCT") ?? 1);
const MODE = Deno.env.get("BENCH_RECONCILE_MODE") === "direct" ? "direct" : "pg_net";
const CYCLE_TIMEOUT_MS = 300_000;
const DISABLED_SECRET = "project_url:bench-disabled";

/** Mulberry32: reproducible spend values. */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// --- Postgres CPU: the postmaster's own and reaped children's time, plus live children (from /proc) ---
let postmasterPid: number | null = null;
function postgresCpuMs(): number | null {
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

interface InvocationReport {
  outcome?: string;
  claimed?: number;
  chunks?: number;
  keys?: number;
  snapshots?: number;
  repairs?: number;
  litellm_requests?: number;
  sql_round_trips?: number;
  wall_ms?: number;
  error?: string | null;
}

interface CycleResult {
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
  cpu: { gateway: number | null; litellm: number | null; postgres: number | null; pooler: number | null };
}

/** Low-balance alert events so far (null when the product has no alert table). */
async function alertEvents(): Promise<number | null> {
  const [{ has }] = await sql()<{ has: boolean }[]>`select to_regclass('private.alert_events') is not null as has`;
  if (!has) return null;
  const [{ n }] = await sql().unsafe(`select count(*)::int as n from private.alert_events`);
  return n;
}

const delta = (a: number | null, b: number | null) => (a === null || b === null ? null : b - a);

async function invokeDirect(body: unknown): Promise<{ status: number; report: InvocationReport | null }> {
  const r = await fetch(`${env("SUPABASE_URL")}/functions/v1/reconcile-spend`, {
    method: "POST",
    headers: { Authorization: `Bearer ${env("CRON_SECRET")}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  let report: InvocationReport | null = null;
  try {
    report = JSON.parse(text);
  } catch { /* not JSON */ }
  return { status: r.status, report };
}

/** One cycle: kick, wait for every chunk, collect the numbers. */
async function cycle(label: string): Promise<CycleResult> {
  const db = sql();
  const pids = stackPids();
  await litellmAdmin("/admin/stats/reset", {});
  await resetFunctionStats();
  const [{ chunks }] = await db<{ chunks: number }[]>`select coalesce(max(reconcile_chunk) + 1, 0)::int as chunks from public.api_keys`;
  const [before] = await db<{ t: Date; xid: string; snap: string; net: string; run: string }[]>`
    select now() as t, (pg_current_xact_id()::text::bigint % 4294967296)::text as xid,
           (select coalesce(max(id), 0) from public.spend_snapshots)::text as snap,
           (select last_value from net.http_request_queue_id_seq)::text as net,
           (select coalesce(max(id), 0) from private.reconcile_runs)::text as run`;
  const alerts0 = await alertEvents();
  const sampler = rssSampler(pids.gateway);
  const cpu0 = { gateway: pids.gateway ? cpuMs(pids.gateway) : null, litellm: pids.litellm ? cpuMs(pids.litellm) : null, postgres: postgresCpuMs(), pooler: pids.pooler ? cpuMs(pids.pooler) : null };
  const t0 = performance.now();

  let invocations: number;
  let direct: Promise<{ status: number; report: InvocationReport | null }[]> | null = null;
  if (MODE === "pg_net") {
    [{ n: invocations }] = await db<{ n: number }[]>`select private.kick_reconcile() as n`;
  } else {
    const [{ per }] = await db<{ per: number }[]>`select private.setting_numeric('reconcile_chunks_per_invocation')::int as per`;
    invocations = Math.ceil(chunks / per);
    direct = Promise.all(Array.from({ length: invocations }, (_, i) => invokeDirect({ source: "bench", slot: i + 1 })));
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
    await new Promise((r) => setTimeout(r, 50));
  }
  // Wait for the invocations themselves to end (their last SQL call comes after the last chunk).
  const reports: (InvocationReport | null)[] = [];
  if (direct) {
    for (const r of await direct) reports.push(r.report);
  } else {
    const until = performance.now() + 60_000;
    for (;;) {
      const rows = await db<{ status_code: number | null; content: string | null; timed_out: boolean | null }[]>`
        select status_code, content, timed_out from net._http_response where id > ${before.net}`;
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
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  const until = performance.now() + 60_000;
  while (performance.now() < until) {
    const [{ open }] = await db<{ open: number }[]>`
      select count(*)::int as open from private.reconcile_runs where id > ${before.run} and finished_at is null`;
    if (open === 0) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const clientWallMs = performance.now() - t0;
  const rss = sampler.stop();
  const cpu1 = { gateway: pids.gateway ? cpuMs(pids.gateway) : null, litellm: pids.litellm ? cpuMs(pids.litellm) : null, postgres: postgresCpuMs(), pooler: pids.pooler ? cpuMs(pids.pooler) : null };

  const [after] = await db<{ wall_ms: number; snapshots: number; keys_updated: number }[]>`
    select (extract(epoch from (select max(last_finished_at) from public.reconcile_chunks) - ${before.t}::timestamptz) * 1000)::float8 as wall_ms,
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
    cpu: { gateway: delta(cpu0.gateway, cpu1.gateway), litellm: delta(cpu0.litellm, cpu1.litellm), postgres: delta(cpu0.postgres, cpu1.postgres), pooler: delta(cpu0.pooler, cpu1.pooler) },
  };
}

/** "A minute passes": every chunk is due again. */
async function nextMinute() {
  await sql()`update public.reconcile_chunks set last_finished_at = last_finished_at - interval '2 minutes', lease_until = null
               where last_finished_at is not null`;
}

const mb = (v: number | null) => (v === null ? "n/a" : `${v.toFixed(1)} MB`);

runBench(async () => {
  printMachine(`bench:reconcile — ${int(KEYS)} keys, ${CHANGE_PCT}% changed in the second cycle, invocations via ${MODE}`);
  const db = sql();
  const pids = stackPids();
  if (!pids.gateway) console.log("note: gateway pid unknown (no stack.json): /proc measurements are skipped");
  const [{ dir }] = await db<{ dir: string }[]>`select setting as dir from pg_settings where name = 'data_directory'`;
  try {
    postmasterPid = Number(Deno.readTextFileSync(`${dir}/postmaster.pid`).split("\n")[0]);
  } catch { /* not readable: Postgres CPU is not reported */ }

  // Pause pg_cron: the benchmark starts every reconcile and provisioning run itself. Restored at the end.
  const paused = await db<{ jobid: number; jobname: string }[]>`select jobid, jobname from cron.job where active`;
  for (const j of paused) await db`select cron.alter_job(${j.jobid}::bigint, active := false)`;
  try {
    await run(db);
  } finally {
    for (const j of paused) await db`select cron.alter_job(${j.jobid}::bigint, active := true)`.catch(() => {});
    await db`select vault.update_secret(s.id, new_name := 'project_url') from vault.secrets s where s.name = ${DISABLED_SECRET}
              and not exists (select 1 from vault.secrets where name = 'project_url')`.catch(() => {});
  }
});

// deno-lint-ignore no-explicit-any
async function run(db: any) {
  const pids = stackPids();
  // Let anything cron started before the pause finish (leases released, pg_net queue empty).
  for (let i = 0; i < 100; i++) {
    const [{ busy }] = await db`
      select ((select count(*) from net.http_request_queue) + (select count(*) from public.reconcile_chunks where lease_until > now())
              + (select count(*) from private.reconcile_runs where finished_at is null and started_at > now() - interval '2 minutes'))::int as busy`;
    if (busy === 0) break;
    await new Promise((r) => setTimeout(r, 200));
  }

  // --- load ---
  const [{ grant, rpm, tpm }] = await db`
    select private.setting_numeric('signup_grant_usd')::float8 as grant, private.setting_numeric('key_rpm_limit')::int as rpm,
           private.setting_numeric('key_tpm_limit')::int as tpm`;
  const tag = runId();
  const rand = rng(20261126);
  const rawKeys: string[] = [];
  let tDb = 0;
  let tEmu = 0;
  const t0 = performance.now();
  let pendingImport: Promise<void> = Promise.resolve();
  for (let from = 0; from < KEYS; from += BATCH) {
    const to = Math.min(KEYS, from + BATCH) - 1;
    const tb = performance.now();
    const keys = await db.begin(async (tx: typeof db) => {
      // (invoke_function's "vault secrets not set" warnings still reach the server log: as on hosted,
      // postgres may not change log_min_messages.)
      await tx`set local client_min_messages = error`;
      await tx`select vault.update_secret(s.id, new_name := ${DISABLED_SECRET}) from vault.secrets s where s.name = 'project_url'`;
      const users = await tx<{ id: string }[]>`
        insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
                                raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
        select '00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated', 'authenticated',
               'bench-rec-' || ${tag}::text || '-' || g || '@example.com', '', now(),
               '{"provider":"email","providers":["email"]}'::jsonb, '{}'::jsonb, now(), now()
          from generate_series(${from}::int, ${to}::int) g
        returning id`;
      const ids = users.map((u: { id: string }) => u.id);
      await tx`update private.provisioning_jobs set status = 'done', attempts = 1, finished_at = now(), updated_at = now(), locked_until = null
                where user_id = any(${ids}::uuid[]) and status = 'queued'`;
      const rows = await tx<{ id: string; key_value: string; key_alias: string; user_id: string }[]>`
        update public.api_keys
           set status = 'active', activated_at = now(), litellm_max_budget = ${grant}, observed_max_budget = ${grant},
               sync_status = 'synced', last_sync_at = now()
         where user_id = any(${ids}::uuid[]) and status = 'pending'
        returning id, key_value, key_alias, user_id`;
      await tx`select vault.update_secret(s.id, new_name := 'project_url') from vault.secrets s where s.name = ${DISABLED_SECRET}`;
      return rows;
    });
    tDb += performance.now() - tb;
    if (keys.length !== to - from + 1) throw new BenchError(`batch ${from}: ${keys.length} keys for ${to - from + 1} users`);
    const entries = keys.map((k: { id: string; key_value: string; key_alias: string; user_id: string }) => {
      rawKeys.push(k.key_value);
      return {
        key: k.key_value,
        key_alias: k.key_alias,
        max_budget: grant,
        spend: Math.round((0.01 + rand() * 1.98) * 1e6) / 1e6,
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
  const [{ queued }] = await db`select count(*)::int as queued from net.http_request_queue`;
  const tv = performance.now();
  await db.unsafe("vacuum analyze public.api_keys");
  await db.unsafe("vacuum analyze private.provisioning_jobs");
  await db.unsafe("analyze auth.users, public.profiles, public.credit_ledger, public.spend_snapshots, public.reconcile_chunks");
  const [counts] = await db`
    select (select count(*) from public.api_keys where status = 'active')::int as active,
           (select count(*) from public.api_keys)::int as total,
           (select coalesce(max(reconcile_chunk) + 1, 0) from public.api_keys)::int as chunks,
           private.setting_numeric('reconcile_chunks_per_invocation')::int as per`;
  const emu = await litellmAdmin("/admin/stats");
  console.log(
    `setup: ${int(KEYS)} users + keys in ${secs(performance.now() - t0)} (SQL with the sign-up trigger ${secs(tDb)}, emulator import ${secs(tEmu)}, ` +
      `vacuum analyze ${secs(performance.now() - tv)}); ${int(counts.active)} active keys of ${int(counts.total)} in ${counts.chunks} chunks ` +
      `(${counts.per} per invocation); emulator holds ${int(emu.keys)} keys; pg_net calls queued by the load: ${queued}`,
  );
  if (queued > 0) throw new BenchError("the load queued pg_net calls (the trigger's provision-key call was not switched off)");

  // --- isolated probe first, while the gateway is fresh: one invocation alone, worst case (every key of its
  // chunks is new to us). Its chunks' spend is then reset on our side so cycle 1 still sees every key new. ---
  const per = counts.per as number;
  const probeChunks = Array.from({ length: per }, (_, i) => i + 1).filter((c) => c < counts.chunks);
  const probe = async (label: string) => {
    // Chunk rows exist (as the first claim would create them); only the probe's chunks are due.
    await db`insert into public.reconcile_chunks (chunk) select generate_series(0, ${counts.chunks - 1}::int) on conflict do nothing`;
    await db`update public.reconcile_chunks set lease_until = null,
               last_finished_at = case when chunk = any(${probeChunks}::int[]) then now() - interval '2 minutes' else now() end`;
    await new Promise((r) => setTimeout(r, 500));
    await resetFunctionStats();
    await litellmAdmin("/admin/stats/reset", {});
    const gw = pids.gateway;
    const sampler = rssSampler(gw, 5);
    const cpu0 = gw ? cpuMs(gw) : null;
    const t = performance.now();
    const r = await invokeDirect({ source: "bench-probe" });
    const wall = performance.now() - t;
    const cpu1 = gw ? cpuMs(gw) : null;
    const rss = sampler.stop();
    const fn = (await functionStats())["reconcile-spend"];
    const ll = await litellmAdmin("/admin/stats");
    return { label, status: r.status, report: r.report, wall, cpu: delta(cpu0, cpu1), rss, fn, litellm: ll.total as number };
  };
  const worst = await probe(`one invocation alone, ${probeChunks.length} chunks, every key new (fresh gateway)`);
  await db`update public.api_keys set spend = 0, spend_observed_at = null, litellm_blocked = null
            where reconcile_chunk = any(${probeChunks}::int[]) and status = 'active'`;

  // --- cycle 1: everything changed since our database has never seen these keys' spend ---
  await nextMinute();
  const c1 = await cycle("cycle 1: every key new to us");

  // --- cycle 2: 1% of the keys spent something ---
  const change = Math.round((KEYS * CHANGE_PCT) / 100);
  const picked = new Set<number>();
  const pick = rng(42);
  while (picked.size < change) picked.add(Math.floor(pick() * rawKeys.length));
  const tc = performance.now();
  await pool([...picked], 32, async (i) => {
    await litellmAdmin("/admin/spend", { key: rawKeys[i], add: 0.0125 });
  });
  console.log(`setup: spend added to ${int(change)} keys on the emulator (/admin/spend) in ${ms(performance.now() - tc)}`);
  await nextMinute();
  const c2 = await cycle(`cycle 2: ${CHANGE_PCT}% of keys changed`);

  const idle = await probe(`one invocation alone, ${probeChunks.length} chunks, nothing changed`);

  // --- report ---
  console.log("");
  const cyc = [c1, c2];
  table(["per cycle", ...cyc.map((c) => c.label)], [
    ["invocations (chunks done / chunks)", ...cyc.map((c) => `${c.invocations} (${c.chunksDone} / ${c.chunks})`)],
    ["run outcomes", ...cyc.map((c) => JSON.stringify(c.outcomes))],
    ["full-cycle wall time (start -> last chunk finished)", ...cyc.map((c) => secs(c.wallMs))],
    ["kick -> every invocation finished (client clock)", ...cyc.map((c) => secs(c.clientWallMs))],
    ["longest invocation (reconcile_runs)", ...cyc.map((c) => secs(c.maxInvocationWallMs))],
    ["LiteLLM requests (emulator /admin/stats)", ...cyc.map((c) => `${int(c.litellmRequests)} ${JSON.stringify(c.litellmByRoute)}`)],
    ["SQL round trips (sum of sql_round_trips reported)", ...cyc.map((c) => `${c.sqlRoundTrips === null ? "n/a" : int(c.sqlRoundTrips)}${c.reportsMissing ? ` (${c.reportsMissing} reports missing)` : ""}`)],
    ["snapshots inserted", ...cyc.map((c) => int(c.snapshots))],
    ["api_keys rows updated", ...cyc.map((c) => int(c.keysUpdated))],
    ["rows written (snapshots + api_keys)", ...cyc.map((c) => `${int(c.snapshots + c.keysUpdated)} (${((100 * (c.snapshots + c.keysUpdated)) / (2 * KEYS)).toFixed(2)}% of 2 x ${int(KEYS)})`)],
    ["budget repairs", ...cyc.map((c) => int(c.repairs))],
    ["low-balance alert events recorded (SQL triggers on the spend writes)", ...cyc.map((c) => c.alertsFired === null ? "n/a" : int(c.alertsFired))],
    ["gateway max_cpu_ms per invocation (process-wide, overlapping)", ...cyc.map((c) => c.gwMaxCpuMs === null ? "n/a" : ms(c.gwMaxCpuMs))],
    ["gateway max_rss_mb after an invocation (whole process)", ...cyc.map((c) => mb(c.gwMaxRssMb))],
    ["gateway RSS baseline -> peak (sampled every 20 ms)", ...cyc.map((c) => `${mb(c.rss.baseline)} -> ${mb(c.rss.peak)}`)],
    ["CPU during the cycle: gateway / LiteLLM emulator / Postgres / PgBouncer", ...cyc.map((c) => `${ms(c.cpu.gateway ?? NaN)} / ${ms(c.cpu.litellm ?? NaN)} / ${ms(c.cpu.postgres ?? NaN)} / ${ms(c.cpu.pooler ?? NaN)}`)],
    ["gateway CPU per invocation (cycle total / invocations)", ...cyc.map((c) => c.cpu.gateway === null ? "n/a" : ms(c.cpu.gateway / c.invocations))],
  ]);
  console.log("");
  const probes = [worst, idle];
  table(["isolated invocation", ...probes.map((p) => p.label)], [
    ["status / outcome", ...probes.map((p) => `${p.status} / ${p.report?.outcome}`)],
    ["chunks / keys / snapshots", ...probes.map((p) => `${p.report?.chunks} / ${int(p.report?.keys ?? NaN)} / ${int(p.report?.snapshots ?? NaN)}`)],
    ["LiteLLM requests / SQL round trips", ...probes.map((p) => `${p.litellm} / ${p.report?.sql_round_trips}`)],
    ["wall time", ...probes.map((p) => ms(p.wall))],
    ["CPU (gateway max_cpu_ms; /proc delta)", ...probes.map((p) => `${p.fn ? ms(p.fn.max_cpu_ms) : "n/a"}; ${p.cpu === null ? "n/a" : ms(p.cpu)}`)],
    ["gateway RSS before -> peak (growth)", ...probes.map((p) => `${mb(p.rss.baseline)} -> ${mb(p.rss.peak)} (+${mb((p.rss.peak ?? NaN) - (p.rss.baseline ?? NaN))})`)],
  ]);

  const changedKeys = change;
  const c2Ok = c2.snapshots >= changedKeys * 0.9 && c2.snapshots <= changedKeys * 1.1 && c2.keysUpdated <= changedKeys * 1.1 && c2.keysUpdated >= changedKeys * 0.9;
  const cpuWorst = Math.max(worst.fn?.max_cpu_ms ?? 0, worst.cpu ?? 0);
  const rssWorst = worst.rss.peak ?? worst.fn?.max_rss_mb ?? NaN;
  const rssGrowth = (worst.rss.peak ?? NaN) - (worst.rss.baseline ?? NaN);
  console.log("");
  table(["target", "measured", "result"], [
    ["full cycle <= 60 s (cycle 1)", secs(c1.wallMs), verdict(c1.chunksDone === c1.chunks && c1.wallMs <= 60_000)],
    ["every chunk done in each cycle", `${c1.chunksDone}/${c1.chunks}, ${c2.chunksDone}/${c2.chunks}`, verdict(c1.chunksDone === c1.chunks && c2.chunksDone === c2.chunks)],
    ["<= 1,100 LiteLLM requests per cycle", `${int(c1.litellmRequests)}, ${int(c2.litellmRequests)}`, verdict(Math.max(c1.litellmRequests, c2.litellmRequests) <= 1100)],
    ["no invocation above 1,500 ms CPU (isolated worst case)", ms(cpuWorst), verdict(cpuWorst <= 1500)],
    ["  same, as the gateway reports it in the concurrent cycle (process-wide)", ms(c1.gwMaxCpuMs ?? NaN), verdict((c1.gwMaxCpuMs ?? Infinity) <= 1500)],
    ["no invocation above 150 MB RSS (whole gateway process, isolated worst case)", mb(rssWorst), verdict(rssWorst <= 150)],
    ["  RSS growth during that invocation", `+${mb(rssGrowth)}`, verdict(rssGrowth <= 150)],
    ["  whole gateway process during the concurrent cycle 1", mb(c1.rss.peak ?? c1.gwMaxRssMb), verdict((c1.rss.peak ?? c1.gwMaxRssMb ?? Infinity) <= 150)],
    [`second cycle writes about ${CHANGE_PCT}% of rows (${int(changedKeys)} keys changed)`, `${int(c2.snapshots)} snapshots, ${int(c2.keysUpdated)} keys updated`, verdict(c2Ok)],
  ]);
  console.log("RSS note: locally every function runs in ONE Deno process (the gateway, which also runs Auth, REST and the");
  console.log("pg_net worker), so RSS is that whole process; on hosted Supabase each function has its own isolate.");
}
