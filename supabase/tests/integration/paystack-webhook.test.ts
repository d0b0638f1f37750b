// Issue 5: checkout and the Paystack webhook against the Paystack and LiteLLM emulators: exactly-once
// credit under duplicate and concurrent deliveries, signature checks over raw bytes, verified-only
// crediting, LiteLLM outages, refunds and disputes. Issue 13: money exact at the edges (underpayment,
// fee-bearing refunds, equal refunds without references, dispute events unknown or out of order).
import { spawnSync } from "node:child_process";
import { createHmac } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { verifySignature } from "../../functions/_shared/paystack.ts";
import {
  activeUser,
  breakerClosed,
  closeSql,
  env,
  invoke,
  keyOnLiteLLM,
  litellmAdmin,
  liveKey,
  paystackAdmin,
  publishableKey,
  reconcileNow,
  serveAlone,
  signUp,
  sql,
  type TestUser,
  waitFor,
} from "./helpers.ts";

const WEBHOOK = () => `${env("SUPABASE_URL")}/functions/v1/paystack-webhook`;
const sign = (body: string, secret = env("PAYSTACK_SECRET_KEY")) =>
  createHmac("sha512", secret).update(body).digest("hex");

async function postWebhook(body: string, signature: string | null) {
  const headers: Record<string, string> = { "Content-Type": "application/json" };
  if (signature !== null) headers["x-paystack-signature"] = signature;
  const r = await fetch(WEBHOOK(), { method: "POST", headers, body });
  return { status: r.status, body: await r.json().catch(() => null) };
}

async function checkout(u: TestUser, plan: string) {
  const r = await invoke("checkout", { plan }, u.token);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body as { reference: string; access_code: string; authorization_url: string };
}

/** Paid on Paystack, webhook not yet sent: returns the exact charge.success body Paystack would send. */
async function paidCharge(u: TestUser, plan: string, mutate?: Record<string, unknown>) {
  const c = await checkout(u, plan);
  const paid = await paystackAdmin("/admin/pay", { reference: c.reference, webhook: false });
  expect(paid.data.status).toBe("success");
  if (mutate) await paystackAdmin("/admin/mutate", { reference: c.reference, ...mutate });
  const tx = (await paystackAdmin(`/admin/transactions/${c.reference}`)).data;
  const data = {
    id: tx.id,
    domain: tx.domain,
    status: tx.status,
    reference: tx.reference,
    amount: tx.amount,
    currency: tx.currency,
    paid_at: tx.paid_at,
  };
  return { reference: c.reference, body: JSON.stringify({ event: "charge.success", data }) };
}

async function ledger(userId: string) {
  return await sql()`select kind, amount::text as amount, reason from public.credit_ledger where user_id = ${userId} order by id`;
}

async function delivery(reference: string) {
  const [d] =
    await sql()`select * from private.webhook_deliveries where reference = ${reference} order by id desc limit 1`;
  return d;
}

beforeAll(async () => {
  await litellmAdmin("/admin/down", { down: false });
  await paystackAdmin("/admin/config", { down: false });
});
afterEach(async () => {
  await litellmAdmin("/admin/down", { down: false });
  await paystackAdmin("/admin/config", { down: false });
  await breakerClosed(); // a test that made LiteLLM fail leaves the next one a working client
});
afterAll(closeSql);

describe("signature", () => {
  it("verifies the reference test vector over the raw bytes", async () => {
    const body =
      '{"event":"charge.success","data":{"id":1,"reference":"ref_1","amount":500,"currency":"USD","status":"success"}}';
    const bytes = new TextEncoder().encode(body);
    expect(bytes.length).toBe(111);
    const vector =
      "935dc8661ef66f058c604c7c1a4ade2ef50fbfa2c7697ab8456f4e410c58c57a60d13753b47f0fdd5715ecf64f8f36c7225d2b90b1d372620795781a2f6c7c25";
    expect(await verifySignature(bytes, vector, "sk_test_emulator_secret")).toBe("ok");
    expect(await verifySignature(bytes, vector.toUpperCase(), "sk_test_emulator_secret")).toBe("ok");
    expect(await verifySignature(bytes, vector.replace(/^9/, "8"), "sk_test_emulator_secret")).toBe("mismatch");
    expect(await verifySignature(bytes, null, "sk_test_emulator_secret")).toBe("missing");
    expect(await verifySignature(bytes, "abc", "sk_test_emulator_secret")).toBe("malformed");
    expect(await verifySignature(new TextEncoder().encode(body + " "), vector, "sk_test_emulator_secret")).toBe(
      "mismatch",
    );
  });
});

