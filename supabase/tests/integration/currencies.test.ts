// Issue 14 end to end (checkout, Paystack emulator, paystack-webhook, LiteLLM emulator): prices in the
// merchant's currency set with the admin command line, locked at checkout; an NGN card payment and a GHS
// mobile-money payment each credit exactly once and raise max_budget; an abandoned mobile-money checkout
// credits nothing; a KES refund takes back credit in proportion; bad currencies are a clear 400.
import { createHmac } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  activeUser,
  adminCli,
  closeSql,
  env,
  invoke,
  keyOnLiteLLM,
  paystackAdmin,
  sql,
  type TestUser,
  waitFor,
} from "./helpers.ts";

type User = TestUser & { key: string; keyId: string };
type Checkout = {
  reference: string;
  access_code: string;
  currency: string;
  amount: string;
  amount_subunits: number;
  exponent: number;
  credit: string;
  channels: string[];
};

/** The admin command line, which must succeed; its --json output. */
function admin(...args: string[]) {
  const r = adminCli(...args, "--json");
  expect(r.code, `admin ${args.join(" ")}: ${r.stderr}`).toBe(0);
  return r.json;
}

async function checkout(u: TestUser, plan: string, currency?: string) {
  const r = await invoke("checkout", currency ? { plan, currency } : { plan }, u.token);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body as Checkout;
}

/** The user's purchases as the ledger and payments record them. */
async function purchases(userId: string) {
  return await sql()`select l.amount::text as amount, p.currency, p.amount_subunits, p.channel
                       from public.credit_ledger l join public.payments p on p.id = l.payment_id
                      where l.user_id = ${userId} and l.kind = 'purchase'`;
}
const tenUsd = (
  currency: string,
  amount_subunits: number,
  channel: string,
) => [{ amount: "10.00", currency, amount_subunits, channel }];

/** A charge.success for the reference, signed as Paystack signs it (the event is only a hint: verify decides). */
async function postChargeSuccess(reference: string) {
  const body = JSON.stringify({ event: "charge.success", data: { reference, status: "success" } });
  const signature = createHmac("sha512", env("PAYSTACK_SECRET_KEY")).update(body).digest("hex");
  const r = await fetch(`${env("SUPABASE_URL")}/functions/v1/paystack-webhook`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "x-paystack-signature": signature },
    body,
  });
  return { status: r.status, body: await r.json() };
}

/** Paystack's POST /refund, as the merchant's dashboard would call it. */
async function refund(reference: string, amount: number) {
  const r = await fetch(`${env("PAYSTACK_BASE_URL")}/refund`, {
    method: "POST",
    headers: { Authorization: `Bearer ${env("PAYSTACK_SECRET_KEY")}`, "Content-Type": "application/json" },
    body: JSON.stringify({ transaction: reference, amount }),
  }).then((res) => res.json());
  expect([r.status, r.data.currency]).toEqual([true, "KES"]);
}

const maxBudget = async (u: User) => (await keyOnLiteLLM(u.key)).max_budget;

let enabledBefore: string[] = [];
beforeAll(async () => {
  enabledBefore = (await sql()`select code from public.currencies where enabled`).map((r) => r.code);
  // The operator's steps, as the README gives them.
  admin("currencies", "enable", "NGN", "--channels", "card,bank_transfer");
  admin("prices", "derive", "NGN", "--rate", "1550", "--round", "50");
  admin("currencies", "enable", "GHS", "--channels", "mobile_money,card");
  admin("prices", "set", "starter", "GHS", "75");
  admin("currencies", "enable", "KES", "--channels", "");
  admin("prices", "set", "starter", "KES", "650");
  admin("merchant-name", "set", "Currency Test Shop");
});
afterAll(async () => {
  await sql()`update public.currencies set enabled = code = any(${enabledBefore}) where not is_default`;
  await sql()`select private.set_merchant_name('litellm-credits')`;
  await closeSql();
});

describe("checkout in the merchant's currency", () => {
  it("locks the NGN price, the USD credit and the channels, and initializes Paystack with them", async () => {
    const u = await activeUser("ngn-lock");
    const c = await checkout(u, "starter", "ngn");
    const channels = ["bank_transfer", "card"];
    expect(c).toMatchObject({
      currency: "NGN",
      amount: "7750.00",
      amount_subunits: 775000,
      exponent: 2,
      credit: "10.00",
      channels,
    });
    const tx = (await paystackAdmin(`/admin/transactions/${c.reference}`)).data;
    expect([tx.amount, tx.currency, tx.channels]).toEqual([775000, "NGN", channels]);
    // No currency given: the user's last one.
    expect((await checkout(u, "pro")).currency).toBe("NGN");
    const { data: mine } = await u.client.from("my_currency").select("currency, exponent").single();
    expect(mine).toEqual({ currency: "NGN", exponent: 2 });
  });

  it("answers 400 for an unknown, a disabled or an unpriced currency, and creates nothing", async () => {
    const u = await activeUser("bad-currency");
    const cases: [unknown, string][] = [
      [{ plan: "starter", currency: "XYZ" }, "unknown_currency"],
      [{ plan: "starter", currency: "ZAR" }, "currency_disabled"],
      [{ plan: "max", currency: "GHS" }, "no_price"],
      [{ plan: "starter", currency: "naira" }, "invalid_request"],
    ];
    for (const [body, error] of cases) {
      const r = await invoke("checkout", body, u.token);
      expect([r.status, r.body.error], JSON.stringify(body)).toEqual([400, error]);
      expect(r.body.message).not.toMatch(/PAYSTACK|SUPABASE|secret/i);
    }
    expect(await sql()`select 1 from public.checkouts where user_id = ${u.id}`).toHaveLength(0);
  });
});

