// bench:freshness — how long after an LLM call the user sees the balance move.
//   npm run bench:freshness      (BENCH_SAMPLES=20 per mode)
//
// Each sample: a user (signed up and confirmed through Auth, key provisioned) reads public.my_account over REST
// with their own session, makes one chat completion through the LiteLLM emulator with the official openai
// client and their key, and polls my_account until `spent` is above what it read before. The time from the
// completion's answer to that read is the sample.
// - callback on: the emulator's generic API logging callback posts to litellm-spend-callback (as the proxy
//   does when configured, docs/deploy.md); pg_cron's reconcile runs too. Samples one after another, polled
//   every 100 ms.
// - cron only: the callback switched off (emulator /admin/callback, endpoint null); only pg_cron's reconcile,
//   every minute, after LiteLLM's batch write. Samples started spread over a minute (so every phase of the
//   cron minute is sampled), polled every 500 ms, all at once.
// LiteLLM's batch write interval is the emulator's batch_write_ms (LITELLM_BATCH_WRITE_MS: the npm script sets
// 10,000, LiteLLM's default proxy_batch_write_at of 10 s). The emulator's callback flushes every second
// (LiteLLM: every 5 s or 512 entries; stack/emulators/litellm/README.md).
import OpenAI from "openai";
import {
  BenchError,
  env,
  litellmAdmin,
  loadAvg,
  machine,
  ms,
  pool,
  printMachine,
  publishableKey,
  runBench,
  runId,
  secs,
  signUp,
  sleep,
  sql,
  stats,
  table,
  verdict,
} from "./common.ts";
import { commitId, lineChart } from "./svg.ts";

const SAMPLES = Number(Deno.env.get("BENCH_SAMPLES") ?? 20);
const P95_CALLBACK_MS = 5_000;
const P95_CRON_MS = 70_000;
const SAMPLE_TIMEOUT_MS = 150_000;

interface User {
  id: string;
  token: string;
  key: string;
}

interface Samples {
  date: string;
  commit: string;
  load: string;
  batchWriteMs: number;
  callback: number[];
  cron: number[];
}
const CHARTS = new URL("../../docs/charts/", import.meta.url);

// --redraw: only draw the chart again from the stored samples (no stack needed).
if (Deno.args.includes("--redraw")) {
  await drawChart(JSON.parse(await Deno.readTextFile(new URL("freshness.json", CHARTS))));
  Deno.exit(0);
}

runBench(async () => {
  const commit = await commitId();
  printMachine(`bench:freshness — ${SAMPLES} samples with the spend callback, ${SAMPLES} with cron only`);
  const { batch_write_ms: batchMs } = await litellmAdmin("/admin/config", {});
  console.log(`LiteLLM batch write interval (emulator batch_write_ms): ${ms(batchMs)}`);
  const tag = runId();
  const users = await pool(Array.from({ length: 2 * SAMPLES }, (_, i) => i), 4, (i) => newUser(`${tag}-${i}`));
  console.log(`setup: ${users.length} users signed up, confirmed, keys active`);

  const callback = [];
  for (const u of users.slice(0, SAMPLES)) callback.push(await sample(u, 100));

  const saved = await litellmAdmin("/admin/callback");
  await litellmAdmin("/admin/callback", { endpoint: null, headers: {} });
  let cron: number[];
  try {
    const spacing = 60_000 / SAMPLES;
    cron = await Promise.all(
      users.slice(SAMPLES).map(async (u, i) => {
        await sleep(i * spacing);
        return await sample(u, 500);
      }),
    );
  } finally {
    await litellmAdmin("/admin/callback", saved ?? { endpoint: null, headers: {} });
  }

  const on = stats(callback.filter(Number.isFinite));
  const off = stats(cron.filter(Number.isFinite));
  console.log("");
  table(["time until my_account shows the spend", "callback on", "cron only"], [
    ["samples (answered / taken)", `${on.n} / ${callback.length}`, `${off.n} / ${cron.length}`],
    ["p50", secs(on.p50), secs(off.p50)],
    ["p95", secs(on.p95), secs(off.p95)],
    ["max", secs(on.max), secs(off.max)],
  ]);
  console.log("");
  table(["target", "measured", "result"], [
    [
      `p95 <= ${secs(P95_CALLBACK_MS)} with the callback`,
      secs(on.p95),
      verdict(on.n === callback.length && on.p95 <= P95_CALLBACK_MS),
    ],
    [
      `p95 <= ${secs(P95_CRON_MS)} without (batch write ${ms(batchMs)})`,
      secs(off.p95),
      verdict(off.n === cron.length && off.p95 <= P95_CRON_MS),
    ],
  ]);
  const m = machine();
  const samples: Samples = { date: m.date, commit, load: loadAvg(), batchWriteMs: batchMs, callback, cron };
  await Deno.mkdir(CHARTS, { recursive: true });
  await Deno.writeTextFile(new URL("freshness.json", CHARTS), JSON.stringify(samples, null, 2) + "\n");
  await drawChart(samples);
});