describe("checkout", () => {
  it("initializes the plan's own amount and currency for a signed-in user", async () => {
    const user = await signUp("checkout");
    const c = await checkout(user, "pro");
    const tx = (await paystackAdmin(`/admin/transactions/${c.reference}`)).data;
    expect(tx.amount).toBe(1500);
    expect(tx.currency).toBe("USD");
    expect(tx.customer.email).toBe(user.email);
    expect(c.authorization_url).toContain(c.access_code);
    const [row] = await sql()`select * from public.checkouts where reference = ${c.reference}`;
    expect(row.user_id).toBe(user.id);
    expect(row.status).toBe("initialized");
  });

  it("refuses unknown plans, client amounts, and callers who are not signed in", async () => {
    const user = await signUp("checkout-bad");
    expect((await invoke("checkout", { plan: "platinum" }, user.token)).status).toBe(400);
    const withAmount = await invoke("checkout", { plan: "starter", amount: 1 }, user.token);
    expect(withAmount.status).toBe(400);
    expect((await invoke("checkout", { plan: "starter" }, publishableKey())).status).toBe(401);
    const r = await fetch(`${env("SUPABASE_URL")}/functions/v1/checkout`, {
      method: "POST",
      body: '{"plan":"starter"}',
    });
    expect(r.status).toBe(401);
    await r.body?.cancel();
    expect((await invoke("checkout", "not json", user.token)).status).toBe(400);
  });

  it("answers 503 with a clear message when Paystack is down", async () => {
    const user = await signUp("checkout-down");
    await paystackAdmin("/admin/config", { down: true });
    const r = await invoke("checkout", { plan: "starter" }, user.token);
    expect(r.status).toBe(503);
    expect(r.body.message).toMatch(/payment provider/i);
    expect(r.body.message).toMatch(/nothing was charged/i);
  });
});

