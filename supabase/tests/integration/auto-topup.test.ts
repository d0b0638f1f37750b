// Issue 15, auto top-up end to end (checkout, Paystack emulator, paystack-webhook, LiteLLM emulator with the
// official openai client, reconcile-spend, pg_net, auto-topup): a card payment saves the card; spend below
// the threshold is charged once and credited once within one reconcile run, max_budget raised; a second drop
// charges again, a third is refused by the monthly cap; two failed charges switch it off; duplicate triggers
// charge once; a run that dies after the charge still ends in exactly one credit; a mobile-money payer gets
// one low-balance notification per crossing.
import { spawnSync } from "node:child_process";
import OpenAI from "openai";
import { afterAll, describe, expect, it } from "vitest";
import {
  activeUser,
  closeSql,
  env,
  invoke,
  keyOnLiteLLM,
  mailTo,
  paystackAdmin,
  reconcileNow,
  sql,
  type TestUser,
  waitFor,
} from "./helpers.ts";

type User = TestUser & { key: string; keyId: string };

afterAll(async () => {
  await closeSql();
});

/** Pays the starter pack through checkout and the emulator: a card (a test card number) or mobile money. */
async function buyStarter(u: User, how: { card: string } | { channel: "mobile_money" }): Promise<string> {
  const c = await invoke("checkout", { plan: "starter", currency: "USD" }, u.token);
  expect(c.status, JSON.stringify(c.body)).toBe(200);
  const reference = c.body.reference as string;
  const paid = await paystackAdmin("/admin/pay", { reference, ...how });
  if (paid.data.status === "pending") await paystackAdmin("/admin/complete", { reference });
  await waitFor(
    async () => (await sql()`select 1 from public.payments where reference = ${reference}`).length === 1,
    "the payment to be credited",
  );
  return reference;
}

/** One call whose cost is exactly `usd` (test-expensive: $0.001 a token; ceil(chars / 4) prompt tokens + 1). */
async function spend(u: User, usd: number) {
  const client = new OpenAI({ apiKey: u.key, baseURL: env("LITELLM_PUBLIC_URL"), maxRetries: 0 });
  await client.chat.completions.create({
    model: "test-expensive",
    max_tokens: 1,
    messages: [{ role: "user", content: "x".repeat(4 * (Math.round(usd * 1000) - 1)) }],
  });
}

async function turnOn(u: User, cap: number) {
  const { error } = await u.client.from("auto_topup_settings").insert({
    threshold_usd: 1.0,
    plan_code: "starter",
    currency: "USD",
    monthly_max_count: cap,
  });
  expect(error).toBeNull();
}

const attempts = async (userId: string) =>
  await sql()`select id, reference, status, failure_reason from private.auto_topup_attempts
               where user_id = ${userId} order by id`;
const purchases = async (userId: string) =>
  (await sql()`select p.reference from public.credit_ledger l join public.payments p on p.id = l.payment_id
                where l.user_id = ${userId} and l.kind = 'purchase' order by l.id`).map((r) => r.reference as string);
const notifications = async (userId: string) =>
  await sql()`select kind, event_key, link from public.notifications where user_id = ${userId} order by id`;
const settings = async (userId: string) =>
  (await sql()`select enabled, disabled_reason from public.auto_topup_settings where user_id = ${userId}`)[0];
/** charge.success events the emulator sent for a reference (one per charge; a replay adds one). */
const chargeEvents = async (reference: string) =>
  (await paystackAdmin(`/admin/deliveries?reference=${reference}&event=charge.success`)).data.length as number;

async function settled(userId: string, n: number, status: string) {
  return await waitFor(
    async () => {
      const a = await attempts(userId);
      return a.length === n && a[n - 1].status === status ? a : null;
    },
    `attempt ${n} to be ${status}`,
    20_000,
  );
}

