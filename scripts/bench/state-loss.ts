// bench:state-loss — LiteLLM loses its database under 100,000 keys: the audit before and after, then the
// automatic re-creation (issue 19) until every key is back with the budget its user has left.
//
// Setup (not measured): pg_cron's jobs are paused and 100,000 users with active keys are seeded in our
// database and on the LiteLLM emulator, each key with a random spend (scripts/bench/fleet.ts); one reconcile
// cycle, started as pg_cron starts it, records every key's spend in our books.
//
// Measured:
// 1. `npm run admin -- audit --json` (the operator's CLI, as a child process) on the healthy stack: its wall
//    time, exit code, mismatches, the reconcile-spend audit invocations it made (one after the other).
// 2. LiteLLM's database is lost: POST /admin/reset on the emulator (no keys at all, as a proxy pointed at an
//    empty database). The audit again: it must name every key `missing`.
// 3. Automatic re-creation on (private.settings recreate_missing_keys_automatically = true; restored at the
//    end). Two isolated probes first: one reconcile-spend invocation alone over 10 chunks of missing keys (it
//    flags them and queues 1,000 re-creations; the 100 provision-key calls it would start through pg_net are
//    held back with invoke_function switched off, so they do not share the gateway process with it), then
//    one provision-key invocation alone (10 keys re-created). The benchmark then sends the held-back calls.
// 4. Cron minutes: every minute job pg_cron would run (reconcile-spend's kick, the provisioning sweep,
//    ops-sweep: their commands from cron.job) runs, the benchmark waits until everything they started has
//    finished, then "a minute passes" (reconcile chunks due again) and the next minute starts, until every
//    key is active again. Reported per minute and in total: work time, invocations, LiteLLM requests, keys.
// 5. Verification: every seeded raw key value looked up on LiteLLM (/v2/key/info, 1,000 per request) must
//    exist with its alias and user, spend 0 and max_budget = grant - the spend it had (computed here from
//    the seeded values, not read from our database); in our database every key active, synced, unflagged.
//    The audit a third time: zero mismatches.
//   npm run bench:state-loss      (BENCH_KEYS=100000 BENCH_MAX_MINUTES=30)
import * as bench from "./common.ts";
import * as fleetBench from "./fleet.ts";
import { type Fleet } from "./fleet.ts";

const KEYS = Number(Deno.env.get("BENCH_KEYS") ?? 100_000);
const MAX_MINUTES = Number(Deno.env.get("BENCH_MAX_MINUTES") ?? 30);
const MINUTE_TIMEOUT_MS = 600_000;
const TARGET_MINUTES = 15;
const TARGET_AUDIT_MS = 60_000;

bench.runBench(async () => {
  bench.printMachine(
    `bench:state-loss — ${bench.int(KEYS)} keys; LiteLLM's database lost; audit and automatic re-creation`,
  );
  await fleetBench.withCronPaused(run);
});

// --- the audit, as the operator runs it ---

interface AuditRun {
  label: string;
  code: number;
  wallMs: number;
  keys: number;
  mismatches: number;
  byKind: Record<string, number>;
  totals: Record<string, string>;
  invocations: number;
  maxCpuMs: number | null; // the gateway's figure per audit invocation (they run one after the other)
  rss: { baseline: number | null; peak: number | null };
  litellm: number;
  totalsMs: number; // private.audit_totals() alone, timed after the CLI
  stderr: string;
}