async function newUser(tag: string): Promise<User> {
  const r = await signUp(`bench-fresh-${tag}@example.com`);
  if (!r.ok) throw new BenchError(`sign-up: ${r.error}`);
  const until = performance.now() + 60_000;
  while (performance.now() < until) {
    const [k] = await sql()<{ key_value: string }[]>`
      select key_value from public.api_keys where user_id = ${r.id} and status = 'active' and sync_status = 'synced'`;
    if (k) return { id: r.id, token: r.token, key: k.key_value };
    await sleep(200);
  }
  throw new BenchError(`the key of ${r.id} did not become active within 60 s`);
}

/** What my_account says the user spent, read as the user over REST (a decimal string). */
async function spent(u: User): Promise<string> {
  const r = await fetch(`${env("SUPABASE_URL")}/rest/v1/my_account?select=spent`, {
    headers: { apikey: publishableKey(), Authorization: `Bearer ${u.token}` },
  });
  const rows = await r.json();
  if (!r.ok || !Array.isArray(rows) || rows.length !== 1) throw new BenchError(`my_account: HTTP ${r.status}`);
  return String(rows[0].spent);
}

/** One call, then ms until my_account shows more spend than before (NaN: not within SAMPLE_TIMEOUT_MS). */
async function sample(u: User, pollMs: number): Promise<number> {
  const before = await spent(u);
  const client = new OpenAI({ apiKey: u.key, baseURL: env("LITELLM_PUBLIC_URL"), maxRetries: 0 });
  await client.chat.completions.create({
    model: "test-expensive",
    messages: [{ role: "user", content: "x".repeat(400) }],
  });
  const t0 = performance.now();
  while (performance.now() - t0 < SAMPLE_TIMEOUT_MS) {
    // a measurement, not money logic: comparing the two readings as numbers is enough
    if (Number(await spent(u)) > Number(before)) return performance.now() - t0;
    await sleep(pollMs);
  }
  return NaN;
}

/** docs/charts/freshness.svg: the share of samples shown within t (one line per mode). */
async function drawChart(d: Samples) {
  const cdf = (v: number[]) => {
    const s = v.filter(Number.isFinite).sort((a, b) => a - b);
    return s.map((x, i) => [x / 1000, (i + 1) / s.length] as [number, number]);
  };
  const m = machine();
  await Deno.writeTextFile(
    new URL("freshness.svg", CHARTS),
    lineChart({
      title: "Freshness: share of LLM calls visible in my_account within t (bench:freshness)",
      x: { label: "seconds after the call returned (log scale)", log: true },
      y: { label: "share of samples", min: 0 },
      series: [
        { name: "spend callback on", points: cdf(d.callback) },
        { name: "cron only (reconcile each minute)", points: cdf(d.cron) },
        { name: "targets: p95 5 s / 70 s", points: [[5, 0], [5, 0.95], [70, 0.95], [70, 0]], dashed: true },
      ],
      caption: [
        `${d.callback.length} + ${d.cron.length} samples; LiteLLM batch write ${
          d.batchWriteMs / 1000
        } s (emulator), callback flush 1 s`,
        `${d.date}, commit ${d.commit}, ${m.cores} cores, ${m.mem}, load ${d.load}`,
      ],
    }),
  );
  console.log("chart: docs/charts/freshness.svg (samples in docs/charts/freshness.json)");
}
