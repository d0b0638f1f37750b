// Contract tests for the one LiteLLM client (supabase/functions/_shared/litellm.ts). They run against
// the emulator by default, and against a real LiteLLM when LITELLM_CONTRACT_URL and
// LITELLM_CONTRACT_MASTER_KEY are set (fault-injection tests need the emulator and are skipped then).
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type CallStats, LiteLLMClient, LiteLLMError, sha256Hex } from "../../functions/_shared/litellm.ts";

const REAL = !!(process.env.LITELLM_CONTRACT_URL && process.env.LITELLM_CONTRACT_MASTER_KEY);
const BASE = REAL ? process.env.LITELLM_CONTRACT_URL! : process.env.LITELLM_BASE_URL!;
const MASTER = REAL ? process.env.LITELLM_CONTRACT_MASTER_KEY! : process.env.LITELLM_MASTER_KEY!;
const ROOT = fileURLToPath(new URL("../../..", import.meta.url));
console.log(REAL
  ? `litellm-client contract: against the real LiteLLM at ${BASE} (fault-injection tests skipped: they need the emulator)`
  : "litellm-client contract: real-LiteLLM run SKIPPED (set LITELLM_CONTRACT_URL and LITELLM_CONTRACT_MASTER_KEY); running against the emulator");

/** Every request body the client sent (parsed, and the exact text), to check what it never sends. */
const sent: { url: string; body: any; text: string | null }[] = [];
const recordingFetch: typeof fetch = async (input, init) => {
  sent.push({ url: String(input), body: init?.body ? JSON.parse(String(init.body)) : null, text: init?.body ? String(init.body) : null });
  return await fetch(input, init);
};

function client(over: Partial<ConstructorParameters<typeof LiteLLMClient>[0]> = {}) {
  return new LiteLLMClient({
    baseUrl: BASE, masterKey: MASTER, timeoutMs: 3000, maxRetries: 2, breakerThreshold: 50, breakerCooldownMs: 1000,
    retryBaseMs: 20, fetch: recordingFetch, ...over,
  });
}

async function emulatorAdmin(path: string, body?: unknown, method = body === undefined ? "DELETE" : "POST") {
  const u = new URL(BASE);
  u.port = String(Number(u.port) + 1);
  const r = await fetch(`${u.origin}${path}`, { method, headers: { Authorization: `Bearer ${MASTER}`, "Content-Type": "application/json" }, body: body === undefined ? undefined : JSON.stringify(body) });
  if (!r.ok) throw new Error(`${path}: ${r.status} ${await r.text()}`);
}

const created: string[] = [];
function newKey() {
  const k = `sk-contract-${crypto.randomUUID().replaceAll("-", "")}`;
  created.push(k);
  return { key: k, key_alias: `contract-${k.slice(-12)}` };
}

beforeAll(() => {
  if (!BASE || !MASTER) throw new Error("no LiteLLM to test against: run through `npm test`");
});
beforeEach(async () => {
  if (!REAL) {
    await emulatorAdmin("/admin/faults");
    await emulatorAdmin("/admin/down", { down: false });
  }
});
afterAll(async () => {
  await client().deleteKeys(created).catch(() => {});
});

