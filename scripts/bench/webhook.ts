// bench:webhook — 200 distinct payments, 20 webhooks in flight. Setup (not timed against the target): 200
// sign-ups whose keys turn active, one checkout each through the checkout function (the user's JWT), each paid
// on the Paystack emulator without a webhook (/admin/pay {webhook: false}). Then the benchmark delivers the
// charge.success events itself: the body Paystack would send ({event, data} with data = the verify shape),
// signed with HMAC-SHA512 over the exact bytes, POSTed straight to /functions/v1/paystack-webhook, 20 in
// flight, each timed. Afterwards: one ledger purchase row per reference and max_budget 12 on LiteLLM per key.
// A second pass re-delivers the same 200 events (the duplicate path) and checks nothing is credited twice.
// Before that, BENCH_SERIAL (20) extra payments are delivered one at a time: the unloaded latency, for scale.
//   npm run bench:webhook       (BENCH_PAYMENTS=200 BENCH_IN_FLIGHT=20 BENCH_SERIAL=20)
import * as bench from "./common.ts";
import { hmacSha512Hex } from "../../supabase/functions/_shared/hash.ts";

const PAYMENTS = Number(Deno.env.get("BENCH_PAYMENTS") ?? 200);
const IN_FLIGHT = Number(Deno.env.get("BENCH_IN_FLIGHT") ?? 20);
const SERIAL = Number(Deno.env.get("BENCH_SERIAL") ?? 20);
const PLAN = "starter";
// Fields GET /admin/transactions/:ref adds to the verify shape (the charge.success data is the verify shape).
const ADMIN_ONLY = [
  "access_code",
  "authorization_url",
  "callback_url",
  "channels",
  "card",
  "refundable",
  "refunds",
  "disputes",
];

interface Delivery {
  reference: string;
  body: string;
  signature: string;
}
interface Result {
  ms: number;
  status: number;
  outcome: string | null;
  push: string | null;
  error?: string;
}

async function deliver(d: Delivery): Promise<Result> {
  const t0 = performance.now();
  try {
    const r = await fetch(`${bench.env("SUPABASE_URL")}/functions/v1/paystack-webhook`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "x-paystack-signature": d.signature },
      body: d.body,
    });
    const text = await r.text();
    const t = performance.now() - t0;
    let body: { outcome?: string; budget_push?: string } = {};
    try {
      body = JSON.parse(text);
    } catch { /* not JSON */ }
    return {
      ms: t,
      status: r.status,
      outcome: body.outcome ?? null,
      push: body.budget_push ?? null,
      error: r.ok ? undefined : text.slice(0, 200),
    };
  } catch (e) {
    return { ms: performance.now() - t0, status: 0, outcome: null, push: null, error: (e as Error).message };
  }
}