describe("auto top-up from a saved card", () => {
  it("charges once per drop, credits once, raises max_budget, and stops at the monthly cap", async () => {
    const u = await activeUser("topup");
    const first = await buyStarter(u, { card: "4084084084084081" });
    const { data: cards } = await u.client.from("payment_methods").select("*");
    expect(cards).toHaveLength(1);
    expect(cards![0]).toMatchObject({ channel: "card", last4: "4081", exp_month: 12, exp_year: 2030, reusable: true });
    expect(JSON.stringify(cards)).not.toMatch(/AUTH_/);
    await turnOn(u, 2);

    // 12.00 granted; 11.50 spent: 0.50 left, below 1.00. One reconcile run sees it.
    await spend(u, 11.5);
    await reconcileNow();
    const [a1] = await settled(u.id, 1, "succeeded");
    expect(await purchases(u.id)).toEqual([first, a1.reference]);
    expect(await chargeEvents(a1.reference)).toBe(1);
    await waitFor(async () => Number((await keyOnLiteLLM(u.key)).max_budget) === 22, "max_budget 22.00 on LiteLLM");
    const kinds = (await notifications(u.id)).map((n) => `${n.kind}:${n.event_key}`);
    expect(kinds).toContain(`auto_topup_succeeded:attempt:${a1.id}`);
    expect(kinds).toContain(`payment_receipt:${a1.reference}`);
    await waitFor(
      async () =>
        (await mailTo(u.email)).some((m) => m.type === "notification" && m.link.endsWith(`/#/receipt/${a1.reference}`)),
      "the top-up's receipt email in the stack's outbox",
    );

    // A second drop in the same month charges again.
    await spend(u, 10);
    await reconcileNow();
    const [, a2] = await settled(u.id, 2, "succeeded");
    expect(await purchases(u.id)).toEqual([first, a1.reference, a2.reference]);

    // The third is refused by the cap (2 a month): switched off, with a notification; nothing charged.
    await spend(u, 10);
    await reconcileNow();
    await waitFor(async () => (await settings(u.id))?.enabled === false, "auto top-up switched off");
    expect(await settings(u.id)).toEqual({ enabled: false, disabled_reason: "the monthly cap is reached" });
    expect((await notifications(u.id)).map((n) => n.kind)).toContain("auto_topup_disabled");
    expect(await attempts(u.id)).toHaveLength(2);
    expect(await purchases(u.id)).toHaveLength(3);
  });

  it("two failed charges (insufficient funds) switch it off, and the user is told each time", async () => {
    const u = await activeUser("topup-fail");
    await buyStarter(u, { card: "4084080000000508" });
    await turnOn(u, 5);
    await spend(u, 11.5);
    await reconcileNow();
    const [f1] = await settled(u.id, 1, "failed");
    expect(f1.failure_reason).toBe("Insufficient Funds");
    await spend(u, 0.1); // still below: the failed attempt closed its crossing, so this movement tries again
    await reconcileNow();
    await settled(u.id, 2, "failed");
    await waitFor(async () => (await settings(u.id))?.enabled === false, "auto top-up switched off");
    expect(await settings(u.id)).toEqual({ enabled: false, disabled_reason: "2 charges failed in a row" });
    expect((await notifications(u.id)).map((n) => n.kind).filter((k) => k.startsWith("auto_topup"))).toEqual([
      "auto_topup_failed",
      "auto_topup_failed",
      "auto_topup_disabled",
    ]);
    expect(await purchases(u.id)).toHaveLength(1);
  });

  it("duplicate triggers (the spend callback and reconcile at once, overlapping runs) charge once", async () => {
    const u = await activeUser("topup-dup");
    const first = await buyStarter(u, { card: "4084084084084081" });
    await turnOn(u, 5);
    await spend(u, 11.5);
    // LiteLLM's logging callback reporting that call (a spend hint) and reconcile reading it, at once, with
    // two overlapping auto-topup runs
    const [{ key_token }] = await sql()`select key_token from public.api_keys where id = ${u.keyId}`;
    const hint = {
      id: crypto.randomUUID(),
      call_type: "acompletion",
      status: "success",
      response_cost: 11.5,
      model: "test-expensive",
      metadata: { user_api_key_hash: key_token, user_api_key_spend: 0, user_api_key_max_budget: 12 },
    };
    const [, cb] = await Promise.all([
      reconcileNow(),
      invoke("litellm-spend-callback", JSON.stringify([hint]), env("LITELLM_CALLBACK_SECRET")),
      invoke("auto-topup", {}),
      invoke("auto-topup", {}),
    ]);
    expect(cb.status).toBe(200);
    const [a] = await settled(u.id, 1, "succeeded");
    await Promise.all([invoke("auto-topup", {}), reconcileNow()]);
    expect(await attempts(u.id)).toHaveLength(1);
    expect(await chargeEvents(a.reference)).toBe(1);
    expect(await purchases(u.id)).toEqual([first, a.reference]);
  });

  it("a pending charge is credited once when it succeeds later (its charge.success)", async () => {
    const u = await activeUser("topup-pending");
    const first = await buyStarter(u, { card: "4084080000000607" });
    await turnOn(u, 5);
    await spend(u, 11.5);
    await reconcileNow();
    const [a] = await settled(u.id, 1, "succeeded");
    expect(await purchases(u.id)).toEqual([first, a.reference]);
  });

  it("a run that dies between the charge and the credit still ends in exactly one credit", async () => {
    const u = await activeUser("topup-crash");
    const first = await buyStarter(u, { card: "4084084084084081" });
    await turnOn(u, 5);
    const [{ url }] =
      await sql()`select decrypted_secret as url from vault.decrypted_secrets where name = 'project_url'`;
    const hook = (await paystackAdmin("/admin/config")).data.webhook_url;
    // Nothing starts a run by itself (pg_net's kick and the cron sweep fail) and Paystack's webhook is lost.
    await sql()`select vault.update_secret(id, 'http://127.0.0.1:9/') from vault.secrets where name = 'project_url'`;
    await paystackAdmin("/admin/config", { webhook_url: "http://127.0.0.1:9/lost" });
    try {
      await spend(u, 11.5);
      await reconcileNow();
      const [queued] = await settled(u.id, 1, "queued");
      // The run that dies: it claims (recorded 'charging'), charges, and is gone before verifying.
      const [claim] = await sql()`select * from private.claim_auto_topups(50) where user_id = ${u.id}`;
      expect(claim.action).toBe("charge");
      const charged = await fetch(`${env("PAYSTACK_BASE_URL")}/transaction/charge_authorization`, {
        method: "POST",
        headers: { Authorization: `Bearer ${env("PAYSTACK_SECRET_KEY")}`, "Content-Type": "application/json" },
        body: JSON.stringify({
          authorization_code: claim.authorization_code,
          email: claim.email,
          amount: claim.amount_subunits,
          currency: claim.currency,
          reference: claim.reference,
        }),
      }).then((r) => r.json());
      expect([charged.status, charged.data.status]).toEqual([true, "success"]);
      expect(await purchases(u.id)).toEqual([first]);
      // Its lease runs out; the next run only verifies, and credits.
      await sql()`update private.auto_topup_attempts set locked_until = now() - interval '1 second' where id = ${queued.id}`;
      const run = await invoke("auto-topup", {});
      expect(run.body.attempts).toEqual([{ attempt_id: String(queued.id), action: "verify", status: "succeeded" }]);
    } finally {
      await sql()`select vault.update_secret(id, ${url}) from vault.secrets where name = 'project_url'`;
      await paystackAdmin("/admin/config", { webhook_url: hook });
    }
    const [a] = await attempts(u.id);
    // The lost webhook arrives late: a duplicate.
    await paystackAdmin("/admin/replay", { reference: a.reference });
    expect(await purchases(u.id)).toEqual([first, a.reference]);
  });
});