describe("charge.success", () => {
  it("the same delivery 20 times at once: one payment, one ledger row, max_budget 12 on LiteLLM", async () => {
    const u = await activeUser("dup");
    const charge = await paidCharge(u, "starter");
    const signature = sign(charge.body);
    const results = await Promise.all(Array.from({ length: 20 }, () => postWebhook(charge.body, signature)));
    expect(results.map((r) => r.status)).toEqual(Array(20).fill(200));
    expect(results.filter((r) => r.body.outcome === "credited")).toHaveLength(1);
    expect(results.filter((r) => r.body.outcome === "duplicate")).toHaveLength(19);
    const payments = await sql()`select * from public.payments where reference = ${charge.reference}`;
    expect(payments).toHaveLength(1);
    expect((await ledger(u.id)).filter((l) => l.kind === "purchase")).toEqual([{
      kind: "purchase",
      amount: "10.00",
      reason: "Starter plan",
    }]);
    expect((await keyOnLiteLLM(u.key)).max_budget).toBe(12);
    expect((await liveKey(u.id)).sync_status).toBe("synced");
    // The reusable card of the verify answer is saved by the same SQL call that credits (20261202000710), once.
    const cards = await sql()`select channel, reusable from public.payment_methods where user_id = ${u.id}`;
    expect(cards).toEqual([{ channel: "card", reusable: true }]);
  });

  it("the emulator's own delivery after paying on the hosted checkout credits the user", async () => {
    const u = await activeUser("flow");
    const c = await checkout(u, "max");
    const r = await fetch(`${env("PAYSTACK_BASE_URL")}/checkout/${c.access_code}/pay`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ card: "4084 0840 8408 4081", cvv: "408", expiry: "12/30" }),
    });
    expect((await r.json()).status).toBe("success");
    await waitFor(async () => (await keyOnLiteLLM(u.key)).max_budget === 42, "max_budget 42 after the webhook");
    expect((await delivery(c.reference)).outcome).toBe("credited");
  });

  it("a declined card sends no webhook and credits nothing", async () => {
    const u = await activeUser("declined");
    const c = await checkout(u, "starter");
    const paid = await paystackAdmin("/admin/pay", { reference: c.reference, card: "declined" });
    expect(paid.data.status).toBe("failed");
    // The emulator's pay answers after its deliveries (a paid charge's first attempt): it made none, and
    // none reached us.
    expect(paid.data.deliveries).toEqual([]);
    expect(await delivery(c.reference)).toBeUndefined();
    const [co] = await sql()`select status from public.checkouts where reference = ${c.reference}`;
    expect(co.status).toBe("initialized");
    expect((await ledger(u.id)).map((l) => l.kind)).toEqual(["signup_grant"]);
  });

  it("forged, missing, misdirected and re-serialised signatures: 401, nothing applied, attempts logged", async () => {
    const u = await activeUser("forged");
    const charge = await paidCharge(u, "starter");
    const [{ n: before }] = await sql()`select count(*)::int as n from private.rejected_webhook_posts`;
    const other = JSON.stringify({ event: "charge.success", data: { reference: "someone-else" } });
    const pretty = JSON.stringify(JSON.parse(charge.body), null, 2); // same content, other bytes
    const attempts = [
      await postWebhook(charge.body, sign(charge.body, "sk_test_not_our_secret")),
      await postWebhook(charge.body, null),
      await postWebhook(charge.body, sign(other)),
      await postWebhook(pretty, sign(charge.body)),
      await postWebhook(charge.body, "not-hex"),
    ];
    expect(attempts.map((a) => a.status)).toEqual([401, 401, 401, 401, 401]);
    const [{ n: after }] = await sql()`select count(*)::int as n from private.rejected_webhook_posts`;
    expect(after - before).toBe(5);
    expect((await ledger(u.id)).map((l) => l.kind)).toEqual(["signup_grant"]);
    expect(await sql()`select 1 from public.payments where reference = ${charge.reference}`).toHaveLength(0);
    const rejected =
      await sql()`select reason from public.admin_rejected_deliveries where not signature_valid order by id desc limit 5`;
    expect(rejected.map((r) => r.reason).sort()).toEqual(
      ["signature malformed", "signature mismatch", "signature mismatch", "signature mismatch", "signature missing"]
        .sort(),
    );
    // The genuine delivery still works afterwards.
    expect((await postWebhook(charge.body, sign(charge.body))).body.outcome).toBe("credited");
  });

  it("mismatched or unverified payments: no credit, reason recorded, 200", async () => {
    const u = await activeUser("mismatch");
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ amount: 499, requested_amount: 499 }, /amount_mismatch/],
      [{ currency: "NGN" }, /currency_mismatch/],
      [{ status: "failed" }, /verify_status_failed/],
      [{ domain: "live" }, /domain_mismatch/],
    ];
    for (const [mutation, reason] of cases) {
      const charge = await paidCharge(u, "starter", mutation);
      const r = await postWebhook(charge.body, sign(charge.body));
      expect(r.status).toBe(200);
      expect(r.body.outcome).toBe("rejected");
      expect(r.body.reason).toMatch(reason);
      const d = await delivery(charge.reference);
      expect(d.outcome).toBe("rejected");
      expect(d.reason).toMatch(reason);
      const [co] =
        await sql()`select status, status_reason from public.checkouts where reference = ${charge.reference}`;
      expect(co.status).toBe("rejected");
      expect((await sql()`select 1 from public.admin_rejected_deliveries where reference = ${charge.reference}`).length)
        .toBeGreaterThan(0);
    }
    // A reference Paystack knows but we never issued (e.g. a payment link made by hand).
    const init = await fetch(`${env("PAYSTACK_BASE_URL")}/transaction/initialize`, {
      method: "POST",
      headers: { Authorization: `Bearer ${env("PAYSTACK_SECRET_KEY")}`, "Content-Type": "application/json" },
      body: JSON.stringify({ email: u.email, amount: 500, currency: "USD", reference: `stranger-${Date.now()}` }),
    }).then((r) => r.json());
    const paid = await paystackAdmin("/admin/pay", { reference: init.data.reference });
    expect(paid.data.deliveries[0].status_code).toBe(200);
    expect((await delivery(init.data.reference)).reason).toBe("unknown_reference");
    // And one Paystack does not know at all.
    const ghost = JSON.stringify({
      event: "charge.success",
      data: { reference: "never-issued-anywhere", amount: 500, currency: "USD", status: "success" },
    });
    const g = await postWebhook(ghost, sign(ghost));
    expect(g.status).toBe(200);
    expect(g.body.outcome).toBe("rejected");
    expect((await ledger(u.id)).map((l) => l.kind)).toEqual(["signup_grant"]);
    expect((await keyOnLiteLLM(u.key)).max_budget).toBe(2);
  });

  it("LiteLLM down during the webhook: 200, ledger credited, key out of sync; one reconcile run fixes it", async () => {
    const u = await activeUser("outage");
    const charge = await paidCharge(u, "starter");
    await litellmAdmin("/admin/down", { down: true });
    const r = await postWebhook(charge.body, sign(charge.body));
    expect(r.status).toBe(200);
    expect(r.body.outcome).toBe("credited");
    expect(r.body.budget_push).toBe("failed");
    expect((await ledger(u.id)).map((l) => l.amount)).toEqual(["2.00", "10.00"]);
    expect((await liveKey(u.id)).sync_status).toBe("failed");
    await litellmAdmin("/admin/down", { down: false });
    await breakerClosed();
    await reconcileNow();
    expect((await keyOnLiteLLM(u.key)).max_budget).toBe(12);
    expect((await liveKey(u.id)).sync_status).toBe("synced");
  });

  it("Paystack unreachable while verifying: 503 so Paystack retries, nothing credited; the retry credits", async () => {
    const u = await activeUser("verify-down");
    const charge = await paidCharge(u, "starter");
    await paystackAdmin("/admin/config", { down: true });
    const r = await postWebhook(charge.body, sign(charge.body));
    expect(r.status).toBe(503);
    expect((await delivery(charge.reference)).outcome).toBe("error");
    expect((await ledger(u.id)).map((l) => l.kind)).toEqual(["signup_grant"]);
    await paystackAdmin("/admin/config", { down: false });
    const retry = await postWebhook(charge.body, sign(charge.body));
    expect(retry.status).toBe(200);
    expect(retry.body.outcome).toBe("credited");
    expect((await keyOnLiteLLM(u.key)).max_budget).toBe(12);
  });

  it("two payments of one user at the same time: max_budget ends at the sum of both", async () => {
    const u = await activeUser("twice");
    const a = await paidCharge(u, "starter");
    const b = await paidCharge(u, "pro");
    const [ra, rb] = await Promise.all([postWebhook(a.body, sign(a.body)), postWebhook(b.body, sign(b.body))]);
    expect([ra.body.outcome, rb.body.outcome]).toEqual(["credited", "credited"]);
    expect((await keyOnLiteLLM(u.key)).max_budget).toBe(42);
    const k = await liveKey(u.id);
    expect(Number(k.litellm_max_budget)).toBe(42);
    expect(k.sync_status).toBe("synced");
  });
});

