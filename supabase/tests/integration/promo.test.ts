// Promo credit end to end (migration 20261202000900, function redeem-promo): a user redeems through the
// function and LiteLLM's max_budget rises like after any grant; one user's two concurrent redemptions of
// a code credit once; the expiry sweep (what the promo-expiry cron job runs) takes back the unused rest
// and push-budget, called through pg_net, lowers max_budget on LiteLLM.
import { afterAll, describe, expect, it } from "vitest";
import { activeUser, closeSql, invoke, keyOnLiteLLM, sql, waitFor } from "./helpers.ts";

afterAll(closeSql);

/** A fresh code worth `amount` USD, valid `days` days after redemption. */
async function newCode(amount: string, days = 30): Promise<string> {
  const code = `T${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`.toUpperCase();
  await sql()`select private.create_promo_code(${code}, ${amount}::numeric, null, ${days}, null, 'vitest', 'vitest')`;
  return code;
}

const maxBudgetOnLiteLLM = async (key: string) => String((await keyOnLiteLLM(key))?.max_budget);

describe("redeem-promo", () => {
  it("redeeming raises max_budget on LiteLLM to the new ledger target", async () => {
    const u = await activeUser("promo");
    const code = await newCode("3.50");
    const r = await invoke("redeem-promo", { code: code.toLowerCase() }, u.token);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ code, amount: "3.50", budget_push: "synced" });
    expect(Number(r.body.max_budget)).toBe(5.5);
    expect(await maxBudgetOnLiteLLM(u.key)).toBe("5.5");
    const { data } = await u.client.from("my_lots").select("kind,credit::text,expires_at").eq("kind", "promo");
    expect(data).toEqual([{ kind: "promo", credit: "3.50", expires_at: expect.any(String) }]);
  });

  it("refuses unknown codes, bad bodies and callers without a user token, changing nothing", async () => {
    const u = await activeUser("promo-refused");
    expect((await invoke("redeem-promo", { code: "NO-SUCH-CODE" }, u.token)).status).toBe(404);
    expect((await invoke("redeem-promo", { code: 5 }, u.token)).status).toBe(400);
    expect((await invoke("redeem-promo", { code: await newCode("1.00") })).status).toBe(401);
    const [{ n }] =
      await sql()`select count(*)::int as n from public.credit_ledger where user_id = ${u.id} and kind = 'promo'`;
    expect(n).toBe(0);
  });

  it("two concurrent redemptions of one code by one user credit once", async () => {
    const u = await activeUser("promo-race");
    const code = await newCode("4.00");
    const answers = await Promise.all([1, 2].map(() => invoke("redeem-promo", { code }, u.token)));
    expect(answers.map((a) => a.status).sort()).toEqual([200, 409]);
    expect(answers.find((a) => a.status === 409)?.body?.error).toBe("already_redeemed");
    const [{ n, total }] = await sql()`
      select count(*)::int as n, sum(amount)::text as total from public.credit_ledger where user_id = ${u.id} and kind = 'promo'`;
    expect([n, total]).toEqual([1, "4.00"]);
    await waitFor(async () => (await maxBudgetOnLiteLLM(u.key)) === "6", "max_budget 6 on LiteLLM (2.00 + 4.00 once)");
  });

  it("the expiry sweep takes back the unused credit and max_budget falls on LiteLLM", async () => {
    const u = await activeUser("promo-expiry");
    const code = await newCode("5.00", 1);
    expect((await invoke("redeem-promo", { code }, u.token)).status).toBe(200);
    expect(await maxBudgetOnLiteLLM(u.key)).toBe("7");
    await sql()`update public.promo_redemptions set expires_at = now() - interval '1 second' where user_id = ${u.id}`;
    // What the promo-expiry cron job runs (it would within a minute).
    await sql()`select private.expire_promos(500)`;
    const rows =
      await sql()`select kind, amount::text from public.credit_ledger where user_id = ${u.id} and kind like 'promo%' order by id`;
    expect(rows).toEqual([{ kind: "promo", amount: "5.00" }, { kind: "promo_expiry", amount: "-5.00" }]);
    await waitFor(async () => (await maxBudgetOnLiteLLM(u.key)) === "2", "max_budget back to 2 on LiteLLM", 15_000);
  });
});
