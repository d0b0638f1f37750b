// Issue 16, usage by model: calls on three models through the LiteLLM emulator with the official openai
// client; the per-model totals the user reads (my_usage_by_model) then equal the key's spend within
// 0.000001 USD, from the spend callback and, with the callback off, from usage-pull (GET /user/daily/activity).
import OpenAI from "openai";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  activeUser,
  adminCli,
  closeSql,
  env,
  invoke,
  litellmAdmin,
  reconcileNow,
  secretKey,
  sql,
  type TestUser,
  waitFor,
} from "./helpers.ts";

type User = TestUser & { key: string; keyId: string };
const MODELS = ["gpt-4o-mini", "claude-3-5-haiku", "test-expensive"];

/** Two calls on each model, with prompts of different lengths (different token counts and costs). */
async function useThreeModels(u: User) {
  const llm = new OpenAI({ apiKey: u.key, baseURL: env("LITELLM_PUBLIC_URL"), maxRetries: 0 });
  for (const [i, model] of MODELS.entries()) {
    for (const words of [3 + i, 11]) {
      await llm.chat.completions.create({
        model,
        messages: [{ role: "user", content: "word ".repeat(words) }],
        max_tokens: 5,
      });
    }
  }
}

interface Row {
  model: string;
  spend: string;
  requests: number;
  input_tokens: number;
  output_tokens: number;
}
/** What the user reads, summed over days: model -> row. */
async function usage(u: User): Promise<Map<string, Row>> {
  const { data, error } = await u.client.from("my_usage_by_model").select(
    "model, spend, requests, input_tokens, output_tokens",
  );
  if (error) throw new Error(error.message);
  const out = new Map<string, Row>();
  for (const r of data as Row[]) {
    const prev = out.get(r.model);
    out.set(r.model, prev ? { ...r, spend: String(Number(prev.spend) + Number(r.spend)) } : r);
  }
  return out;
}

/** The key's spend (public.key_spend) and the exact sum of the named models' spend, from SQL. */
async function totals(u: User) {
  const [t] = await sql()<{ key_spend: string; models: string; other: string | null }[]>`
    select public.key_spend(k)::text as key_spend,
           (select coalesce(sum(c.spend), 0)::text from public.usage_counted c where c.key_id = k.id) as models,
           (select g.other::text from public.usage_gaps g where g.key_id = k.id) as other
      from public.api_keys k where k.id = ${u.keyId}`;
  return t;
}

/** LiteLLM's own spend of the key (the read view). */
async function litellmSpend(u: User): Promise<number> {
  const r = await fetch(`${env("LITELLM_BASE_URL")}/key/info?key=${encodeURIComponent(u.key)}`, {
    headers: { Authorization: `Bearer ${env("LITELLM_MASTER_KEY")}` },
  });
  return Number((await r.json()).info.spend);
}

function expectReconciled(t: { key_spend: string; models: string; other: string | null }, spend: number) {
  expect(Number(t.key_spend)).toBeCloseTo(spend, 9);
  expect(Math.abs(Number(t.models) - Number(t.key_spend))).toBeLessThan(0.000001);
  expect(Math.abs(Number(t.other ?? 0))).toBeLessThan(0.000001);
}

afterAll(closeSql);