describe("refunds and disputes", () => {
  it("refund of a 15 USD pack after 4 USD spent: ledger -30, lower max_budget pushed", async () => {
    const u = await activeUser("refund");
    const charge = await paidCharge(u, "pro");
    expect((await postWebhook(charge.body, sign(charge.body))).body.outcome).toBe("credited");
    expect((await keyOnLiteLLM(u.key)).max_budget).toBe(32);
    await litellmAdmin("/admin/spend", { key: u.key, spend: 4 });
    const refund = await fetch(`${env("PAYSTACK_BASE_URL")}/refund`, {
      method: "POST",
      headers: { Authorization: `Bearer ${env("PAYSTACK_SECRET_KEY")}`, "Content-Type": "application/json" },
      body: JSON.stringify({ transaction: charge.reference }),
    }).then((r) => r.json());
    expect(refund.status).toBe(true);
    await waitFor(async () => (await ledger(u.id)).some((l) => l.kind === "refund"), "the refund row");
    expect((await ledger(u.id)).filter((l) => l.kind === "refund").map((l) => l.amount)).toEqual(["-30.00"]);
    await waitFor(async () => (await keyOnLiteLLM(u.key)).max_budget === 2, "max_budget 2 on LiteLLM");
    // Spend (4) is now above the budget (2): LiteLLM blocks the key by itself, as intended.
    const [p] =
      await sql()`select status, refunded_subunits from public.payments where reference = ${charge.reference}`;
    expect(p).toEqual({ status: "refunded", refunded_subunits: 1500 });
    // A replayed refund.processed changes nothing.
    await paystackAdmin("/admin/replay", {
      reference: charge.reference,
      event: "refund.processed",
      times: 3,
      concurrent: true,
    });
    expect((await ledger(u.id)).filter((l) => l.kind === "refund")).toHaveLength(1);
  });

  it("dispute lifecycle: opening blocks the key, the merchant winning unblocks, the customer winning reverses the credit", async () => {
    const u = await activeUser("dispute");
    const charge = await paidCharge(u, "starter");
    await postWebhook(charge.body, sign(charge.body));
    await paystackAdmin("/admin/dispute", { reference: charge.reference, action: "create" });
    await waitFor(async () => (await keyOnLiteLLM(u.key)).blocked === true, "the key blocked on LiteLLM");
    await paystackAdmin("/admin/dispute", { reference: charge.reference, action: "resolve", resolution: "declined" });
    await waitFor(async () => (await keyOnLiteLLM(u.key)).blocked === false, "the key unblocked");
    expect((await ledger(u.id)).map((l) => l.kind)).toEqual(["signup_grant", "purchase"]);

    const second = await paidCharge(u, "pro");
    await postWebhook(second.body, sign(second.body));
    expect((await keyOnLiteLLM(u.key)).max_budget).toBe(42);
    await paystackAdmin("/admin/dispute", { reference: second.reference, action: "create" });
    await waitFor(async () => (await keyOnLiteLLM(u.key)).blocked === true, "blocked again");
    await paystackAdmin("/admin/dispute", {
      reference: second.reference,
      action: "resolve",
      resolution: "merchant-accepted",
    });
    await waitFor(async () => (await keyOnLiteLLM(u.key)).blocked === false, "unblocked after the lost dispute");
    expect((await ledger(u.id)).map((l) => [l.kind, l.amount])).toEqual([
      ["signup_grant", "2.00"],
      ["purchase", "10.00"],
      ["purchase", "30.00"],
      ["dispute_reversal", "-30.00"],
    ]);
    expect((await keyOnLiteLLM(u.key)).max_budget).toBe(12);
  });

  it("unknown events and non-final refund statuses are answered 200 and change nothing", async () => {
    const body = JSON.stringify({ event: "subscription.create", data: { reference: "x" } });
    const r = await postWebhook(body, sign(body));
    expect(r.status).toBe(200);
    expect(r.body.outcome).toBe("ignored");
    const pending = JSON.stringify({
      event: "refund.pending",
      data: { transaction_reference: "x", amount: 100, currency: "USD" },
    });
    expect((await postWebhook(pending, sign(pending))).body.outcome).toBe("ignored");
  });
});

