// bench:reconcile — one full reconcile cycle over 100,000 keys, then a cycle where 1% of the keys spent.
//
// Setup (not measured): pg_cron's jobs are paused so only the benchmark starts work, and 100,000 users with
// active keys are seeded in our database and on the LiteLLM emulator (scripts/bench/fleet.ts).
// Cycles: `select private.kick_reconcile()` as the pg_cron job does (fleet.ts, cycle());
// BENCH_RECONCILE_MODE=direct invokes the function N times concurrently from here instead of through pg_net.
//
// Measured per cycle: wall time, LiteLLM requests (emulator /admin/stats), SQL round trips (sum of the
// invocations' own sql_round_trips), rows written (snapshots inserted; api_keys rows whose current version
// was written during the cycle, by xmin), CPU/RSS (gateway /_stack/functions/stats, plus /proc sampling of
// the gateway, emulator and Postgres processes). Then an isolated probe: a single invocation of
// reconcile_chunks_per_invocation chunks with every key changed (the worst case), alone on the machine, so
// its CPU and RSS growth are its own (locally every function shares ONE Deno process, the gateway).
//   npm run bench:reconcile      (BENCH_KEYS=100000 BENCH_CHANGE_PCT=1)
import { int, litellmAdmin, mb, ms, pool, printMachine, runBench, secs, sql, table, verdict } from "./common.ts";
import * as fleetBench from "./fleet.ts";

const KEYS = Number(Deno.env.get("BENCH_KEYS") ?? 100_000);
const CHANGE_PCT = Number(Deno.env.get("BENCH_CHANGE_PCT") ?? 1);
const MODE = Deno.env.get("BENCH_RECONCILE_MODE") === "direct" ? "direct" : "pg_net";

runBench(async () => {
  printMachine(
    `bench:reconcile — ${int(KEYS)} keys, ${CHANGE_PCT}% changed in the second cycle, invocations via ${MODE}`,
  );
  await fleetBench.withCronPaused(run);
});

async function run() {
  const db = sql();
  const { rawKeys, chunks, perInvocation: per } = await fleetBench.seedFleet(KEYS);

  // --- isolated probe first, while the gateway is fresh: one invocation alone, worst case (every key of its
  // chunks is new to us). Its chunks' spend is then reset on our side so cycle 1 still sees every key new. ---
  const probeChunks = Array.from({ length: per }, (_, i) => i + 1).filter((c) => c < chunks);
  const probe = async (label: string) => {
    await fleetBench.dueOnly(probeChunks, chunks);
    return await fleetBench.isolated("reconcile-spend", { source: "bench-probe" }, label);
  };
  const worst = await probe(`one invocation alone, ${probeChunks.length} chunks, every key new (fresh gateway)`);
  await db`update public.api_keys set spend = 0, spend_observed_at = null, litellm_blocked = null
            where reconcile_chunk = any(${probeChunks}::int[]) and status = 'active'`;

  // --- cycle 1: everything changed since our database has never seen these keys' spend ---
  await fleetBench.nextMinute();
  const c1 = await fleetBench.cycle("cycle 1: every key new to us", MODE);

  // --- cycle 2: 1% of the keys spent something ---
  const change = Math.round((KEYS * CHANGE_PCT) / 100);
  const picked = new Set<number>();
  const pick = fleetBench.rng(42);
  while (picked.size < change) picked.add(Math.floor(pick() * rawKeys.length));
  const tc = performance.now();
  await pool([...picked], 32, async (i) => {
    await litellmAdmin("/admin/spend", { key: rawKeys[i], add: 0.0125 });
  });
  console.log(
    `setup: spend added to ${int(change)} keys on the emulator (/admin/spend) in ${ms(performance.now() - tc)}`,
  );
  await fleetBench.nextMinute();
  const c2 = await fleetBench.cycle(`cycle 2: ${CHANGE_PCT}% of keys changed`, MODE);

  const idle = await probe(`one invocation alone, ${probeChunks.length} chunks, nothing changed`);

  // --- report ---
  console.log("");
  const cyc = [c1, c2];
  table(["per cycle", ...cyc.map((c) => c.label)], fleetBench.cycleRows(cyc, KEYS));
  console.log("");
  const probes = [worst, idle];
  table(["isolated invocation", ...probes.map((p) => p.label)], [
    [
      "chunks / keys / snapshots",
      ...probes.map((p) => `${p.report?.chunks} / ${int(p.report?.keys ?? NaN)} / ${int(p.report?.snapshots ?? NaN)}`),
    ],
    ...fleetBench.isolatedRows(probes),
  ]);

  const changedKeys = change;
  const c2Ok = c2.snapshots >= changedKeys * 0.9 && c2.snapshots <= changedKeys * 1.1 &&
    c2.keysUpdated <= changedKeys * 1.1 &&
    c2.keysUpdated >= changedKeys * 0.9;
  const cpuWorst = fleetBench.isolatedCpu(worst);
  const rssWorst = worst.rss.peak ?? worst.fn?.max_rss_mb ?? NaN;
  const rssGrowth = (worst.rss.peak ?? NaN) - (worst.rss.baseline ?? NaN);
  console.log("");
  table(["target", "measured", "result"], [
    [
      "full cycle <= 60 s (cycle 1)",
      secs(c1.wallMs),
      verdict(c1.chunksDone === c1.chunks && c1.wallMs <= 60_000),
    ],
    [
      "every chunk done in each cycle",
      `${c1.chunksDone}/${c1.chunks}, ${c2.chunksDone}/${c2.chunks}`,
      verdict(c1.chunksDone === c1.chunks && c2.chunksDone === c2.chunks),
    ],
    [
      "<= 1,100 LiteLLM requests per cycle",
      `${int(c1.litellmRequests)}, ${int(c2.litellmRequests)}`,
      verdict(Math.max(c1.litellmRequests, c2.litellmRequests) <= 1100),
    ],
    ["no invocation above 1,500 ms CPU (isolated worst case)", ms(cpuWorst), verdict(cpuWorst <= 1500)],
    [
      "  same, as the gateway reports it in the concurrent cycle (process-wide)",
      ms(c1.gwMaxCpuMs ?? NaN),
      verdict((c1.gwMaxCpuMs ?? Infinity) <= 1500),
    ],
    [
      "no invocation above 150 MB RSS (whole gateway process, isolated worst case)",
      mb(rssWorst),
      verdict(rssWorst <= 150),
    ],
    ["  RSS growth during that invocation", `+${mb(rssGrowth)}`, verdict(rssGrowth <= 150)],
    [
      "  whole gateway process during the concurrent cycle 1",
      mb(c1.rss.peak ?? c1.gwMaxRssMb),
      verdict((c1.rss.peak ?? c1.gwMaxRssMb ?? Infinity) <= 150),
    ],
    [
      `second cycle writes about ${CHANGE_PCT}% of rows (${int(changedKeys)} keys changed)`,
      `${int(c2.snapshots)} snapshots, ${int(c2.keysUpdated)} keys updated`,
      verdict(c2Ok),
    ],
  ]);
  console.log(
    "RSS note: locally every function runs in ONE Deno process (the gateway, which also runs Auth, REST and the",
  );
  console.log("pg_net worker), so RSS is that whole process; on hosted Supabase each function has its own isolate.");
}
