// Issue 6 (beyond the design card): LiteLLM's logging callback moves the balance within seconds; the
// pull stays the truth and the two never double-count.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { activeUser, closeSql, env, invoke, litellmAdmin, sql, type TestUser, waitFor } from "./helpers.ts";

type User = TestUser & { key: string; keyId: string };
let user: User;
let token: string;

async function callback(body: unknown, secret = env("LITELLM_CALLBACK_SECRET")) {
  return await invoke("litellm-spend-callback", typeof body === "string" ? body : JSON.stringify(body), secret);
}
/** One logged request as LiteLLM's generic API logger sends it (StandardLoggingPayload, trimmed). */
const logged = (spendAtAuth: number, cost: number, hash = token) => ({
  id: crypto.randomUUID(),
  call_type: "acompletion",
  status: "success",
  response_cost: cost,
  model: "gpt-4o-mini",
  metadata: {
    user_api_key_hash: hash,
    user_api_key_alias: "x",
    user_api_key_spend: spendAtAuth,
    user_api_key_max_budget: 2,
  },
});
async function spent(u: User) {
  const { data, error } = await u.client.from("my_account").select("spent, remaining").single();
  if (error) throw new Error(error.message);
  return { spent: Number(data.spent), remaining: Number(data.remaining) };
}
async function reconcileNow() {
  return await waitFor(
    async () => {
      const r = await invoke("reconcile-spend", { force: true, max_chunks: 100 });
      return r.status === 200 && r.body.claimed > 0 && r.body.outcome === "ok" ? r.body : null;
    },
    "a reconcile run",
    15_000,
    300,
  );
}

beforeAll(async () => {
  user = await activeUser("hint");
  [{ key_token: token }] = await sql()`select key_token from public.api_keys where id = ${user.keyId}`;
});
afterAll(closeSql);

describe("litellm-spend-callback", () => {
  it("refuses a wrong or missing secret and a body that is not JSON", async () => {
    expect((await callback([logged(0, 1)], "wrong-secret-wrong-secret")).status).toBe(401);
    expect((await invoke("litellm-spend-callback", "[]", "")).status).toBe(401);
    expect((await callback("{not json")).status).toBe(400);
    expect((await spent(user)).spent).toBe(0);
  });

  it("moves the balance at once, keeps the largest lower bound, and ignores keys it does not know", async () => {
    const r = await callback([logged(0, 0.25), logged(0.25, 0.5), logged(0, 0.1), logged(0, 9, "f".repeat(64))]);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ entries: 4, hints: 4, matched: 1, updated: 1 });
    expect(await spent(user)).toEqual({ spent: 0.75, remaining: 1.25 });
    // An older batch arriving late cannot lower it; NDJSON works too.
    const late = await callback(
      [logged(0, 0.25)].map((x) => JSON.stringify(x)).join("\n") + "\n" + JSON.stringify(logged(0, 0.1)),
    );
    expect(late.body.updated).toBe(0);
    expect((await spent(user)).spent).toBe(0.75);
  });

  it("adds spend at admission and cost exactly (0.1 + 0.2 is 0.3, not 0.30000000000000004)", async () => {
    const u = await activeUser("hint-exact");
    const [{ key_token }] = await sql()`select key_token from public.api_keys where id = ${u.keyId}`;
    const r = await callback([logged(0.1, 0.2, key_token)]);
    expect(r.body).toMatchObject({ hints: 1, matched: 1, updated: 1 });
    const [k] = await sql()`select hinted_spend::text from public.api_keys where id = ${u.keyId}`;
    expect(k.hinted_spend).toBe("0.3");
  });

  it("the pull catching up does not add the same spend again, and a larger pulled spend wins", async () => {
    await litellmAdmin("/admin/spend", { key: user.key, spend: 0.75 });
    await reconcileNow();
    expect((await spent(user)).spent).toBe(0.75);
    await litellmAdmin("/admin/spend", { key: user.key, spend: 1.2 });
    await reconcileNow();
    expect((await spent(user)).spent).toBe(1.2);
    // The ledger and the budget are untouched by hints.
    const [k] = await sql()`select litellm_max_budget::text as b from public.api_keys where id = ${user.keyId}`;
    expect(k.b).toBe("2");
  });
});

describe("end to end: a chat through the proxy moves the balance before any reconcile", () => {
  it("the emulator's logging callback reaches the function and the account shows the spend; the pull then agrees", async () => {
    const { default: OpenAI } = await import("openai");
    const u = await activeUser("e2e-hint");
    const client = new OpenAI({ apiKey: u.key, baseURL: env("LITELLM_PUBLIC_URL"), maxRetries: 0 });
    await client.chat.completions.create({
      model: "test-expensive",
      messages: [{ role: "user", content: "x".repeat(400) }],
    });
    await client.chat.completions.create({
      model: "test-expensive",
      messages: [{ role: "user", content: "y".repeat(400) }],
    });
    const litellmSpend = async () =>
      (await (await fetch(`${env("LITELLM_BASE_URL")}/key/info?key=${u.key}`, {
        headers: { Authorization: `Bearer ${env("LITELLM_MASTER_KEY")}` },
      })).json()).info.spend as number;
    const truth = await litellmSpend();
    expect(truth).toBeGreaterThan(0);
    // No reconcile has run for this user: the callback alone moves the balance, within seconds. Each call
    // posts its own callback, so wait until both have landed (the first alone shows half the spend).
    const seen = await waitFor(
      async () => {
        const s = await spent(u);
        return s.spent >= truth - 1e-9 ? s : null;
      },
      "the callback to move the balance",
      8_000,
      200,
    );
    expect(seen.spent).toBeCloseTo(truth, 9);
    // It came through the callback (a cron-started pull may also have landed meanwhile; either way the same number).
    const [k] = await sql()`select hinted_spend::float8 as hinted from public.api_keys where id = ${u.keyId}`;
    expect(k.hinted).toBeCloseTo(truth, 9);
    // The pull catches up to the same number: nothing is counted twice.
    await reconcileNow();
    expect((await spent(u)).spent).toBeCloseTo(truth, 9);
  });
});