/** Paystack's API as our backend calls it (secret key). */
async function paystackApi(method: "GET" | "POST", path: string, body?: unknown) {
  const r = await fetch(`${env("PAYSTACK_BASE_URL")}${path}`, {
    method,
    headers: { Authorization: `Bearer ${env("PAYSTACK_SECRET_KEY")}`, "Content-Type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return await r.json();
}

/** Runs fn while the emulator's webhooks go nowhere (no retries): Paystack's state moves, we hear nothing. */
async function unheard(fn: () => Promise<void>) {
  const { data: before } = await paystackAdmin("/admin/config");
  await paystackAdmin("/admin/config", { webhook_url: "http://127.0.0.1:9/nowhere", retry_ms: [] });
  try {
    await fn();
  } finally {
    await paystackAdmin("/admin/config", { webhook_url: before.webhook_url, retry_ms: before.retry_ms });
  }
}

async function credited(u: TestUser, plan: string, mutate?: Record<string, unknown>) {
  const charge = await paidCharge(u, plan, mutate);
  expect((await postWebhook(charge.body, sign(charge.body))).body.outcome).toBe("credited");
  return charge.reference;
}

describe("money at the edges", () => {
  it("verified amount below the requested price: rejected with the reason, shown to operators, nothing credited", async () => {
    const u = await activeUser("underpaid");
    const charge = await paidCharge(u, "starter", { amount: 400, requested_amount: 500 });
    const r = await postWebhook(charge.body, sign(charge.body));
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ outcome: "rejected", reason: "underpaid: charged 400 < 500" });
    expect((await ledger(u.id)).map((l) => l.kind)).toEqual(["signup_grant"]);
    expect((await keyOnLiteLLM(u.key)).max_budget).toBe(2);
    const cli = spawnSync("node_modules/.bin/deno", ["run", "-A", "scripts/admin.ts", "rejected", "--json"], {
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(cli.status, cli.stderr).toBe(0);
    expect(JSON.parse(cli.stdout)).toContainEqual(expect.objectContaining({
      event: "charge.success",
      reference: charge.reference,
      outcome: "rejected",
      reason: "underpaid: charged 400 < 500",
    }));
  });

  it("a full refund of a fee-bearing charge (520 on a 500 plan) takes back the whole credit", async () => {
    const u = await activeUser("fee-refund");
    const ref = await credited(u, "starter", { amount: 520, requested_amount: 500 });
    expect((await keyOnLiteLLM(u.key)).max_budget).toBe(12);
    const refund = await paystackApi("POST", "/refund", { transaction: ref }); // the whole charge: 520
    expect(refund.data.amount).toBe(520);
    await waitFor(async () => (await ledger(u.id)).some((l) => l.kind === "refund"), "the refund row");
    expect((await ledger(u.id)).filter((l) => l.kind === "refund").map((l) => l.amount)).toEqual(["-10.00"]);
    const [p] =
      await sql()`select status, refunded_subunits, charged_subunits, amount_subunits from public.payments where reference = ${ref}`;
    expect(p).toEqual({ status: "refunded", refunded_subunits: 520, charged_subunits: 520, amount_subunits: 500 });
    await waitFor(async () => (await keyOnLiteLLM(u.key)).max_budget === 2, "max_budget back to 2 on LiteLLM");
  });

  it("our client reads every page of a transaction's refunds from Paystack's list", async () => {
    const u = await activeUser("refund-pages");
    const ref = await credited(u, "pro");
    const [{ id }] =
      await sql()`select provider_transaction_id::text as id from public.payments where reference = ${ref}`;
    await unheard(async () => {
      for (const amount of [100, 200, 300]) {
        expect((await paystackApi("POST", "/refund", { transaction: ref, amount })).status).toBe(true);
      }
    });
    const run = spawnSync("node_modules/.bin/deno", [
      "run",
      "-A",
      "supabase/tests/integration/fixtures/list-refunds.ts",
      id,
      "2",
    ], { encoding: "utf8", timeout: 60_000 });
    expect(run.status, run.stderr).toBe(0);
    const listed = JSON.parse(run.stdout);
    expect(listed.map((r: { amount: number }) => r.amount).sort()).toEqual([100, 200, 300]); // two pages of 2
    expect(
      listed.every((r: { transaction: number; currency: string }) =>
        String(r.transaction) === id && r.currency === "USD"
      ),
    ).toBe(true);
  });

  it("two equal refunds whose events carry no reference count twice; replays count nothing", async () => {
    const u = await activeUser("equal-refunds");
    const ref = await credited(u, "starter");
    // Paystack processes two refunds of 250; their events are lost.
    await unheard(async () => {
      for (let i = 0; i < 2; i++) {
        expect((await paystackApi("POST", "/refund", { transaction: ref, amount: 250 })).status).toBe(true);
      }
      await waitFor(
        async () =>
          (await paystackAdmin(`/admin/transactions/${ref}`)).data.refunds
            .filter((r: { status: string }) => r.status === "processed").length === 2,
        "both refunds processed on Paystack",
      );
    });
    // Then two refund.processed events without refund_reference or id, same amount: each says "look again".
    const stripped = {
      event: "refund.processed",
      data: { transaction_reference: ref, amount: 250, currency: "USD", status: "processed" },
    };
    const first = await paystackAdmin("/admin/send", stripped);
    expect(first.data.deliveries[0].status_code).toBe(200);
    expect((await ledger(u.id)).filter((l) => l.kind === "refund").map((l) => l.amount)).toEqual(["-10.00"]);
    const second = await paystackAdmin("/admin/send", stripped);
    expect(second.data.deliveries[0].status_code).toBe(200);
    expect((await delivery(ref)).outcome).toBe("duplicate");
    expect((await ledger(u.id)).filter((l) => l.kind === "refund").map((l) => l.amount)).toEqual(["-10.00"]);
    await waitFor(async () => (await keyOnLiteLLM(u.key)).max_budget === 2, "max_budget back to 2");
  });

  it("an unknown dispute action with two disputes open changes nothing; the key stays blocked until both are resolved", async () => {
    const u = await activeUser("two-disputes");
    const a = await credited(u, "starter");
    const b = await credited(u, "pro");
    const da = (await paystackAdmin("/admin/dispute", { reference: a, action: "create" })).data.dispute;
    await paystackAdmin("/admin/dispute", { reference: b, action: "create" });
    await waitFor(async () => (await keyOnLiteLLM(u.key)).blocked === true, "the key blocked on LiteLLM");
    const unknown = await paystackAdmin("/admin/send", {
      event: "charge.dispute.escalate",
      data: { id: da.id, status: "escalated", resolution: null, transaction: { reference: a } },
    });
    expect(unknown.data.deliveries[0].status_code).toBe(200);
    expect(await delivery(a)).toMatchObject({
      event: "charge.dispute.escalate",
      outcome: "ignored",
      reason: "unknown dispute action: escalate",
    });
    const [state] = await sql()`select status from private.disputes where id = ${da.id}`;
    expect(state.status).toBe("create");
    // Resolving the other one must not unblock: the first is still open.
    const resolved = await paystackAdmin("/admin/dispute", { reference: b, action: "resolve", resolution: "declined" });
    expect(resolved.data.deliveries[0].status_code).toBe(200);
    expect((await liveKey(u.id) as unknown as { blocked: boolean }).blocked).toBe(true);
    expect((await keyOnLiteLLM(u.key)).blocked).toBe(true);
    await paystackAdmin("/admin/dispute", { reference: a, action: "resolve", resolution: "declined" });
    await waitFor(async () => (await keyOnLiteLLM(u.key)).blocked === false, "unblocked once both are resolved");
    expect((await ledger(u.id)).map((l) => l.kind)).toEqual(["signup_grant", "purchase", "purchase"]);
  });

  it("dispute events out of order: a resolution before its create never blocks, a lost one reverses once", async () => {
    const u = await activeUser("late-create");
    const won = await credited(u, "starter");
    const lost = await credited(u, "pro");
    await unheard(async () => {
      for (const [reference, resolution] of [[won, "declined"], [lost, "merchant-accepted"]]) {
        await paystackAdmin("/admin/dispute", { reference, action: "create" });
        await paystackAdmin("/admin/dispute", { reference, action: "resolve", resolution });
      }
    });
    // Delivered late and reversed: each resolution first, then its create, then the resolution again.
    for (const reference of [won, lost]) {
      for (const event of ["charge.dispute.resolve", "charge.dispute.create", "charge.dispute.resolve"]) {
        const r = await paystackAdmin("/admin/replay", { reference, event });
        expect(r.data.deliveries[0].status_code).toBe(200);
      }
    }
    expect((await liveKey(u.id) as unknown as { blocked: boolean }).blocked).toBe(false);
    expect((await keyOnLiteLLM(u.key)).blocked).toBe(false);
    expect((await ledger(u.id)).map((l) => [l.kind, l.amount])).toEqual([
      ["signup_grant", "2.00"],
      ["purchase", "10.00"],
      ["purchase", "30.00"],
      ["dispute_reversal", "-30.00"],
    ]);
    await waitFor(async () => (await keyOnLiteLLM(u.key)).max_budget === 12, "max_budget 12 after the lost dispute");
  });
});

describe("transient failures", () => {
  it("database unreachable: 503 so Paystack retries, and nothing is lost once it is back", async () => {
    const u = await activeUser("db-down");
    const charge = await paidCharge(u, "starter");
    // The same function, served alone with database URLs (direct and pooled) that refuse connections.
    const dead = "postgresql://postgres:postgres@127.0.0.1:1/postgres";
    const fn = await serveAlone("paystack-webhook", { ...process.env, SUPABASE_DB_URL: dead, DB_POOLER_URL: dead });
    try {
      const r = await fetch(fn.url, {
        method: "POST",
        headers: { "Content-Type": "application/json", "x-paystack-signature": sign(charge.body) },
        body: charge.body,
      });
      expect(r.status).toBe(503);
      expect((await r.json()).error).toBe("database_unavailable");
    } finally {
      fn.stop();
    }
    expect((await ledger(u.id)).map((l) => l.kind)).toEqual(["signup_grant"]);
    // Paystack's retry reaches a healthy deployment: credited once.
    const retry = await postWebhook(charge.body, sign(charge.body));
    expect(retry.body.outcome).toBe("credited");
  });
});
