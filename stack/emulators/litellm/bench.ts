// Rough timings of the emulator at scale, over real HTTP (JSON encoding included).
//   deno run -A stack/emulators/litellm/bench.ts [count=100000]
// Starts its own emulator on free ports; prints one line per measurement.

import { startLiteLLMEmulator } from "./main.ts";

const count = Number(Deno.args[0] ?? 100_000);
const emu = await startLiteLLMEmulator({
  port: 0,
  batchWriteMs: 0,
  masterKey: "sk-bench",
});
const headers = {
  authorization: "Bearer sk-bench",
  "content-type": "application/json",
};

async function timed<T>(
  label: string,
  f: () => Promise<T>,
  runs = 1,
): Promise<T> {
  let out!: T;
  const ms: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t = performance.now();
    out = await f();
    ms.push(performance.now() - t);
  }
  ms.sort((a, b) => a - b);
  const fmt = (x: number) => x.toFixed(1);
  console.log(
    `${label}: ${runs === 1 ? fmt(ms[0]) : `median ${fmt(ms[runs >> 1])}, max ${fmt(ms[runs - 1])}`} ms`,
  );
  return out;
}

const post = (base: string, path: string, body: unknown) =>
  fetch(`${base}${path}`, {
    method: "POST",
    headers,
    body: JSON.stringify(body),
  }).then((r) => r.json());
const get = (base: string, path: string) => fetch(`${base}${path}`, { headers }).then((r) => r.json());

try {
  await timed(
    `POST /admin/seed {count: ${count}}`,
    () =>
      post(emu.adminUrl, "/admin/seed", {
        count,
        max_budget: 10,
        spend_max: 10,
      }),
  );
  const { keys } = await get(emu.adminUrl, "/admin/keys?offset=0&limit=1000");
  const raw = keys.map((k: { key: string }) => k.key);
  const hashes = keys.map((k: { token: string }) => k.token);
  await timed(
    "POST /v2/key/info (1000 raw keys)",
    () => post(emu.url, "/v2/key/info", { keys: raw }),
    10,
  );
  await timed(
    "POST /v2/key/info (1000 hashes)",
    () => post(emu.url, "/v2/key/info", { keys: hashes }),
    10,
  );
  await timed(
    "GET /key/list page 500, size 100, full",
    () => get(emu.url, "/key/list?page=500&size=100&return_full_object=true"),
    10,
  );
  await timed(
    "GET /key/list sort_by=spend (full sort)",
    () => get(emu.url, "/key/list?sort_by=spend&size=100"),
    3,
  );
  await timed(
    "GET /key/info",
    () => get(emu.url, `/key/info?key=${raw[0]}`),
    50,
  );
  await timed(
    "POST /chat/completions",
    () =>
      post(emu.url, "/chat/completions", {
        model: "gpt-4o-mini",
        messages: [{ role: "user", content: "hi" }],
      }),
    50,
  );
  const mem = Deno.memoryUsage();
  console.log(
    `heap used: ${(mem.heapUsed / 2 ** 20).toFixed(0)} MiB, rss: ${(mem.rss / 2 ** 20).toFixed(0)} MiB`,
  );
} finally {
  await emu.close();
}
