// bench:export — the operator's ledger export (`npm run admin -- export ledger`, scripts/admin-export.ts) over
// 1,000,000 ledger rows: its wall time and the peak RSS of the export process (bounded memory: a server-side
// cursor, each batch written before the next is read).
//
// Setup (not measured): BENCH_USERS users (sign-up trigger with pg_net calls switched off, as
// scripts/bench/fleet.ts does), each with BENCH_ROWS_PER_USER adjustment rows dated over 2025 (inserted in
// batches of 100 users); then VACUUM ANALYZE.
// Measured: the CLI as a child process (deno run scripts/admin.ts export ledger --from 2025-01-01: --to
// 2025-01-31 as CSV, then --to 2025-12-31 as CSV and as JSONL) with its stdout counted as it streams (never
// kept), and the year once more with V8's heap capped at 48 MB; RSS of that process sampled every 20 ms
// from /proc. Checked: the lines written = the ledger rows in
// the range (+ the header), and the CLI's own count on stderr says the same.
//   npm run bench:export      (BENCH_USERS=1000 BENCH_ROWS_PER_USER=1000)
import * as bench from "./common.ts";
import * as fleetBench from "./fleet.ts";

const USERS = Number(Deno.env.get("BENCH_USERS") ?? 1000);
const PER_USER = Number(Deno.env.get("BENCH_ROWS_PER_USER") ?? 1000);
// The targets: peak RSS and time of each export. The last run caps V8's heap at HEAP_CAP_MB
// (--max-old-space-size): an export that kept its rows (117 MB of CSV) could not finish in it, so finishing
// proves the memory is bounded, whatever V8's lazier GC does uncapped.
const [TARGET_RSS_MB, TARGET_SECONDS, HEAP_CAP_MB] = [200, 120, 48];

bench.runBench(async () => {
  bench.printMachine(`bench:export — ${bench.int(USERS * PER_USER)} ledger rows; admin export ledger, streamed`);
  await seed();
  // January alone (about a twelfth of the rows), the year as CSV and JSONL, the year again in a capped heap.
  const runs = [["csv", "2025-01-31", null], ["csv", "2025-12-31", null], ["jsonl", "2025-12-31", null], [
    "csv",
    "2025-12-31",
    HEAP_CAP_MB,
  ]] as const;
  const rows: (string | number)[][] = [];
  let ok = true;
  for (const [format, to, heapMb] of runs) {
    const r = await runExport(format, to, heapMb);
    const [{ n }] = await bench.sql()<{ n: number }[]>`
      select count(*)::int as n from public.credit_ledger where created_at >= '2025-01-01T00:00:00Z' and created_at < ${to}::date + 1`;
    const pass = r.code === 0 && r.lines === n + (format === "csv" ? 1 : 0) && r.stderr.includes(`exported ${n} `) &&
      r.peakMb !== null && r.peakMb <= TARGET_RSS_MB && r.ms <= TARGET_SECONDS * 1000;
    ok &&= pass;
    rows.push([
      `${format}, 2025-01-01 to ${to}${heapMb ? `, V8 heap capped at ${heapMb} MB` : ""}`,
      bench.int(n),
      `${(r.bytes / 1e6).toFixed(0)} MB`,
      bench.secs(r.ms),
      bench.int(n / (r.ms / 1000)),
      r.peakMb === null ? "n/a" : `${r.peakMb.toFixed(0)} MB`,
      bench.verdict(pass),
    ]);
    if (r.code !== 0) console.log(`export (${format}) failed: ${r.stderr.slice(0, 500)}`);
  }
  bench.table(["export", "entries", "output", "time", "entries/s", "peak RSS (export process)", "verdict"], rows);
  console.log(
    `targets: every export complete (the capped heap included: memory bounded), peak RSS <= ${TARGET_RSS_MB} MB, ` +
      `time <= ${TARGET_SECONDS} s; overall ${bench.verdict(ok)}`,
  );
});

async function seed() {
  const db = bench.sql();
  const t0 = performance.now();
  for (let from = 0; from < USERS; from += 100) {
    const n = Math.min(100, USERS - from);
    await db.begin(async (tx) => {
      await tx`set local client_min_messages = error`;
      await fleetBench.functionCalls(false, tx);
      await tx`
        with u as (
          insert into auth.users (instance_id, id, aud, role, email, encrypted_password, email_confirmed_at,
                                  raw_app_meta_data, raw_user_meta_data, created_at, updated_at)
          select '00000000-0000-0000-0000-000000000000', gen_random_uuid(), 'authenticated', 'authenticated',
                 'bench-export-' || g || '@example.com', '', now(), '{"provider":"email","providers":["email"]}'::jsonb,
                 '{}'::jsonb, now(), now()
            from generate_series(${from}::int, ${from + n - 1}::int) g
          returning id
        )
        insert into public.credit_ledger (user_id, kind, amount, reason, idempotency_key, created_by, created_at)
        select u.id, 'adjustment', case when g % 5 = 0 then -0.10 else (g % 7 + 1) * 0.37 end, 'bench export',
               'bench-export:' || u.id || ':' || g, 'bench', timestamptz '2025-01-01 00:00:00+00' + g * interval '8 hours'
          from u cross join generate_series(1, ${PER_USER}::int) g`;
      await fleetBench.functionCalls(true, tx);
    });
  }
  await db.unsafe("vacuum analyze public.credit_ledger");
  await db.unsafe("analyze auth.users, public.profiles, public.payments");
  console.log(
    `seeded ${bench.int(USERS)} users x ${bench.int(PER_USER)} ledger rows in ${bench.secs(performance.now() - t0)}`,
  );
}

async function runExport(format: "csv" | "jsonl", to: string, heapMb: number | null) {
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      ...(heapMb ? [`--v8-flags=--max-old-space-size=${heapMb}`] : []),
      "-A",
      "scripts/admin.ts",
      "export",
      "ledger",
      "--from",
      "2025-01-01",
      "--to",
      to,
      "--format",
      format,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const rss = bench.rssSampler(child.pid);
  const stderr = new Response(child.stderr).text();
  let lines = 0, bytes = 0;
  for await (const chunk of child.stdout) {
    bytes += chunk.length;
    for (const b of chunk) if (b === 10) lines++;
  }
  const { code } = await child.status;
  const ms = performance.now() - t0;
  const peak = rss.stop();
  return { code, lines, bytes, ms, peakMb: peak.peak, stderr: await stderr };
}