describe("key management contract", () => {
  it("generate with our key and alias; info confirms budget, alias, metadata; no budget_duration", async () => {
    const c = client();
    const k = newKey();
    const res = await c.generateKey({ ...k, max_budget: "2", rpm_limit: 100, tpm_limit: 10000, user_id: "u1", metadata: { user_id: "u1", a: 1 } });
    expect(res.key).toBe(k.key);
    const info = await c.keyInfo(k.key);
    expect(info?.max_budget).toBe("2");
    expect(info?.key_alias).toBe(k.key_alias);
    expect(info?.metadata).toMatchObject({ user_id: "u1", a: 1 });
    expect(info?.spend).toBe("0");
    expect(info?.budget_duration ?? null).toBeNull();
  });

  it("a second generate with the same alias is a final 400 (no retry); with the same key it changes nothing", async () => {
    const c = client();
    const k = newKey();
    await c.generateKey({ ...k, max_budget: "3", metadata: {} });
    const stats: CallStats = { attempts: 0 };
    const err = await c.generateKey({ ...k, max_budget: "99", metadata: {} }, stats).catch((e) => e);
    expect(err).toBeInstanceOf(LiteLLMError);
    expect(err.status).toBe(400);
    expect(err.retryable).toBe(false);
    expect(stats.attempts).toBe(1);
    expect((await c.keyInfo(k.key))?.max_budget).toBe("3");
  });

  it("max_budget is set absolutely: repeating or reordering pushes cannot add up", async () => {
    const c = client();
    const k = newKey();
    await c.generateKey({ ...k, max_budget: "2", metadata: {} });
    await c.setMaxBudget(k.key, "12");
    await c.setMaxBudget(k.key, "12");
    await c.setMaxBudget(k.key, "7");
    await c.setMaxBudget(await sha256Hex(k.key), "12"); // by token, as reconcile does
    expect((await c.keyInfo(k.key))?.max_budget).toBe("12");
  });

  it("batch info by token returns the known keys mapped by token; unknown keys are absent", async () => {
    const c = client();
    const keys = [newKey(), newKey(), newKey()];
    for (const k of keys) await c.generateKey({ ...k, max_budget: "5", metadata: {} });
    const tokens = await Promise.all(keys.map((k) => sha256Hex(k.key)));
    const stats: CallStats = { attempts: 0, requests: 0 };
    const rows = await c.keysInfo([...tokens, await sha256Hex("sk-not-a-key-of-anyone-000000")], stats);
    expect(stats.requests).toBe(1);
    expect([...rows.keys()].sort()).toEqual([...tokens].sort());
    expect(rows.get(tokens[0])?.max_budget).toBe("5");
  });

  it("lists keys in pages with full rows", async () => {
    const page = await client().listKeys(1, 2);
    expect(page.keys.length).toBeGreaterThan(0);
    expect(page.keys.length).toBeLessThanOrEqual(2);
    expect(page.keys[0]).toHaveProperty("spend");
  });

  it("block, unblock, delete (twice: idempotent), info of an unknown key is null", async () => {
    const c = client();
    const k = newKey();
    await c.generateKey({ ...k, max_budget: "1", metadata: {} });
    await c.blockKey(k.key);
    expect((await c.keyInfo(k.key))?.blocked).toBe(true);
    await c.unblockKey(k.key);
    expect((await c.keyInfo(k.key))?.blocked).toBe(false);
    expect(await c.deleteKeys([k.key])).toHaveLength(1);
    expect(await c.deleteKeys([k.key])).toEqual([]);
    expect(await c.keyInfo(k.key)).toBeNull();
  });

  it("an update of an unknown key is a final error", async () => {
    const stats: CallStats = { attempts: 0 };
    const err = await client().setMaxBudget("sk-nobody-knows-this-key-0000", "5", stats).catch((e) => e);
    expect(err).toBeInstanceOf(LiteLLMError);
    expect([400, 401, 404]).toContain(err.status);
    expect(stats.attempts).toBe(1);
  });

  it("never sends spend or budget_duration, and sends metadata whole", () => {
    expect(sent.length).toBeGreaterThan(5);
    for (const s of sent) {
      if (!s.body) continue;
      expect(Object.keys(s.body)).not.toContain("spend");
      expect(Object.keys(s.body)).not.toContain("budget_duration");
    }
    const gen = sent.find((s) => s.url.endsWith("/key/generate") && s.body?.metadata?.a === 1);
    expect(gen?.body.metadata).toEqual({ user_id: "u1", a: 1 });
  });
});

describe("money is exact both ways", () => {
  it("max_budget goes out with exactly the ledger's digits and comes back as the exact decimal LiteLLM has", async () => {
    const c = client();
    const k = newKey();
    await c.generateKey({ ...k, max_budget: "12.34567891", metadata: {} });
    expect(sent.at(-1)?.text).toContain('"max_budget":12.34567891');
    expect((await c.keyInfo(k.key))?.max_budget).toBe("12.34567891");
    const answer = await c.setMaxBudget(k.key, "0.3");
    expect(sent.at(-1)?.text).toBe(`{"key":${JSON.stringify(k.key)},"max_budget":0.3}`);
    expect(answer.max_budget).toBe("0.3"); // never 0.30000000000000004
    expect((await c.keyInfo(k.key))?.max_budget).toBe("0.3");
  });

  it.skipIf(REAL)("spend is read as the exact decimal of LiteLLM's float, without an exponent", async () => {
    const c = client();
    const k = newKey();
    await c.generateKey({ ...k, max_budget: "1", metadata: {} });
    await emulatorAdmin("/admin/spend", { key: k.key, spend: 0.0000001 });
    await emulatorAdmin("/admin/flush", {});
    expect((await c.keyInfo(k.key))?.spend).toBe("0.0000001");
    const rows = await c.keysInfo([await sha256Hex(k.key)]);
    expect([...rows.values()][0].spend).toBe("0.0000001");
  });

  it("refuses to send a max_budget that is not a plain decimal (nothing is sent)", async () => {
    const before = sent.length;
    for (const bad of ["NaN", "1e5", "", "12,5", "Infinity"]) {
      const err = await client().setMaxBudget("sk-nobody-knows-this-key-0000", bad).catch((e) => e);
      expect(err).toBeInstanceOf(LiteLLMError);
      expect(err.type).toBe("invalid_request");
    }
    expect(sent.length).toBe(before);
  });
});

