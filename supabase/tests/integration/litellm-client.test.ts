// The LiteLLM contract suite: every proxy behaviour the product relies on, through the one client
// (supabase/functions/_shared/litellm.ts) and, for what users' own calls see, over plain HTTP.
// It runs against the stack's emulator, and against a real proxy when LITELLM_CONTRACT_URL and
// LITELLM_CONTRACT_MASTER_KEY are set: one suite checks the emulator's fidelity (stack/emulators/litellm/README.md).
// Against a real proxy, tests that need the emulator's admin port (faults, down, batch interval, callback
// target, setting spend) are skipped, and costed chat calls run only when LITELLM_CONTRACT_MODEL names a
// priced model of that proxy.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { createServer } from "node:http";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { sha256Hex } from "../../functions/_shared/hash.ts";
import { type CallStats, LiteLLMClient, LiteLLMError, spendHintsFromLogs } from "../../functions/_shared/litellm.ts";
import { waitFor } from "./helpers.ts";

const REAL = !!(process.env.LITELLM_CONTRACT_URL && process.env.LITELLM_CONTRACT_MASTER_KEY);
const BASE = REAL ? process.env.LITELLM_CONTRACT_URL! : process.env.LITELLM_BASE_URL!;
const MASTER = REAL ? process.env.LITELLM_CONTRACT_MASTER_KEY! : process.env.LITELLM_MASTER_KEY!;
const MODEL = process.env.LITELLM_CONTRACT_MODEL || (REAL ? "" : "test-expensive");
/** How long spend may take to reach the read routes: a real proxy writes every PROXY_BATCH_WRITE_AT (10-60 s). */
const BATCH_WAIT_MS = REAL ? 70_000 : 5_000;
const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
const emulatorOnly = it.skipIf(REAL); // needs the emulator's admin port
const costed = it.skipIf(!MODEL); // makes chat calls that cost something
console.log(
  REAL
    ? `litellm contract: against the real LiteLLM at ${BASE} (emulator-only tests skipped)`
    : "litellm contract: against the emulator (LITELLM_CONTRACT_URL and LITELLM_CONTRACT_MASTER_KEY: a real proxy)",
);

/** A fetch that records every request body the client sends (parsed, and the exact text). */
function recorder() {
  const sent: { url: string; body: any; text: string | null }[] = [];
  const fetch_: typeof fetch = async (input, init) => {
    const text = init?.body ? String(init.body) : null;
    sent.push({ url: String(input), body: text ? JSON.parse(text) : null, text });
    return await fetch(input, init);
  };
  return { sent, fetch: fetch_ };
}

function client(over: Partial<ConstructorParameters<typeof LiteLLMClient>[0]> = {}) {
  return new LiteLLMClient({
    baseUrl: BASE,
    masterKey: MASTER,
    timeoutMs: 3000,
    maxRetries: 2,
    breakerThreshold: 50,
    breakerCooldownMs: 500,
    retryBaseMs: 20,
    ...over,
  });
}

