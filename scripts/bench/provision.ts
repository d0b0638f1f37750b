// bench:provision — sign-up to active key. 200 sign-ups through the Auth stand-in (POST /auth/v1/signup with
// the publishable key, ~10 at a time); the sign-up trigger queues a pg_net call to provision-key, which creates the
// LiteLLM key. Latency per user = api_keys.activated_at - auth.users.created_at (both stamped by Postgres),
// cross-checked by polling api_keys.status until every key is active (or a timeout).
//   npm run bench:provision          (BENCH_USERS=200 BENCH_CONCURRENCY=10 BENCH_TIMEOUT_MS=60000)
import * as bench from "./common.ts";

const USERS = Number(Deno.env.get("BENCH_USERS") ?? 200);
const CONCURRENCY = Number(Deno.env.get("BENCH_CONCURRENCY") ?? 10);
const TIMEOUT_MS = Number(Deno.env.get("BENCH_TIMEOUT_MS") ?? 60_000);
const POLL_MS = 50;

bench.runBench(async () => {
  bench.env("SUPABASE_URL");
  bench.printMachine(`bench:provision — ${USERS} sign-ups, ${CONCURRENCY} at a time`);
  const db = bench.sql();
  const [{ grant }] = await db`select private.setting_numeric('signup_grant_usd') as grant`;
  await bench.litellmAdmin("/admin/stats/reset", {});
  await bench.resetFunctionStats();
  const gw = bench.stackPids().gateway;
  const gwCpu0 = gw ? bench.cpuMs(gw) : null;

  const tag = bench.runId();
  const emails = Array.from({ length: USERS }, (_, i) => `bench-prov-${tag}-${i}@example.com`);
  const started = new Map<string, number>(); // user id -> performance.now() at request start
  const observed = new Map<string, number>(); // user id -> performance.now() when polling saw it active
  const t0 = performance.now();

  // Poll while signing up, so the poll-based latency is measured for the early users too.
  let polling = true;
  const ids: string[] = [];
  const poller = (async () => {
    while (polling) {
      const pending = ids.filter((id) => !observed.has(id));
      if (pending.length) {
        const rows = await db<{ user_id: string }[]>`
          select user_id from public.api_keys where user_id = any(${pending}::uuid[]) and status = 'active'`;
        const now = performance.now();
        for (const r of rows) observed.set(r.user_id, now);
      }
      await new Promise((r) => setTimeout(r, POLL_MS));
    }
  })();

  const results = await bench.pool(emails, CONCURRENCY, async (email) => {
    const start = performance.now();
    const r = await bench.signUp(email);
    if (r.ok) {
      started.set(r.id, start);
      ids.push(r.id);
    }
    return r;
  });
  const signupWall = performance.now() - t0;
  const failedSignups = results.filter((r) => !r.ok);

  // Wait until every key is active, failed, or the timeout.
  const deadline = performance.now() + TIMEOUT_MS;
  while (performance.now() < deadline && observed.size < ids.length) {
    const [{ failed }] = await db<{ failed: number }[]>`
      select count(*)::int as failed from public.api_keys where user_id = any(${ids}::uuid[]) and status = 'failed'`;
    if (observed.size + failed >= ids.length) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  polling = false;
  await poller;
  const allActiveMs = performance.now() - t0;

  const rows = await db<
    { user_id: string; status: string; key_token: string; latency_ms: string | null; last_sync_error: string | null }[]
  >`
    select k.user_id, k.status, k.key_token, k.last_sync_error,
           (extract(epoch from (k.activated_at - u.created_at)) * 1000)::text as latency_ms
      from public.api_keys k join auth.users u on u.id = k.user_id
     where k.user_id = any(${ids}::uuid[]) and k.status <> 'retired'`;
  const active = rows.filter((r) => r.status === "active");
  const notActive = rows.filter((r) => r.status !== "active");
  const dbLatency = active.map((r) => Number(r.latency_ms));
  const pollLatency = [...observed.entries()].map(([id, t]) => t - (started.get(id) ?? t));
  const signupLatency = results.map((r) => r.ms);

  // Every active key must exist on LiteLLM with the sign-up grant as its max_budget. A key provisioned before
  // its user confirmed starts at 0 and is raised by push-budget after the confirmation: give that a moment.
  const syncDeadline = performance.now() + 15_000;
  while (performance.now() < syncDeadline) {
    const [{ behind }] = await db<{ behind: number }[]>`
      select count(*)::int as behind from public.api_keys
       where user_id = any(${ids}::uuid[]) and status = 'active' and litellm_max_budget is distinct from ${grant}::numeric`;
    if (behind === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const budgets = await bench.litellmBudgets(active.map((r) => r.key_token));
  const wrongOnLiteLLM = active.filter((r) => Number(budgets.get(r.key_token)) !== Number(grant)).length;
  const litellm = await bench.litellmAdmin("/admin/stats");
  const fns = await bench.functionStats();
  const gwCpu1 = gw ? bench.cpuMs(gw) : null;

  const s = bench.stats(dbLatency);
  const p = bench.stats(pollLatency);
  const u = bench.stats(signupLatency);
  console.log("");
  bench.table(["measure", "n", "p50", "p95", "max"], [
    ["sign-up -> key active (activated_at - users.created_at)", s.n, bench.ms(s.p50), bench.ms(s.p95), bench.ms(s.max)],
    [
      `sign-up request start -> seen active by polling (${POLL_MS} ms poll)`,
      p.n,
      bench.ms(p.p50),
      bench.ms(p.p95),
      bench.ms(p.max),
    ],
    ["POST /auth/v1/signup response time", u.n, bench.ms(u.p50), bench.ms(u.p95), bench.ms(u.max)],
  ]);
  console.log("");
  const prov = fns["provision-key"];
  const failures = failedSignups.length + notActive.length + wrongOnLiteLLM + (ids.length - rows.length);
  bench.table(["counter", "value"], [
    ["sign-ups attempted / succeeded", `${USERS} / ${ids.length}`],
    ["sign-up failures", failedSignups.length],
    ["keys active / not active after wait", `${active.length} / ${notActive.length}`],
    ["active keys missing on LiteLLM or with max_budget != grant", wrongOnLiteLLM],
    ["sign-ups wall time", bench.ms(signupWall)],
    ["first sign-up -> all keys active", bench.ms(allActiveMs)],
    ["provision-key invocations (errors)", prov ? `${prov.invocations} (${prov.errors})` : "0"],
    [
      "LiteLLM requests (per key)",
      `${bench.int(litellm.total)} (${(litellm.total / Math.max(1, active.length)).toFixed(2)}): ${
        JSON.stringify(litellm.requests)
      }`,
    ],
    [
      "gateway max_cpu_ms / max_rss_mb of provision-key (process-wide)",
      prov ? `${prov.max_cpu_ms} / ${prov.max_rss_mb}` : "n/a",
    ],
    ["gateway process CPU during the run", gwCpu0 !== null && gwCpu1 !== null ? bench.ms(gwCpu1 - gwCpu0) : "n/a"],
  ]);
  for (const f of failedSignups.slice(0, 5)) console.log(`  sign-up failure: ${!f.ok ? f.error : ""}`);
  for (const k of notActive.slice(0, 5)) console.log(`  key ${k.status}: ${k.last_sync_error ?? "no error recorded"}`);

  console.log("");
  bench.table(["target", "measured", "result"], [
    ["p95 sign-up -> active key <= 2 s", bench.ms(s.p95), bench.verdict(s.n > 0 && s.p95 <= 2000)],
    ["0 failures", String(failures), bench.verdict(failures === 0)],
  ]);
  if (ids.length === 0) throw new bench.BenchError("no sign-up succeeded: is the stack up?");
});