describe.skipIf(REAL)("resilience (emulator faults)", () => {
  it("retries 5xx with backoff and succeeds", async () => {
    const c = client();
    const k = newKey();
    await c.generateKey({ ...k, max_budget: "1", metadata: {} });
    await emulatorAdmin("/admin/faults", { route: "/key/info", count: 2, mode: "500" });
    const stats: CallStats = { attempts: 0 };
    expect((await c.keyInfo(k.key, stats))?.max_budget).toBe("1");
    expect(stats.attempts).toBe(3);
  });

  it("retries a 429 rate limit", async () => {
    const c = client();
    await emulatorAdmin("/admin/faults", { route: "/key/list", count: 1, mode: "429" });
    const stats: CallStats = { attempts: 0 };
    await c.listKeys(1, 1, stats);
    expect(stats.attempts).toBe(2);
  });

  it("gives up after the configured retries", async () => {
    await emulatorAdmin("/admin/faults", { route: "/key/list", count: 5, mode: "500" });
    const stats: CallStats = { attempts: 0 };
    const err = await client({ maxRetries: 2 }).listKeys(1, 1, stats).catch((e) => e);
    expect(err).toBeInstanceOf(LiteLLMError);
    expect(err.status).toBe(500);
    expect(stats.attempts).toBe(3);
  });

  it("times out a call that does not answer", async () => {
    await emulatorAdmin("/admin/faults", { route: "/key/list", count: 1, mode: "timeout", delay_ms: 3000 });
    const err = await client({ timeoutMs: 200, maxRetries: 0 }).listKeys(1, 1).catch((e) => e);
    expect(err.type).toBe("timeout");
  });

  it("opens the circuit when LiteLLM is down, fails fast, and closes after the cooldown", async () => {
    const c = client({ breakerThreshold: 2, breakerCooldownMs: 500, maxRetries: 0 });
    await emulatorAdmin("/admin/down", { down: true });
    for (let i = 0; i < 2; i++) expect((await c.listKeys(1, 1).catch((e) => e)).type).toBe("network_error");
    // Fails fast: refused by the breaker without a call (the emulator is down either way).
    const stats: CallStats = { attempts: 0 };
    const fast = await c.listKeys(1, 1, stats).catch((e) => e);
    expect(fast.type).toBe("circuit_open");
    expect(stats.attempts).toBe(0);
    await emulatorAdmin("/admin/down", { down: false });
    await new Promise((r) => setTimeout(r, 600));
    expect((await c.listKeys(1, 1)).keys.length).toBeGreaterThan(0);
    expect(c.circuitOpen).toBe(false);
  });

  it("falls back to /key/info one by one only when /v2/key/info is missing", async () => {
    const c = client();
    const keys = [newKey(), newKey()];
    for (const k of keys) await c.generateKey({ ...k, max_budget: "4", metadata: {} });
    const tokens = await Promise.all(keys.map((k) => sha256Hex(k.key)));
    // An older proxy without the batch route answers 404 for it.
    const noV2: typeof fetch = async (input, init) =>
      String(input).includes("/v2/key/info") ? new Response('{"detail":"Not Found"}', { status: 404 }) : await fetch(input, init);
    const stats: CallStats = { attempts: 0, requests: 0 };
    const rows = await client({ fetch: noV2 }).keysInfo(tokens, stats);
    expect(rows.size).toBe(2);
    expect(stats.requests).toBe(3); // the failed batch call, then one per key
  });
});

describe("one place for LiteLLM", () => {
  it("no product file outside _shared/litellm.ts names a LiteLLM route or reads the master key", () => {
    const product = ["supabase/functions", "supabase/migrations", "web/src", "scripts/admin.ts", "scripts/deploy-check.ts"];
    const files: string[] = [];
    const walk = (p: string) => {
      let st;
      try {
        st = statSync(join(ROOT, p));
      } catch {
        return;
      }
      if (st.isDirectory()) for (const e of readdirSync(join(ROOT, p))) walk(`${p}/${e}`);
      else if (/\.(ts|sql|js|html)$/.test(p)) files.push(p);
    };
    product.forEach(walk);
    expect(files.length).toBeGreaterThan(10);
    // Management and health routes. The chat route may appear in the dashboard's copy-paste snippet for
    // users: that is documentation of the proxy users call, not a call of ours.
    const route = /["'`/](v2\/)?key\/(generate|update|info|list|delete|block|unblock|regenerate)\b|\/health\/liveliness/;
    const offenders = files.filter((f) => f !== "supabase/functions/_shared/litellm.ts" && route.test(readFileSync(join(ROOT, f), "utf8")));
    expect(offenders).toEqual([]);
    const master = files.filter((f) =>
      !["supabase/functions/_shared/litellm.ts", "supabase/functions/_shared/config.ts"].includes(f) &&
      /LITELLM_MASTER_KEY/.test(readFileSync(join(ROOT, f), "utf8")));
    expect(master).toEqual([]);
  });
});