/** One HTTP call with a key (a user's or the master key); GET without a body. */
async function request(url: string, key: string, body?: unknown, method = body === undefined ? "GET" : "POST") {
  const r = await fetch(url, {
    method,
    headers: { Authorization: `Bearer ${key}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await r.text();
  let parsed: any = text;
  try {
    parsed = text ? JSON.parse(text) : null;
  } catch { /* not JSON: kept as text */ }
  return { status: r.status, body: parsed, headers: r.headers };
}
/** A call to the proxy as a user (their key) or an operator (the master key) makes it. */
const call = (path: string, key: string, body?: unknown) => request(`${BASE}${path}`, key, body);
const chatBody = (extra: object = {}) => ({
  model: MODEL || "gpt-4o-mini",
  max_tokens: 16,
  messages: [{ role: "user", content: "hello there" }],
  ...extra,
});
const chat = (key: string) => call("/chat/completions", key, chatBody());

/** The emulator's admin port (main port + 1). */
async function admin(path: string, body?: unknown, method?: string) {
  const u = new URL(BASE);
  u.port = String(Number(u.port) + 1);
  const r = await request(`${u.origin}${path}`, MASTER, body, method);
  if (r.status !== 200) throw new Error(`${path}: ${r.status} ${JSON.stringify(r.body)}`);
  return r.body;
}

const created: string[] = [];
function newKey() {
  const key = `sk-contract-${crypto.randomUUID().replaceAll("-", "")}`;
  created.push(key);
  return { key, key_alias: `contract-${key.slice(-12)}` };
}
/** A key made the way provisioning makes it, with the given budget. */
async function keyWith(max_budget: string, over: Partial<Parameters<LiteLLMClient["generateKey"]>[0]> = {}) {
  const k = newKey();
  await client().generateKey({ ...k, max_budget, metadata: {}, ...over });
  return k;
}
/** Spend as the read routes show it, once it has moved (they lag enforcement by the batch interval). */
const settledSpend = (key: string) =>
  waitFor(
    async () => {
      const s = (await client().keyInfo(key))?.spend;
      return s !== undefined && s !== "0" ? s : null;
    },
    "spend on /key/info",
    BATCH_WAIT_MS,
    200,
  );

let startConfig: unknown;
beforeAll(async () => {
  if (!BASE || !MASTER) throw new Error("no LiteLLM to test against: run through `npm test`");
  if (!REAL) startConfig = await admin("/admin/config", {}); // an empty patch answers the current config
});
afterEach(async () => {
  if (REAL) return;
  await admin("/admin/faults", undefined, "DELETE");
  await admin("/admin/down", { down: false });
  await admin("/admin/config", startConfig);
});
afterAll(async () => {
  await client().deleteKeys(created).catch(() => {});
});

describe("key management contract", () => {
  it("generate with our key and alias; info confirms budget, alias, metadata; no budget_duration", async () => {
    const c = client();
    const k = newKey();
    const res = await c.generateKey({
      ...k,
      max_budget: "2",
      rpm_limit: 100,
      tpm_limit: 10000,
      user_id: "u1",
      metadata: { user_id: "u1", a: 1 },
    });
    expect(res.key).toBe(k.key);
    expect(res.token).toBe(await sha256Hex(k.key));
    const info = await c.keyInfo(k.key);
    expect(info).toMatchObject({ max_budget: "2", key_alias: k.key_alias, spend: "0" });
    expect(info).toMatchObject({ rpm_limit: 100, tpm_limit: 10000 });
    expect(info?.metadata).toMatchObject({ user_id: "u1", a: 1 });
    expect(info?.budget_duration ?? null).toBeNull();
  });

  it(
    "a second generate with the same alias is a final 400 (no retry); with the same key it changes nothing",
    async () => {
      const c = client();
      const k = await keyWith("3");
      const stats: CallStats = { attempts: 0 };
      const err = await c.generateKey({ ...k, max_budget: "99", metadata: {} }, stats).catch((e) => e);
      expect(err).toBeInstanceOf(LiteLLMError);
      expect(err.status).toBe(400);
      expect(err.retryable).toBe(false);
      expect(stats.attempts).toBe(1);
      // The same key under another alias: answered, but the stored key is untouched (callers confirm by reading).
      const again = { key: k.key, key_alias: `${k.key_alias}-b`, max_budget: "99", metadata: {} };
      await c.generateKey(again).catch(() => null);
      expect(await c.keyInfo(k.key)).toMatchObject({ max_budget: "3", key_alias: k.key_alias });
    },
  );

  it("max_budget is set absolutely: repeating or reordering pushes cannot add up", async () => {
    const c = client();
    const k = await keyWith("2");
    await c.setMaxBudget(k.key, "12");
    await c.setMaxBudget(k.key, "12");
    await c.setMaxBudget(k.key, "7");
    await c.setMaxBudget(await sha256Hex(k.key), "12"); // by token, as reconcile does
    expect((await c.keyInfo(k.key))?.max_budget).toBe("12");
  });

  it("batch info by token returns the known keys mapped by token; unknown keys are absent", async () => {
    const keys = [await keyWith("5"), await keyWith("5"), await keyWith("5", { blocked: true })];
    const tokens = await Promise.all(keys.map((k) => sha256Hex(k.key)));
    const stats: CallStats = { attempts: 0, requests: 0 };
    const rows = await client().keysInfo([...tokens, await sha256Hex("sk-not-a-key-of-anyone-000000")], stats);
    expect(stats.requests).toBe(1);
    expect([...rows.keys()].sort()).toEqual([...tokens].sort());
    expect(rows.get(tokens[0])).toMatchObject({ spend: "0", max_budget: "5", blocked: false });
    expect(rows.get(tokens[2])?.blocked).toBe(true);
  });

  it("falls back to /key/info one by one only when /v2/key/info is missing", async () => {
    const keys = [await keyWith("4"), await keyWith("4")];
    const tokens = await Promise.all(keys.map((k) => sha256Hex(k.key)));
    // An older proxy without the batch route answers 404 for it.
    const noV2: typeof fetch = async (input, init) =>
      String(input).includes("/v2/key/info")
        ? Response.json({ detail: "Not Found" }, { status: 404 })
        : await fetch(input, init);
    const stats: CallStats = { attempts: 0, requests: 0 };
    const rows = await client({ fetch: noV2 }).keysInfo(tokens, stats);
    expect([...rows.values()].map((r) => r.max_budget)).toEqual(["4", "4"]);
    expect(stats.requests).toBe(3); // the failed batch call, then one per key
  });

  it("block, unblock, delete (twice: idempotent); the key's calls follow; info of an unknown key is null", async () => {
    const c = client();
    const k = await keyWith("0"); // budget 0: an admitted call is refused for budget, never costs anything
    await c.blockKey(k.key);
    expect((await c.keyInfo(k.key))?.blocked).toBe(true);
    expect((await chat(k.key)).status).toBe(401);
    await c.unblockKey(await sha256Hex(k.key)); // by token too
    expect((await c.keyInfo(k.key))?.blocked).toBe(false);
    expect((await chat(k.key)).body.error.type).toBe("budget_exceeded"); // admitted again
    expect(await c.deleteKeys([k.key])).toHaveLength(1);
    expect(await c.deleteKeys([k.key])).toEqual([]);
    expect(await c.keyInfo(k.key)).toBeNull();
    expect((await chat(k.key)).status).toBe(401);
  });

  it("an update of an unknown key is a final error", async () => {
    const stats: CallStats = { attempts: 0 };
    const err = await client().setMaxBudget("sk-nobody-knows-this-key-0000", "5", stats).catch((e) => e);
    expect(err).toBeInstanceOf(LiteLLMError);
    expect([400, 401, 404]).toContain(err.status);
    expect(stats.attempts).toBe(1);
  });

  it("never sends spend or budget_duration, and sends metadata whole", async () => {
    const { sent, fetch } = recorder();
    const c = client({ fetch });
    const k = newKey();
    await c.generateKey({ ...k, max_budget: "2", rpm_limit: 100, user_id: "u1", metadata: { user_id: "u1", a: 1 } });
    await c.setMaxBudget(k.key, "3");
    await c.keysInfo([await sha256Hex(k.key)]);
    await c.blockKey(k.key);
    await c.unblockKey(k.key);
    expect(sent.length).toBe(5);
    for (const s of sent) {
      expect(Object.keys(s.body ?? {})).not.toContain("spend");
      expect(Object.keys(s.body ?? {})).not.toContain("budget_duration");
    }
    expect(sent[0].body.metadata).toEqual({ user_id: "u1", a: 1 });
    expect(sent[1].body).toEqual({ key: k.key, max_budget: 3 });
  });

  it("/key/list finds a key by alias and by user (what the tests use to count keys)", async () => {
    const user = `contract-user-${crypto.randomUUID()}`;
    const k = await keyWith("1", { user_id: user });
    const byAlias = await call(`/key/list?key_alias=${k.key_alias}&return_full_object=true`, MASTER);
    expect(byAlias.body.keys.map((r: { token: string }) => r.token)).toEqual([await sha256Hex(k.key)]);
    const byUser = await call(`/key/list?user_id=${user}&return_full_object=true&size=100`, MASTER);
    expect(byUser.body.keys).toHaveLength(1);
    expect(byUser.body.keys[0]).toMatchObject({ key_alias: k.key_alias, user_id: user });
  });
});

describe("what users' calls see", () => {
  it("a key at its budget is refused with budget_exceeded before any call; unknown keys get 401", async () => {
    const k = await keyWith("0");
    const refused = await chat(k.key);
    expect([400, 429]).toContain(refused.status); // 400 in older releases, 429 in the newest
    expect(refused.body.error.type).toBe("budget_exceeded");
    expect((await chat("sk-nobody-knows-this-key-0000")).status).toBe(401);
  });

  costed("the call that reaches the budget goes through, the next is refused; spend is the calls' cost", async () => {
    const k = await keyWith("0.000001");
    const first = await chat(k.key);
    expect(first.status).toBe(200);
    expect(first.body.usage.total_tokens).toBeGreaterThan(0);
    const cost = Number(first.headers.get("x-litellm-response-cost"));
    expect(cost).toBeGreaterThan(0.000001); // over the budget: admitted at spend 0, costed afterwards
    expect((await chat(k.key)).body.error.type).toBe("budget_exceeded"); // enforcement sees it at once
    expect(Number(await settledSpend(k.key))).toBeCloseTo(cost, 12);
    // A higher absolute budget re-opens the key at once.
    await client().setMaxBudget(k.key, "100");
    expect((await chat(k.key)).status).toBe(200);
  }, BATCH_WAIT_MS + 20_000);

  costed("a stream is admitted at its start, runs to its end through a block, and is costed when it ends", async () => {
    if (!REAL) await admin("/admin/config", { stream_chunk_delay_ms: 100 });
    const k = await keyWith("100");
    const res = await fetch(`${BASE}/chat/completions`, {
      method: "POST",
      headers: { Authorization: `Bearer ${k.key}`, "Content-Type": "application/json" },
      body: JSON.stringify(chatBody({ stream: true })),
    });
    expect(res.headers.get("content-type")).toContain("text/event-stream");
    const reader = res.body!.getReader();
    let text = new TextDecoder().decode((await reader.read()).value);
    await client().blockKey(k.key); // as a key rotation does while the user's calls are in flight
    expect((await client().keyInfo(k.key))?.spend).toBe("0");
    for (let r = await reader.read(); !r.done; r = await reader.read()) text += new TextDecoder().decode(r.value);
    expect(text.trimEnd().endsWith("data: [DONE]")).toBe(true);
    expect(Number(await settledSpend(k.key))).toBeGreaterThan(0);
  }, BATCH_WAIT_MS + 20_000);

  costed("spend reaches the read routes (/key/info, /v2/key/info) within the batch interval", async () => {
    if (!REAL) await admin("/admin/config", { batch_write_ms: 300 });
    const k = await keyWith("100");
    const cost = Number((await chat(k.key)).headers.get("x-litellm-response-cost"));
    expect(Number(await settledSpend(k.key))).toBeCloseTo(cost, 12);
    const [row] = (await client().keysInfo([await sha256Hex(k.key)])).values();
    expect(Number(row.spend)).toBeCloseTo(cost, 12);
  }, BATCH_WAIT_MS + 20_000);

  emulatorOnly("enforcement sees spend at once; the read routes only after the batch write", async () => {
    await admin("/admin/config", { batch_write_ms: 3_600_000 });
    const k = await keyWith("0.03");
    const costs: number[] = [];
    for (let i = 0; i < 2; i++) costs.push(Number((await chat(k.key)).headers.get("x-litellm-response-cost")));
    expect((await chat(k.key)).body.error.type).toBe("budget_exceeded"); // 2 x 0.019 >= 0.03
    expect((await client().keyInfo(k.key))?.spend).toBe("0");
    const [row] = (await client().keysInfo([await sha256Hex(k.key)])).values();
    expect(row.spend).toBe("0");
    expect((await admin("/admin/flush", {})).flushed).toBeGreaterThanOrEqual(1);
    expect(Number((await client().keyInfo(k.key))?.spend)).toBeCloseTo(costs[0] + costs[1], 12);
  });

  emulatorOnly("the logging callback posts each call's cost and the key's spend before it (spend hints)", async () => {
    const bodies: string[] = [];
    const sink = createServer((req, res) => {
      let body = "";
      req.on("data", (c) => (body += c)).on("end", () => (bodies.push(body), res.end("ok")));
    });
    await new Promise<void>((r) => sink.listen(0, "127.0.0.1", r));
    const before = await admin("/admin/callback");
    try {
      const endpoint = `http://127.0.0.1:${(sink.address() as { port: number }).port}/log`;
      await admin("/admin/callback", { endpoint, headers: { Authorization: "Bearer contract" } });
      const k = await keyWith("100");
      const costs: number[] = [];
      for (let i = 0; i < 2; i++) costs.push(Number((await chat(k.key)).headers.get("x-litellm-response-cost")));
      const token = await sha256Hex(k.key);
      const hints = await waitFor(
        async () => {
          const mine = bodies.flatMap((b) => spendHintsFromLogs(b).hints).filter((h) => h.token === token);
          return mine.length === 2 ? mine : null;
        },
        "two logged requests",
        10_000,
        100,
      );
      const seen = hints.map((h) => [Number(h.auth_spend), Number(h.cost)]).sort((a, b) => a[0] - b[0]);
      expect(seen).toEqual([[0, costs[0]], [costs[0], costs[1]]]);
    } finally {
      await admin("/admin/callback", before);
      sink.close();
    }
  });
});