describe("payments", () => {
  it("an NGN card payment credits 10 USD once, raises max_budget; a later price change changes nothing", async () => {
    const u = await activeUser("ngn-card");
    const c = await checkout(u, "starter", "NGN");
    admin("prices", "set", "starter", "NGN", "9000"); // after the checkout: the locked 7750 still buys the pack
    const paid = await paystackAdmin("/admin/pay", { reference: c.reference });
    expect(paid.data.status).toBe("success");
    await waitFor(async () => (await maxBudget(u)) === 12, "max_budget 12 on LiteLLM");
    const replays = await paystackAdmin("/admin/replay", { reference: c.reference, times: 3, concurrent: true });
    expect(replays.data.deliveries.map((d: { status_code: number }) => d.status_code)).toEqual([200, 200, 200]);
    expect(await purchases(u.id)).toEqual(tenUsd("NGN", 775000, "card"));
    expect(await maxBudget(u)).toBe(12);
    const { data: receipt } = await u.client.from("my_receipts")
      .select("currency, exponent, amount_subunits, channel, credit::text, fx_rate::text, merchant_name, status")
      .eq("reference", c.reference).single();
    expect(receipt).toEqual({
      currency: "NGN",
      exponent: 2,
      amount_subunits: 775000,
      channel: "card",
      credit: "10.00",
      fx_rate: "1550",
      merchant_name: "Currency Test Shop",
      status: "credited",
    });
    admin("prices", "derive", "NGN", "--rate", "1550", "--round", "50");
  });

  it("a GHS mobile-money payment: pending decides nothing (503), approved credits once", async () => {
    const u = await activeUser("ghs-momo");
    const c = await checkout(u, "starter", "GHS");
    expect([c.amount, c.amount_subunits, c.channels]).toEqual(["75.00", 7500, ["card", "mobile_money"]]);
    const pending = await paystackAdmin("/admin/pay", { reference: c.reference, channel: "mobile_money" });
    expect([pending.data.status, pending.data.deliveries]).toEqual(["pending", []]);
    // An event before the approval (out of order, or forged): verify says pending, so nothing is decided.
    const early = await postChargeSuccess(c.reference);
    expect([early.status, early.body.error]).toEqual([503, "payment_pending"]);
    const [co] = await sql()`select status from public.checkouts where reference = ${c.reference}`;
    expect(co.status).toBe("initialized");
    expect(await purchases(u.id)).toEqual([]);

    const approved = await paystackAdmin("/admin/complete", { reference: c.reference });
    expect(approved.data.status).toBe("success");
    await waitFor(async () => (await maxBudget(u)) === 12, "max_budget 12 on LiteLLM");
    const late = await postChargeSuccess(c.reference); // the early delivery, retried after the approval
    expect([late.status, late.body.outcome]).toEqual([200, "duplicate"]);
    expect(await purchases(u.id)).toEqual(tenUsd("GHS", 7500, "mobile_money"));
  });

  it("an abandoned mobile-money checkout credits nothing", async () => {
    const u = await activeUser("ghs-abandon");
    const c = await checkout(u, "starter", "GHS");
    const pending = await paystackAdmin("/admin/pay", { reference: c.reference, channel: "mobile_money" });
    expect(pending.data.status).toBe("pending");
    const abandoned = await paystackAdmin("/admin/abandon", { reference: c.reference });
    expect([abandoned.data.status, abandoned.data.deliveries]).toEqual(["abandoned", []]);
    // The proving event: a charge.success for it (replayed or forged) is verified, found abandoned, rejected.
    const r = await postChargeSuccess(c.reference);
    expect([r.status, r.body.outcome, r.body.reason]).toEqual([200, "rejected", "verify_status_abandoned"]);
    const sent = (await paystackAdmin(`/admin/deliveries?reference=${c.reference}`)).data;
    expect(sent).toEqual([]); // Paystack itself sent nothing
    expect(await purchases(u.id)).toEqual([]);
    const [co] = await sql()`select status, status_reason from public.checkouts where reference = ${c.reference}`;
    expect(co).toEqual({ status: "rejected", status_reason: "verify_status_abandoned" });
    expect(await maxBudget(u)).toBe(2);
  });

  it("a KES refund takes back credit in proportion to the KES refunded, in two steps", async () => {
    const u = await activeUser("kes-refund");
    const c = await checkout(u, "starter", "KES");
    expect([c.amount_subunits, c.channels]).toEqual([65000, []]);
    await paystackAdmin("/admin/pay", { reference: c.reference });
    await waitFor(async () => (await maxBudget(u)) === 12, "max_budget 12 after the KES payment");
    await refund(c.reference, 16250); // 162.50 of 650 KES: a quarter, 2.50 USD of credit
    await waitFor(async () => (await maxBudget(u)) === 9.5, "max_budget 9.50 after a quarter refunded");
    await refund(c.reference, 32500); // half more: 7.50 in all
    await waitFor(async () => (await maxBudget(u)) === 4.5, "max_budget 4.50 after three quarters refunded");
    const rows = await sql()`select amount::text from public.credit_ledger
                              where user_id = ${u.id} and kind = 'refund' order by id`;
    expect(rows.map((r) => r.amount)).toEqual(["-2.50", "-5.00"]);
    const { data: receipt } = await u.client.from("my_receipts")
      .select("currency, refunded_subunits, credit_reversed::text, status").eq("reference", c.reference).single();
    expect(receipt).toEqual({
      currency: "KES",
      refunded_subunits: 48750,
      credit_reversed: "7.50",
      status: "partially_refunded",
    });
  });
});