describe("usage by model", () => {
  it("from the spend callback: three models, each request once, totals equal the key's spend", async () => {
    const u = await activeUser("usage-callback");
    await useThreeModels(u);
    const spend = await litellmSpend(u);
    expect(spend).toBeGreaterThan(0);
    const rows = await waitFor(
      async () => {
        const m = await usage(u);
        return MODELS.every((x) => m.get(x)?.requests === 2) ? m : null;
      },
      "the callback's requests on three models",
      15_000,
    );
    expect([...rows.keys()].filter((m) => m !== "other").sort()).toEqual([...MODELS].sort());
    for (const m of MODELS) {
      expect(rows.get(m)!.output_tokens).toBe(10); // max_tokens 5, two calls
      expect(Number(rows.get(m)!.spend)).toBeGreaterThan(0);
    }
    await reconcileNow();
    expectReconciled(await totals(u), spend);
  });

  it("a callback batch delivered twice at once counts each request once", async () => {
    const u = await activeUser("usage-twice");
    const [{ key_token }] = await sql()`select key_token from public.api_keys where id = ${u.keyId}`;
    const entry = (id: string, cost: number) => ({
      id,
      status: "success",
      response_cost: cost,
      model: "openai/gpt-4o-mini",
      model_group: "gpt-4o-mini",
      prompt_tokens: 7,
      completion_tokens: 3,
      startTime: Date.now() / 1000,
      metadata: { user_api_key_hash: key_token, user_api_key_spend: 0 },
    });
    const body = JSON.stringify([entry(crypto.randomUUID(), 0.125), entry(crypto.randomUUID(), 0.25)]);
    const secret = env("LITELLM_CALLBACK_SECRET");
    const answers = await Promise.all([1, 2].map(() => invoke("litellm-spend-callback", body, secret)));
    expect(answers.map((a) => a.status)).toEqual([200, 200]);
    expect(answers.map((a) => a.body.usage.counted).sort()).toEqual([0, 2]);
    const row = (await usage(u)).get("gpt-4o-mini");
    expect(row).toMatchObject({ requests: 2, input_tokens: 14, output_tokens: 6 });
    expect(Number(row!.spend)).toBe(0.375);
  });

  it("spend no model explains is 'other' for the user and listed by npm run admin -- usage-gaps", async () => {
    const u = await activeUser("usage-gap");
    await useThreeModels(u);
    await waitFor(async () => (await usage(u)).get("test-expensive")?.requests === 2, "the callback's rows", 15_000);
    await litellmAdmin("/admin/spend", { key: u.key, add: 0.5 }); // spend LiteLLM reports without a request
    await reconcileNow();
    const other = Number((await usage(u)).get("other")?.spend);
    expect(other).toBeCloseTo(0.5, 9);
    const gaps = adminCli("usage-gaps", "--json");
    expect(gaps.code, gaps.stderr).toBe(0);
    const mine = (gaps.json as { key_id: string; other: string }[]).find((g) => g.key_id === u.keyId);
    expect(Number(mine?.other)).toBeCloseTo(0.5, 9);
  });

  describe("with the callback off: usage-pull", () => {
    let saved: unknown;
    let u: User;
    beforeAll(async () => {
      saved = await litellmAdmin("/admin/callback");
      await litellmAdmin("/admin/callback", { endpoint: null, headers: {} });
      u = await activeUser("usage-pull");
    });
    afterAll(async () => {
      await litellmAdmin("/admin/callback", saved);
    });

    it("refuses callers without the cron secret or a secret key", async () => {
      expect((await invoke("usage-pull", {}, "not-the-secret")).status).toBe(401);
    });

    it("with the callback configured and no force, only marks the days as skipped", async () => {
      const r = await invoke("usage-pull", {});
      expect(r.status).toBe(200);
      expect(r.body).toEqual({ source: "callback", pulls: [] });
    });

    it("pulls the day in pages; totals equal the key's spend, and a second pull changes nothing", async () => {
      await useThreeModels(u);
      const spend = await litellmSpend(u);
      await reconcileNow();
      expect([...(await usage(u)).keys()]).toEqual(["other"]); // LiteLLM's spend, no model known yet

      const pull = async () => {
        const r = await invoke("usage-pull", { force: true, max_pulls: 1 }, secretKey());
        expect(r.status).toBe(200);
        expect(r.body.pulls).toEqual([expect.objectContaining({ finished: true })]);
        return r.body;
      };
      const first = await pull();
      expect(first.litellm_requests).toBeGreaterThanOrEqual(1);
      const rows = await usage(u);
      expect([...rows.keys()].sort()).toEqual([...MODELS].sort());
      for (const m of MODELS) expect(rows.get(m)).toMatchObject({ requests: 2, output_tokens: 10 });
      expectReconciled(await totals(u), spend);

      await pull();
      expect(await usage(u)).toEqual(rows);
      expectReconciled(await totals(u), spend);
    });
  });
});