describe("money is exact both ways", () => {
  it(
    "max_budget goes out with exactly the ledger's digits and comes back as the exact decimal LiteLLM has",
    async () => {
      const { sent, fetch } = recorder();
      const c = client({ fetch });
      const k = newKey();
      await c.generateKey({ ...k, max_budget: "12.34567891", metadata: {} });
      expect(sent.at(-1)?.text).toContain('"max_budget":12.34567891');
      expect((await c.keyInfo(k.key))?.max_budget).toBe("12.34567891");
      const answer = await c.setMaxBudget(k.key, "0.3");
      expect(sent.at(-1)?.text).toBe(`{"key":${JSON.stringify(k.key)},"max_budget":0.3}`);
      expect(answer.max_budget).toBe("0.3"); // never 0.30000000000000004
      expect((await c.keyInfo(k.key))?.max_budget).toBe("0.3");
    },
  );

  emulatorOnly("spend is read as the exact decimal of LiteLLM's float, without an exponent", async () => {
    const k = await keyWith("1");
    await admin("/admin/spend", { key: k.key, spend: 0.0000001 });
    await admin("/admin/flush", {});
    expect((await client().keyInfo(k.key))?.spend).toBe("0.0000001");
    const rows = await client().keysInfo([await sha256Hex(k.key)]);
    expect([...rows.values()][0].spend).toBe("0.0000001");
  });

  it("refuses to send a max_budget that is not a plain decimal (nothing is sent)", async () => {
    const { sent, fetch } = recorder();
    for (const bad of ["NaN", "1e5", "", "12,5", "Infinity"]) {
      const err = await client({ fetch }).setMaxBudget("sk-nobody-knows-this-key-0000", bad).catch((e) => e);
      expect(err).toBeInstanceOf(LiteLLMError);
      expect(err.type).toBe("invalid_request");
    }
    expect(sent).toEqual([]);
  });
});