async function audit(label: string): Promise<AuditRun> {
  await bench.resetFunctionStats();
  await bench.litellmAdmin("/admin/stats/reset", {});
  const sampler = bench.rssSampler(bench.stackPids().gateway);
  const t = performance.now();
  const child = await new Deno.Command("npm", {
    args: ["run", "--silent", "admin", "--", "audit", "--json"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const wallMs = performance.now() - t;
  const rss = sampler.stop();
  const fn = (await bench.functionStats())["reconcile-spend"];
  const ll = await bench.litellmAdmin("/admin/stats");
  const stdout = new TextDecoder().decode(child.stdout);
  const stderr = new TextDecoder().decode(child.stderr).trim();
  let report: { keys: number; mismatches: unknown[]; by_kind: Record<string, number>; totals: Record<string, string> };
  try {
    report = JSON.parse(stdout);
  } catch {
    throw new bench.BenchError(
      `admin audit (exit ${child.code}) printed no JSON report: ${(stderr || stdout).slice(0, 300)}`,
    );
  }
  const tt = performance.now();
  await bench.sql()`select private.audit_totals()`;
  const totalsMs = performance.now() - tt;
  const r = {
    label,
    code: child.code,
    wallMs,
    keys: report.keys,
    mismatches: report.mismatches.length,
    byKind: report.by_kind,
    totals: report.totals,
    invocations: fn?.invocations ?? 0,
    maxCpuMs: fn?.max_cpu_ms ?? null,
    rss,
    litellm: ll.total as number,
    totalsMs,
    stderr,
  };
  console.log(
    `audit (${label}): exit ${r.code} in ${bench.secs(r.wallMs)}; ${bench.int(r.keys)} keys, ${
      bench.int(r.mismatches)
    } mismatches ` +
      `${JSON.stringify(r.byKind)}; ${r.invocations} reconcile-spend audit invocations, ${r.litellm} LiteLLM requests`,
  );
  return r;
}

// --- cron minutes ---

interface Minute {
  minute: number;
  workMs: number;
  finished: boolean; // everything the minute started finished within MINUTE_TIMEOUT_MS
  invocations: Record<string, number>;
  errors: number;
  maxCpuMs: number; // gateway max_cpu_ms over the minute's invocations (process-wide, overlapping)
  litellm: Record<string, number>;
  restored: number; // keys active and unflagged after the minute
  flagged: number; // keys still flagged deleted_externally and not yet queued
  queued: number; // keys waiting for provision-key
  failed: number; // keys whose provisioning job gave up
}

async function keyStates() {
  const [s] = await bench.sql()<{ restored: number; flagged: number; queued: number; failed: number }[]>`
    select count(*) filter (where status = 'active' and flag is null)::int as restored,
           count(*) filter (where status = 'active' and flag = 'deleted_externally')::int as flagged,
           count(*) filter (where status = 'pending')::int as queued,
           count(*) filter (where status = 'failed')::int as failed
      from public.api_keys`;
  return s;
}

/** pg_cron's every-minute jobs, one minute after the other, until every key is active again. */
async function cronMinutes(
  jobs: { jobname: string; schedule: string; command: string }[],
  heldBack: number,
  live: number,
) {
  const db = bench.sql();
  const everyMinute = jobs.filter((j) => j.schedule === "* * * * *");
  console.log(`cron minutes: ${everyMinute.map((j) => j.jobname).join(", ")} each minute`);
  await bench.resetFunctionStats();
  await bench.litellmAdmin("/admin/stats/reset", {});
  const minutes: Minute[] = [];
  const sampler = bench.rssSampler(bench.stackPids().gateway);
  const cpu0 = bench.stackCpu();
  const t0 = performance.now();
  // the provision-key calls the probe held back, as auto_recreate_missing_keys would have sent them
  await db`select count(private.invoke_function('provision-key', jsonb_build_object('source', 'recreate', 'slot', g)))
             from generate_series(1, ${heldBack}::int) g`;
  let total = {
    invocations: {} as Record<string, number>,
    errors: 0,
    litellm: {} as Record<string, number>,
    maxCpuMs: 0,
  };
  for (let minute = 1; minute <= MAX_MINUTES; minute++) {
    await fleetBench.nextMinute();
    const mark = await fleetBench.netMark();
    const tm = performance.now();
    for (const j of everyMinute) await db.unsafe(j.command);
    const finished = await fleetBench.waitIdle(MINUTE_TIMEOUT_MS, mark);
    const workMs = performance.now() - tm;
    const fns = await bench.functionStats();
    const ll = await bench.litellmAdmin("/admin/stats");
    await bench.resetFunctionStats();
    await bench.litellmAdmin("/admin/stats/reset", {});
    const m: Minute = {
      minute,
      workMs,
      finished,
      invocations: Object.fromEntries(Object.entries(fns).map(([k, v]) => [k, v.invocations])),
      errors: Object.values(fns).reduce((a, v) => a + v.errors, 0),
      maxCpuMs: Math.max(0, ...Object.values(fns).map((v) => v.max_cpu_ms)),
      litellm: ll.requests,
      ...(await keyStates()),
    };
    minutes.push(m);
    total = {
      invocations: add(total.invocations, m.invocations),
      errors: total.errors + m.errors,
      litellm: add(total.litellm, m.litellm),
      maxCpuMs: Math.max(total.maxCpuMs, m.maxCpuMs),
    };
    console.log(
      `  minute ${minute}: ${bench.secs(workMs)}${finished ? "" : " (work still running)"}; restored ${
        bench.int(m.restored)
      }, ` +
        `flagged ${bench.int(m.flagged)}, queued ${bench.int(m.queued)}, failed ${bench.int(m.failed)}; ${
          JSON.stringify(m.invocations)
        }`,
    );
    if (m.restored >= live || (m.flagged === 0 && m.queued === 0)) break;
  }
  const wallMs = performance.now() - t0;
  return { minutes, wallMs, total, rss: sampler.stop(), cpu: bench.cpuDelta(cpu0, bench.stackCpu()) };
}

function add(a: Record<string, number>, b: Record<string, number>) {
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = (out[k] ?? 0) + v;
  return out;
}

// --- verification ---

async function sha256Hex(s: string) {
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", new TextEncoder().encode(s)));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Every seeded key on LiteLLM by its raw value, with its owner, spend 0 and max_budget = grant - spend. */
async function verifyLiteLLM(fleet: Fleet) {
  const t = performance.now();
  const rows = await bench.litellmKeyRows(fleet.rawKeys);
  const wrong: Record<string, number> = { missing: 0, alias: 0, user: 0, spend: 0, max_budget: 0 };
  const examples: string[] = [];
  for (let i = 0; i < fleet.rawKeys.length; i++) {
    const row = rows.get(await sha256Hex(fleet.rawKeys[i]));
    const want = fleet.grantMicros - fleet.spendMicros[i];
    const problem = !row
      ? "missing"
      : row.key_alias !== fleet.owners[i].alias
      ? "alias"
      : row.user_id !== fleet.owners[i].userId
      ? "user"
      : Number(row.spend) !== 0
      ? "spend"
      : Math.round(Number(row.max_budget) * 1e6) !== want
      ? "max_budget"
      : null;
    if (problem) {
      wrong[problem]++;
      if (examples.length < 3) {
        examples.push(`${problem}: key ${fleet.owners[i].keyId} has ${row?.max_budget} for ${want / 1e6}`);
      }
    }
  }
  const ok = rows.size === fleet.rawKeys.length && Object.values(wrong).every((n) => n === 0);
  return { ok, found: rows.size, wrong, examples, ms: performance.now() - t };
}

/** Our side: every key active, synced, unflagged, its offset = the spend LiteLLM lost. */
async function verifyDatabase(fleet: Fleet) {
  const [r] = await bench.sql()<{ active: number; synced: number; flagged: number; offsets: number; resets: number }[]>`
    select count(*) filter (where k.status = 'active')::int as active,
           count(*) filter (where k.sync_status = 'synced')::int as synced,
           count(*) filter (where k.flag is not null)::int as flagged,
           count(*) filter (where k.spend_offset = k.spend and k.spend > 0)::int as offsets,
           (select count(*) from private.spend_resets)::int as resets
      from public.api_keys k where k.id = any(${fleet.owners.map((o) => o.keyId)}::uuid[])`;
  return { ...r, ok: r.active === KEYS && r.synced === KEYS && r.flagged === 0 && r.offsets === KEYS };
}

// --- the run ---

async function run(jobs: { jobname: string; schedule: string; command: string }[]) {
  const db = bench.sql();
  const fleet = await fleetBench.seedFleet(KEYS);
  // every live key, the stack's own (demo) users' included: all of them are lost and re-created
  const [{ live }] = await db<
    { live: number }[]
  >`select count(*)::int as live from public.api_keys where status = 'active'`;
  // every chunk due, also the one pg_cron reconciled before it was paused (the stack's own keys)
  await fleetBench.dueOnly(Array.from({ length: fleet.chunks }, (_, i) => i), fleet.chunks);
  const c0 = await fleetBench.cycle("reconcile: every key's spend recorded");
  console.log(
    `setup: reconcile cycle over every key in ${bench.secs(c0.wallMs)} (${c0.chunksDone}/${c0.chunks} chunks)`,
  );
  if (c0.chunksDone < c0.chunks) throw new bench.BenchError("the setup reconcile cycle did not reconcile every chunk");

  const healthy = await audit("healthy stack");

  // LiteLLM's database is lost.
  await bench.litellmAdmin("/admin/reset", {});
  const wiped = await audit("LiteLLM empty");

  const [{ setting }] = await db<{ setting: string }[]>`
    select value::text as setting from private.settings where key = 'recreate_missing_keys_automatically'`;
  await db`update private.settings set value = 'true'::jsonb where key = 'recreate_missing_keys_automatically'`;
  let probes, repair;
  try {
    // Probe 1: one reconcile-spend invocation alone over 10 chunks of missing keys; its provision-key calls
    // are held back (invoke_function off) so that nothing else runs in the gateway meanwhile.
    const probeChunks = Array.from({ length: fleet.perInvocation }, (_, i) => i).filter((c) => c < fleet.chunks);
    await fleetBench.dueOnly(probeChunks, fleet.chunks);
    await fleetBench.functionCalls(false);
    let rec;
    try {
      rec = await fleetBench.isolated(
        "reconcile-spend",
        { source: "bench-probe" },
        `reconcile-spend: ${probeChunks.length} chunks, every key missing`,
      );
    } finally {
      await fleetBench.functionCalls(true);
    }
    // Probe 2: one provision-key invocation alone (10 of the keys just queued).
    const prov = await fleetBench.isolated(
      "provision-key",
      { source: "bench-probe" },
      "provision-key: 10 keys re-created",
    );
    probes = { rec, prov };
    const queued = Number(rec.report?.recreated ?? 0);
    const heldBack = Math.max(0, Math.ceil(queued / 10) - 1);
    repair = await cronMinutes(jobs, heldBack, live);
  } finally {
    await db`update private.settings set value = ${setting}::jsonb where key = 'recreate_missing_keys_automatically'`;
  }
  if (!(await fleetBench.waitIdle(60_000))) console.log("note: work was still running 60 s after the last minute");

  const onLiteLLM = await verifyLiteLLM(fleet);
  const ours = await verifyDatabase(fleet);
  const after = await audit("after the re-creation");

  // --- report ---
  console.log("");
  bench.table(["setup cycle", c0.label], fleetBench.cycleRows([c0], KEYS));
  console.log("");
  const audits = [healthy, wiped, after];
  bench.table(["npm run admin -- audit", ...audits.map((a) => a.label)], [
    ["exit code", ...audits.map((a) => a.code)],
    ["wall time (CLI start -> exit)", ...audits.map((a) => bench.secs(a.wallMs))],
    [
      "keys audited / mismatches",
      ...audits.map((a) => `${bench.int(a.keys)} / ${bench.int(a.mismatches)} ${JSON.stringify(a.byKind)}`),
    ],
    ["reconcile-spend audit invocations (one after the other)", ...audits.map((a) => a.invocations)],
    ["LiteLLM requests", ...audits.map((a) => bench.int(a.litellm))],
    ["worst audit invocation CPU (gateway max_cpu_ms)", ...audits.map((a) => bench.ms(a.maxCpuMs ?? NaN))],
    ["gateway RSS baseline -> peak", ...audits.map((a) => `${bench.mb(a.rss.baseline)} -> ${bench.mb(a.rss.peak)}`)],
    ["private.audit_totals() alone", ...audits.map((a) => bench.ms(a.totalsMs))],
  ]);
  console.log(`totals (healthy): ${JSON.stringify(healthy.totals)}`);
  console.log("");
  const ps = [probes.rec, probes.prov];
  bench.table(["isolated invocation", ...ps.map((p) => p.label)], [
    [
      "keys / missing / queued for re-creation",
      `${bench.int(probes.rec.report?.keys ?? NaN)} / ${bench.int(probes.rec.report?.missing ?? NaN)} / ` +
      `${bench.int(probes.rec.report?.recreated ?? NaN)}`,
      "-",
    ],
    ["claimed / done", "-", `${probes.prov.report?.claimed} / ${probes.prov.report?.done}`],
    ...fleetBench.isolatedRows(ps),
  ]);
  console.log("");
  bench.table(
    [
      "cron minute",
      "work time",
      "invocations",
      "LiteLLM requests",
      "gateway max_cpu_ms",
      "restored",
      "flagged",
      "queued",
      "failed",
    ],
    repair.minutes.map((m) => [
      m.minute,
      `${bench.secs(m.workMs)}${m.finished ? "" : " (unfinished)"}`,
      JSON.stringify(m.invocations),
      bench.int(Object.values(m.litellm).reduce((a, b) => a + b, 0)),
      bench.ms(m.maxCpuMs),
      bench.int(m.restored),
      bench.int(m.flagged),
      bench.int(m.queued),
      bench.int(m.failed),
    ]),
  );
  console.log("");
  const llTotal = Object.values(repair.total.litellm).reduce((a, b) => a + b, 0);
  const invTotal = Object.values(repair.total.invocations).reduce((a, b) => a + b, 0);
  bench.table(["re-creation, in total", "measured"], [
    ["cron minutes until every key was active again", repair.minutes.length],
    [
      "work time (sum of the minutes' work; cron waits make up the rest of each minute)",
      bench.secs(repair.minutes.reduce((a, m) => a + m.workMs, 0)),
    ],
    ["wall time (probes' held-back calls sent -> last minute done)", bench.secs(repair.wallMs)],
    [
      "invocations (+ the 2 probes)",
      `${bench.int(invTotal)} ${JSON.stringify(repair.total.invocations)}; errors ${repair.total.errors}`,
    ],
    [
      "LiteLLM requests (+ the probes')",
      `${bench.int(llTotal)} ${JSON.stringify(repair.total.litellm)} = ${(llTotal / live).toFixed(2)} per key`,
    ],
    ["CPU: gateway / LiteLLM emulator / Postgres / PgBouncer", bench.cpuCell(repair.cpu)],
    [
      "gateway RSS baseline -> peak (whole process)",
      `${bench.mb(repair.rss.baseline)} -> ${bench.mb(repair.rss.peak)}`,
    ],
    [
      "verified on LiteLLM (/v2/key/info by raw value)",
      `${bench.int(onLiteLLM.found)} found; wrong: ${JSON.stringify(onLiteLLM.wrong)} (${bench.ms(onLiteLLM.ms)})`,
    ],
    [
      "verified in our database",
      `active ${bench.int(ours.active)}, synced ${bench.int(ours.synced)}, flagged ${bench.int(ours.flagged)}, ` +
      `offset = lost spend ${bench.int(ours.offsets)}; spend resets recorded ${bench.int(ours.resets)}`,
    ],
  ]);
  for (const e of onLiteLLM.examples) console.log(`  e.g. ${e}`);

  const worstCpu = Math.max(
    fleetBench.isolatedCpu(probes.rec),
    fleetBench.isolatedCpu(probes.prov),
    ...audits.map((a) => a.maxCpuMs ?? 0),
  );
  const growth = (p: { rss: { baseline: number | null; peak: number | null } }) =>
    (p.rss.peak ?? NaN) - (p.rss.baseline ?? NaN);
  const worstRss = Math.max(probes.rec.rss.peak ?? NaN, probes.prov.rss.peak ?? NaN);
  const worstGrowth = Math.max(growth(probes.rec), growth(probes.prov), ...audits.map(growth));
  const allFinished = repair.minutes.every((m) => m.finished && m.workMs <= 60_000);
  const lastRestored = repair.minutes.at(-1)?.restored ?? 0;
  console.log("");
  bench.table(["target", "measured", "result"], [
    [
      "every key re-created with the same value, owner and max_budget = what remains",
      `${bench.int(onLiteLLM.found)}/${bench.int(KEYS)} on LiteLLM, ` +
      `${bench.int(KEYS - Object.values(onLiteLLM.wrong).reduce((a, b) => a + b, 0))} right; ours ${
        bench.int(ours.active)
      } active, ${bench.int(ours.synced)} synced`,
      bench.verdict(onLiteLLM.ok && ours.ok),
    ],
    [
      `every key active again within ${TARGET_MINUTES} cron minutes`,
      `${repair.minutes.length} minutes (${bench.int(lastRestored)} restored)`,
      bench.verdict(lastRestored >= live && repair.minutes.length <= TARGET_MINUTES),
    ],
    [
      "  each minute's work done within the minute (60 s)",
      repair.minutes.map((m) => bench.secs(m.workMs)).join(", "),
      bench.verdict(allFinished),
    ],
    [
      "no invocation above 1,500 ms CPU (isolated: reconcile-spend, provision-key, each audit call)",
      bench.ms(worstCpu),
      bench.verdict(worstCpu <= 1500),
    ],
    [
      "no invocation above 150 MB RSS: the gateway's growth during each one alone (probes; whole audit runs)",
      `+${bench.mb(worstGrowth)}`,
      bench.verdict(worstGrowth <= 150),
    ],
    [
      "  whole gateway process at the probes (also Auth, REST, pg_net and what earlier steps left to collect)",
      bench.mb(worstRss),
      // Context, not a target: locally one process holds every function plus Auth, REST and pg_net, and its
      // size depends on when V8 last collected garbage; hosted, each invocation has its own isolate.
      "context",
    ],
    [
      `audit of ${bench.int(live)} keys within ${TARGET_AUDIT_MS / 1000} s, zero mismatches, exit 0 (healthy)`,
      `${bench.secs(healthy.wallMs)}, ${bench.int(healthy.mismatches)}, exit ${healthy.code}`,
      bench.verdict(
        healthy.wallMs <= TARGET_AUDIT_MS && healthy.mismatches === 0 && healthy.code === 0 && healthy.keys === live,
      ),
    ],
    [
      "audit names every key missing on the empty LiteLLM, exit 1",
      `${bench.secs(wiped.wallMs)}, ${bench.int(wiped.byKind.missing ?? 0)} missing, exit ${wiped.code}`,
      bench.verdict(
        wiped.wallMs <= TARGET_AUDIT_MS && wiped.byKind.missing === live && wiped.mismatches === live &&
          wiped.code === 1,
      ),
    ],
    [
      "audit after the re-creation: zero mismatches, exit 0",
      `${bench.secs(after.wallMs)}, ${bench.int(after.mismatches)}, exit ${after.code}`,
      bench.verdict(after.mismatches === 0 && after.code === 0 && after.keys === live),
    ],
  ]);
  console.log(
    "RSS note: locally every function runs in ONE Deno process (the gateway, which also runs Auth, REST and the",
  );
  console.log("pg_net worker), so RSS is that whole process; on hosted Supabase each function has its own isolate.");
}