bench.runBench(async () => {
  bench.printMachine(`bench:webhook — ${PAYMENTS} payments, ${IN_FLIGHT} webhooks in flight`);
  const db = bench.sql();
  const [plan] = await db<
    { price_subunits: number; credit: string }[]
  >`select price_subunits, credit from public.plans where code = ${PLAN}`;
  if (!plan) throw new bench.BenchError(`plan ${PLAN} not found`);
  const [{ grant }] = await db`select private.setting_numeric('signup_grant_usd') as grant`;
  const expectedBudget = Number(grant) + Number(plan.credit);

  // --- setup: users with active keys ---
  const tag = bench.runId();
  let t = performance.now();
  const users = await bench.pool(
    Array.from({ length: PAYMENTS + SERIAL }, (_, i) => `bench-pay-${tag}-${i}@example.com`),
    10,
    (e) => bench.signUp(e),
  );
  const failedSignups = users.filter((u) => !u.ok);
  if (failedSignups.length) {
    throw new bench.BenchError(
      `${failedSignups.length} sign-ups failed: ${(failedSignups[0] as { error: string }).error}`,
    );
  }
  const ok = users as { ok: true; id: string; token: string }[];
  const ids = ok.map((u) => u.id);
  const deadline = Date.now() + 120_000;
  for (;;) {
    const [{ n }] = await db<
      { n: number }[]
    >`select count(*)::int as n from public.api_keys where user_id = any(${ids}::uuid[]) and status = 'active'`;
    if (n === ids.length) break;
    if (Date.now() > deadline) throw new bench.BenchError(`only ${n} of ${ids.length} keys turned active within 120 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
  console.log(`setup: ${ids.length} users with active keys in ${bench.ms(performance.now() - t)}`);

  // --- setup: checkouts through the checkout function, with each user's JWT ---
  t = performance.now();
  const checkouts = await bench.pool(ok, 10, async (u) => {
    const t0 = performance.now();
    const r = await fetch(`${bench.env("SUPABASE_URL")}/functions/v1/checkout`, {
      method: "POST",
      headers: {
        apikey: bench.publishableKey(),
        Authorization: `Bearer ${u.token}`,
        "Content-Type": "application/json",
      },
      body: JSON.stringify({ plan: PLAN }),
    });
    const body = await r.json().catch(() => null);
    if (r.status !== 200 || !body?.reference) {
      throw new bench.BenchError(`checkout -> ${r.status}: ${JSON.stringify(body)}`);
    }
    return { user: u.id, reference: body.reference as string, ms: performance.now() - t0 };
  });
  const co = bench.stats(checkouts.map((c) => c.ms));
  console.log(
    `setup: ${checkouts.length} checkouts in ${bench.ms(performance.now() - t)} (checkout function p50 ${
      bench.ms(co.p50)
    }, p95 ${bench.ms(co.p95)})`,
  );

  // --- setup: pay on the emulator (no webhook), then build and sign each charge.success body ---
  t = performance.now();
  const deliveries = await bench.pool(checkouts, 20, async (c): Promise<Delivery> => {
    const paid = await bench.paystackAdmin("/admin/pay", { reference: c.reference, webhook: false });
    if (paid.data?.status !== "success") throw new bench.BenchError(`pay ${c.reference}: ${JSON.stringify(paid.data)}`);
    const tx = (await bench.paystackAdmin(`/admin/transactions/${encodeURIComponent(c.reference)}`)).data as Record<
      string,
      unknown
    >;
    for (const k of ADMIN_ONLY) delete tx[k];
    const body = JSON.stringify({ event: "charge.success", data: tx });
    return { reference: c.reference, body, signature: await hmacSha512Hex(bench.env("PAYSTACK_SECRET_KEY"), body) };
  });
  console.log(
    `setup: ${deliveries.length} payments made on the Paystack emulator, events signed, in ${
      bench.ms(performance.now() - t)
    }`,
  );

  // --- unloaded baseline: a few payments delivered one at a time ---
  const serial = await bench.pool(deliveries.slice(0, SERIAL), 1, deliver);
  const batch = deliveries.slice(SERIAL);

  // One measured pass over the batch, IN_FLIGHT at a time: its results, wall time and the counters around it.
  const measuredPass = async () => {
    await bench.resetFunctionStats();
    await bench.litellmAdmin("/admin/stats/reset", {});
    const poolerBefore = await bench.poolerTotals();
    const t0 = performance.now();
    const results = await bench.pool(batch, IN_FLIGHT, deliver);
    const wall = performance.now() - t0;
    const poolerAfter = await bench.poolerTotals();
    const fn = (await bench.functionStats())["paystack-webhook"];
    return { results, wall, poolerBefore, poolerAfter, fn, litellm: await bench.litellmAdmin("/admin/stats") };
  };

  // --- the benchmark: deliver, 20 in flight ---
  const {
    results: first,
    wall: firstWall,
    poolerBefore: pooler0,
    poolerAfter: pooler1,
    fn: fnFirst,
    litellm: llFirst,
  } = await measuredPass();

  // --- verify: one ledger purchase per reference, every key at the new budget on LiteLLM ---
  const refs = deliveries.map((d) => d.reference);
  const ledger = await db<{ reference: string; n: number }[]>`
    select c.reference, count(l.id)::int as n
      from public.checkouts c
      left join public.credit_ledger l on l.idempotency_key = 'payment:paystack:' || c.reference and l.kind = 'purchase'
     where c.reference = any(${refs})
     group by c.reference`;
  const credited = ledger.filter((r) => r.n === 1).length;
  const doubled = ledger.filter((r) => r.n > 1).length;
  const keys = await db<{ key_token: string; sync_status: string }[]>`
    select key_token, sync_status from public.api_keys where user_id = any(${ids}::uuid[]) and status = 'active'`;
  const budgets = await bench.litellmBudgets(keys.map((k) => k.key_token));
  const atBudget = keys.filter((k) => budgets.get(k.key_token) === expectedBudget).length;
  const synced = keys.filter((k) => k.sync_status === "synced").length;

  // --- second pass: the same events again (Paystack retries / duplicates) ---
  const {
    results: second,
    wall: secondWall,
    poolerBefore: pooler2,
    poolerAfter: pooler3,
    fn: fnSecond,
    litellm: llSecond,
  } = await measuredPass();
  const [{ n: purchasesAfter }] = await db<{ n: number }[]>`
    select count(*)::int as n from public.credit_ledger where kind = 'purchase' and idempotency_key = any(${
    refs.map((r) => "payment:paystack:" + r)
  })`;

  const errs = (rs: Result[], want: string) => rs.filter((r) => r.status !== 200 || r.outcome !== want);
  const e0 = errs(serial, "credited");
  const e1 = errs(first, "credited");
  const e2 = errs(second, "duplicate");
  const s0 = bench.stats(serial.map((r) => r.ms));
  const s1 = bench.stats(first.map((r) => r.ms));
  const s2 = bench.stats(second.map((r) => r.ms));
  console.log("");
  // One latency row: the label, the percentiles, the errors and, for a timed pass, its wall time and throughput.
  const latencyRow = (label: string, st: ReturnType<typeof bench.stats>, errors: number, wall?: number) => [
    label,
    st.n,
    ...[st.p50, st.p95, st.max, st.mean].map(bench.ms),
    errors,
    wall === undefined ? "" : bench.ms(wall),
    wall === undefined ? "" : `${(st.n / (wall / 1000)).toFixed(0)}/s`,
  ];
  bench.table(["paystack-webhook latency", "n", "p50", "p95", "max", "mean", "errors", "wall", "throughput"], [
    latencyRow("one at a time (unloaded baseline)", s0, e0.length),
    latencyRow(`first delivery, ${IN_FLIGHT} in flight (credit + budget push)`, s1, e1.length, firstWall),
    latencyRow(`same events again, ${IN_FLIGHT} in flight (duplicates)`, s2, e2.length, secondWall),
  ]);
  for (const r of [...e0, ...e1, ...e2].slice(0, 5)) {
    console.log(`  error: status ${r.status}, outcome ${r.outcome}: ${r.error ?? ""}`);
  }
  console.log("");
  bench.table(["counter", "value"], [
    ["references with exactly one ledger purchase row", `${credited} / ${refs.length}`],
    ["references with more than one", doubled],
    [
      `purchase rows after the duplicate pass (${SERIAL} serial + ${PAYMENTS} batch payments)`,
      `${purchasesAfter} (want ${refs.length})`,
    ],
    [`keys with max_budget ${expectedBudget} on LiteLLM`, `${atBudget} / ${keys.length}`],
    ["keys with sync_status 'synced'", `${synced} / ${keys.length}`],
    ["budget pushes reported synced (first pass)", first.filter((r) => r.push === "synced").length],
    ["LiteLLM requests during the first pass", `${bench.int(llFirst.total)}: ${JSON.stringify(llFirst.requests)}`],
    [
      "LiteLLM requests during the duplicate pass",
      `${bench.int(llSecond.total)}: ${JSON.stringify(llSecond.requests)}`,
    ],
    [
      "gateway max_cpu_ms / max_rss_mb, first pass (process-wide)",
      fnFirst ? `${fnFirst.max_cpu_ms} / ${fnFirst.max_rss_mb}` : "n/a",
    ],
    ["pooler during the first pass", bench.poolerDelta(pooler0, pooler1, first.length)],
    ["pooler during the duplicate pass", bench.poolerDelta(pooler2, pooler3, second.length)],
    [
      "gateway max_cpu_ms / max_rss_mb, duplicates (process-wide)",
      fnSecond ? `${fnSecond.max_cpu_ms} / ${fnSecond.max_rss_mb}` : "n/a",
    ],
  ]);
  console.log("");
  const allCredited = credited === refs.length && doubled === 0 && purchasesAfter === refs.length &&
    atBudget === keys.length && keys.length === refs.length;
  bench.table(["target", "measured", "result"], [
    ["p95 webhook latency <= 150 ms (20 in flight)", bench.ms(s1.p95), bench.verdict(s1.p95 <= 150)],
    ["0 errors", String(e0.length + e1.length + e2.length), bench.verdict(e0.length + e1.length + e2.length === 0)],
    [
      "every payment credited once, LiteLLM budget updated",
      `${credited}/${refs.length} credited, ${atBudget}/${keys.length} at ${expectedBudget}`,
      bench.verdict(allCredited),
    ],
  ]);
});