describe.skipIf(REAL)("resilience (emulator faults)", () => {
  it("retries 5xx with backoff and succeeds", async () => {
    const k = await keyWith("1");
    await admin("/admin/faults", { route: "/key/info", count: 2, mode: "500" });
    const stats: CallStats = { attempts: 0 };
    expect((await client().keyInfo(k.key, stats))?.max_budget).toBe("1");
    expect(stats.attempts).toBe(3);
  });

  it("retries a 429 rate limit", async () => {
    const k = await keyWith("1");
    await admin("/admin/faults", { route: "/key/info", count: 1, mode: "429" });
    const stats: CallStats = { attempts: 0 };
    expect((await client().keyInfo(k.key, stats))?.max_budget).toBe("1");
    expect(stats.attempts).toBe(2);
  });

  it("gives up after the configured retries", async () => {
    const k = await keyWith("1");
    await admin("/admin/faults", { route: "/key/info", count: 5, mode: "500" });
    const stats: CallStats = { attempts: 0 };
    const err = await client({ maxRetries: 2 }).keyInfo(k.key, stats).catch((e) => e);
    expect(err).toBeInstanceOf(LiteLLMError);
    expect(err.status).toBe(500);
    expect(stats.attempts).toBe(3);
  });

  it("times out a call that does not answer", async () => {
    // The proxy did the work all the same: what a retry must expect (rotation's "answers lost" case).
    await admin("/admin/faults", { route: "/key/generate", count: 1, mode: "timeout", delay_ms: 3000 });
    const k = newKey();
    const err = await client({ timeoutMs: 200, maxRetries: 0 }).generateKey({ ...k, max_budget: "2", metadata: {} })
      .catch((e) => e);
    expect(err.type).toBe("timeout");
    expect((await client().keyInfo(k.key))?.max_budget).toBe("2");
  });

  it("an answer that confirms nothing (200 {}) is not read as the budget asked for", async () => {
    const k = await keyWith("2");
    await admin("/admin/faults", { route: "/key/update", count: 1, mode: "bare" });
    expect((await client().setMaxBudget(k.key, "7")).max_budget ?? null).toBeNull();
    expect((await client().keyInfo(k.key))?.max_budget).toBe("7"); // done, though the answer did not say
  });

  it("opens the circuit when LiteLLM is down, fails fast, and closes after the cooldown", async () => {
    const k = await keyWith("1");
    const c = client({ breakerThreshold: 2, breakerCooldownMs: 500, maxRetries: 0 });
    await admin("/admin/down", { down: true });
    for (let i = 0; i < 2; i++) expect((await c.keyInfo(k.key).catch((e) => e)).type).toBe("network_error");
    const stats: CallStats = { attempts: 0 };
    expect((await c.keyInfo(k.key, stats).catch((e) => e)).type).toBe("circuit_open"); // refused without a call
    expect(stats.attempts).toBe(0);
    await admin("/admin/down", { down: false });
    const info = await waitFor(() => c.keyInfo(k.key), "the circuit to close", 5_000, 100);
    expect(info).toMatchObject({ max_budget: "1" });
    expect(c.circuitOpen).toBe(false);
  });
});