// ---------------------------------------------------------------- the client against the emulator
/** A payment made straight on the emulator (initialize, then the customer pays); its verify data. */
async function paidOnEmulator(email: string, how: { card: string } | { channel: string }) {
  const init = await paystackApi("/transaction/initialize", { email, amount: 500, currency: "USD" });
  await paystackAdmin("/admin/pay", { reference: init.data.reference, ...how });
  return (await paystackAdmin(`/admin/transactions/${init.data.reference}`)).data;
}
async function paystackApi(path: string, body: unknown) {
  const r = await fetch(`${env("PAYSTACK_BASE_URL")}${path}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${env("PAYSTACK_SECRET_KEY")}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  return await r.json();
}
/** _shared/paystack.ts chargeAuthorization, run in Deno as the functions run it (fixtures/charge-authorization.ts). */
function charge(req: Record<string, unknown>) {
  const run = spawnSync("node_modules/.bin/deno", [
    "run",
    "-A",
    "supabase/tests/integration/fixtures/charge-authorization.ts",
    JSON.stringify({
      amount: 500,
      currency: "USD",
      reference: `ca-${Date.now()}-${Math.random().toString(36).slice(2)}`,
      ...req,
    }),
  ], { encoding: "utf8", timeout: 60_000 });
  expect(run.status, run.stderr.replace(/AUTH_[A-Za-z0-9]+/g, "AUTH_***")).toBe(0);
  return JSON.parse(run.stdout);
}
// The fields of Paystack's charge_authorization answer (https://paystack.com/docs/api/transaction/#charge-authorization).
const CHARGE_FIELDS = [
  "amount",
  "currency",
  "transaction_date",
  "status",
  "reference",
  "domain",
  "metadata",
  "gateway_response",
  "message",
  "channel",
  "ip_address",
  "log",
  "fees",
  "authorization",
  "customer",
  "plan",
  "id",
];

describe("chargeAuthorization against the Paystack emulator", () => {
  const email = () => `ca-${Math.random().toString(36).slice(2)}@example.com`;

  it("charges a reusable card: Paystack's fields, the same card, a charge.success", async () => {
    const who = email();
    const paid = await paidOnEmulator(who, { card: "4084084084084081" });
    expect(paid.authorization).toMatchObject({ reusable: true, channel: "card", last4: "4081", exp_month: "12" });
    const reference = `ca-ok-${Date.now()}`;
    const out = charge({
      authorization_code: paid.authorization.authorization_code,
      email: who,
      reference,
      metadata: { purpose: "contract" },
    });
    expect(out.kind).toBe("charged");
    expect(Object.keys(out.transaction).sort()).toEqual([...CHARGE_FIELDS].sort());
    expect(out.transaction).toMatchObject({
      status: "success",
      reference,
      amount: 500,
      currency: "USD",
      gateway_response: "Approved",
      channel: "card",
      metadata: { purpose: "contract" },
    });
    expect(out.transaction.authorization).toMatchObject({
      authorization_code: "<the one charged>",
      signature: paid.authorization.signature,
      reusable: true,
    });
    expect((await paystackAdmin(`/admin/deliveries?reference=${reference}&event=charge.success`)).data).toHaveLength(1);
    // the same reference again is refused: one charge per reference
    const again = charge({ authorization_code: paid.authorization.authorization_code, email: who, reference });
    expect(again).toEqual({ kind: "refused", message: "Duplicate Transaction Reference" });
  });

  it("declined and insufficient funds are charges that failed; pending succeeds later", async () => {
    for (const [card, response] of [["4084080000000409", "Declined"], ["4084080000000508", "Insufficient Funds"]]) {
      const who = email();
      const paid = await paidOnEmulator(who, { card });
      const out = charge({ authorization_code: paid.authorization.authorization_code, email: who });
      expect([out.kind, out.transaction.status, out.transaction.gateway_response]).toEqual([
        "charged",
        "failed",
        response,
      ]);
    }
    const who = email();
    const paid = await paidOnEmulator(who, { card: "4084080000000607" });
    const out = charge({ authorization_code: paid.authorization.authorization_code, email: who });
    expect(out.transaction.status).toBe("pending");
    await waitFor(
      async () => (await paystackAdmin(`/admin/transactions/${out.transaction.reference}`)).data.status === "success",
      "the pending charge to succeed",
    );
  });

  it("refuses a non-reusable authorization (a bank payment), an unknown code and another customer's email", async () => {
    const who = email();
    const momo = await paidOnEmulator(who, { channel: "bank" });
    expect(momo.authorization.reusable).toBe(false);
    expect(charge({ authorization_code: momo.authorization.authorization_code, email: who }))
      .toEqual({ kind: "refused", message: "This authorization is not reusable" });
    expect(charge({ authorization_code: "AUTH_doesnotexist", email: who }))
      .toEqual({ kind: "refused", message: "Invalid Authorization Code" });
    const card = await paidOnEmulator(who, { card: "4084084084084081" });
    expect(charge({ authorization_code: card.authorization.authorization_code, email: email() }))
      .toEqual({ kind: "refused", message: "Email does not match Authorization code" });
  });
});

describe("users without a reusable card", () => {
  it("a mobile-money payer gets one low-balance notification per crossing, with a link to the same pack", async () => {
    const u = await activeUser("topup-momo");
    await buyStarter(u, { channel: "mobile_money" });
    expect((await u.client.from("payment_methods").select("*")).data).toEqual([]);
    await turnOn(u, 2);
    await spend(u, 11.5);
    await reconcileNow();
    // The threshold's crossings (the 20 % / 5 % alerts also notify, under event keys of their own).
    const low = () =>
      notifications(u.id).then((r) => r.filter((n) => String(n.event_key).startsWith("topup-threshold:")));
    await waitFor(async () => (await low()).length === 1, "a low-balance notification");
    expect((await low())[0].link).toBe("#/buy?plan=starter&currency=USD");
    // the next cycles below the threshold add nothing
    await spend(u, 0.1);
    await reconcileNow();
    await reconcileNow();
    expect(await low()).toHaveLength(1);
    expect(await attempts(u.id)).toEqual([]);
    // bought again (back above: re-armed), then below again: a second crossing, a second notification
    await buyStarter(u, { channel: "mobile_money" });
    await spend(u, 10);
    await reconcileNow();
    await waitFor(async () => (await low()).length === 2, "a second low-balance notification");
  });
});