describe("one place for LiteLLM", () => {
  it("no product file outside _shared/litellm.ts names a LiteLLM route or reads the master key", () => {
    const product = [
      "supabase/functions",
      "supabase/migrations",
      "web/src",
      "scripts/admin.ts",
      "scripts/deploy-check.ts",
    ];
    const files: string[] = [];
    const walk = (p: string) => {
      let st;
      try {
        st = statSync(join(ROOT, p));
      } catch {
        return;
      }
      if (st.isDirectory()) { for (const e of readdirSync(join(ROOT, p))) walk(`${p}/${e}`); }
      else if (/\.(ts|sql|js|html)$/.test(p)) files.push(p);
    };
    product.forEach(walk);
    expect(files.length).toBeGreaterThan(10);
    // Management and health routes. The chat route may appear in the dashboard's copy-paste snippet for
    // users: that is documentation of the proxy users call, not a call of ours.
    const route =
      /["'`/](v2\/)?key\/(generate|update|info|list|delete|block|unblock|regenerate)\b|\/health\/liveliness|\/user\/daily\/activity/;
    const read = (f: string) => readFileSync(join(ROOT, f), "utf8");
    const offenders = files.filter((f) => f !== "supabase/functions/_shared/litellm.ts" && route.test(read(f)));
    expect(offenders).toEqual([]);
    const allowed = ["supabase/functions/_shared/litellm.ts", "supabase/functions/_shared/config.ts"];
    expect(files.filter((f) => !allowed.includes(f) && /LITELLM_MASTER_KEY/.test(read(f)))).toEqual([]);
  });
});
