// Issue 5: checkout and the Paystack webhook against the Paystack and LiteLLM emulators: exactly-once
// credit under duplicate and concurrent deliveries, signature checks over raw bytes, verified-only
// crediting, LiteLLM outages, refunds and disputes.
import { createHmac } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { verifySignature } from "../../functions/_shared/paystack.ts";
import {
  activeUser, closeSql, env, invoke, keyOnLiteLLM, litellmAdmin, liveKey, paystackAdmin, publishableKey, sql, type TestUser, waitFor,
} from "./helpers.ts";

type User = TestUser & { key: string; keyId: string };
const WEBHOOK = () => `${env("SUPABASE_URL")}/functions/v1/paystack-webhook`;
const sign = (body: string, secret = env("PAYSTACK_SECRET_KEY")) => createHmac("sha512", secret).update(body).digest("hex");

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
  const data = { id: tx.id, domain: tx.domain, status: tx.status, reference: tx.reference, amount: tx.amount, currency: tx.currency, paid_at: tx.paid_at };
  return { reference: c.reference, body: JSON.stringify({ event: "charge.success", data }) };
}

async function ledger(userId: string) {
  return await sql()`select kind, amount::text as amount, reason from public.credit_ledger where user_id = ${userId} order by id`;
}

async function delivery(reference: string) {
  const [d] = await sql()`select * from private.webhook_deliveries where reference = ${reference} order by id desc limit 1`;
  return d;
}

let user: User;
beforeAll(async () => {
  await litellmAdmin("/admin/down", { down: false });
  await paystackAdmin("/admin/config", { down: false });
  user = await activeUser("pay");
});
afterEach(async () => {
  await litellmAdmin("/admin/down", { down: false });
  await paystackAdmin("/admin/config", { down: false });
});
afterAll(closeSql);

describe("signature", () => {
  it("verifies the reference test vector over the raw bytes", async () => {
    const body = '{"event":"charge.success","data":{"id":1,"reference":"ref_1","amount":500,"currency":"USD","status":"success"}}';
    const bytes = new TextEncoder().encode(body);
    expect(bytes.length).toBe(111);
    const vector = "935dc8661ef66f058c604c7c1a4ade2ef50fbfa2c7697ab8456f4e410c58c57a60d13753b47f0fdd5715ecf64f8f36c7225d2b90b1d372620795781a2f6c7c25";
    expect(await verifySignature(bytes, vector, "sk_test_emulator_secret")).toBe("ok");
    expect(await verifySignature(bytes, vector.toUpperCase(), "sk_test_emulator_secret")).toBe("ok");
    expect(await verifySignature(bytes, vector.replace(/^9/, "8"), "sk_test_emulator_secret")).toBe("mismatch");
    expect(await verifySignature(bytes, null, "sk_test_emulator_secret")).toBe("missing");
    expect(await verifySignature(bytes, "abc", "sk_test_emulator_secret")).toBe("malformed");
    expect(await verifySignature(new TextEncoder().encode(body + " "), vector, "sk_test_emulator_secret")).toBe("mismatch");
  });
});

describe("checkout", () => {
  it("initializes the plan's own amount and currency for a signed-in user", async () => {
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
    expect((await invoke("checkout", { plan: "platinum" }, user.token)).status).toBe(400);
    const withAmount = await invoke("checkout", { plan: "starter", amount: 1 }, user.token);
    expect(withAmount.status).toBe(400);
    expect((await invoke("checkout", { plan: "starter" }, publishableKey())).status).toBe(401);
    const r = await fetch(`${env("SUPABASE_URL")}/functions/v1/checkout`, { method: "POST", body: '{"plan":"starter"}' });
    expect(r.status).toBe(401);
    await r.body?.cancel();
    expect((await invoke("checkout", "not json", user.token)).status).toBe(400);
  });

  it("answers 503 with a clear message when Paystack is down", async () => {
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
    expect((await ledger(u.id)).filter((l) => l.kind === "purchase")).toEqual([{ kind: "purchase", amount: "10.00", reason: "Starter plan" }]);
    expect((await keyOnLiteLLM(u.key)).max_budget).toBe(12);
    expect((await liveKey(u.id)).sync_status).toBe("synced");
  });

  it("the emulator's own delivery after paying on the hosted checkout credits the user", async () => {
    const u = await activeUser("flow");
    const c = await checkout(u, "max");
    const r = await fetch(`${env("PAYSTACK_BASE_URL")}/checkout/${c.access_code}/pay`, {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ card: "4084 0840 8408 4081", cvv: "408", expiry: "12/30" }),
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
    await new Promise((r) => setTimeout(r, 300));
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
    const rejected = await sql()`select reason from public.admin_rejected_deliveries where not signature_valid order by id desc limit 5`;
    expect(rejected.map((r) => r.reason).sort()).toEqual(
      ["signature malformed", "signature mismatch", "signature mismatch", "signature mismatch", "signature missing"].sort());
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
      const [co] = await sql()`select status, status_reason from public.checkouts where reference = ${charge.reference}`;
      expect(co.status).toBe("rejected");
      expect((await sql()`select 1 from public.admin_rejected_deliveries where reference = ${charge.reference}`).length).toBeGreaterThan(0);
    }
    // A reference Paystack knows but we never issued (e.g. a payment link made by hand).
    const init = await fetch(`${env("PAYSTACK_BASE_URL")}/transaction/initialize`, {
      method: "POST", headers: { Authorization: `Bearer ${env("PAYSTACK_SECRET_KEY")}`, "Content-Type": "application/json" },
      body: JSON.stringify({ email: u.email, amount: 500, currency: "USD", reference: `stranger-${Date.now()}` }),
    }).then((r) => r.json());
    const paid = await paystackAdmin("/admin/pay", { reference: init.data.reference });
    expect(paid.data.deliveries[0].status_code).toBe(200);
    expect((await delivery(init.data.reference)).reason).toBe("unknown_reference");
    // And one Paystack does not know at all.
    const ghost = JSON.stringify({ event: "charge.success", data: { reference: "never-issued-anywhere", amount: 500, currency: "USD", status: "success" } });
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
    await new Promise((res) => setTimeout(res, 1600)); // breaker cooldown of the test stack
    await waitFor(async () => {
      const run = await invoke("reconcile-spend", { force: true, max_chunks: 100 });
      return run.status === 200 && run.body.claimed > 0 && run.body.outcome === "ok";
    }, "a reconcile run", 15_000, 300);
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
      method: "POST", headers: { Authorization: `Bearer ${env("PAYSTACK_SECRET_KEY")}`, "Content-Type": "application/json" },
      body: JSON.stringify({ transaction: charge.reference }),
    }).then((r) => r.json());
    expect(refund.status).toBe(true);
    await waitFor(async () => (await ledger(u.id)).some((l) => l.kind === "refund"), "the refund row");
    expect((await ledger(u.id)).filter((l) => l.kind === "refund").map((l) => l.amount)).toEqual(["-30.00"]);
    await waitFor(async () => (await keyOnLiteLLM(u.key)).max_budget === 2, "max_budget 2 on LiteLLM");
    // Spend (4) is now above the budget (2): LiteLLM blocks the key by itself, as intended.
    const [p] = await sql()`select status, refunded_subunits from public.payments where reference = ${charge.reference}`;
    expect(p).toEqual({ status: "refunded", refunded_subunits: 1500 });
    // A replayed refund.processed changes nothing.
    await paystackAdmin("/admin/replay", { reference: charge.reference, event: "refund.processed", times: 3, concurrent: true });
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
    await paystackAdmin("/admin/dispute", { reference: second.reference, action: "resolve", resolution: "merchant-accepted" });
    await waitFor(async () => (await keyOnLiteLLM(u.key)).blocked === false, "unblocked after the lost dispute");
    expect((await ledger(u.id)).map((l) => [l.kind, l.amount])).toEqual([
      ["signup_grant", "2.00"], ["purchase", "10.00"], ["purchase", "30.00"], ["dispute_reversal", "-30.00"],
    ]);
    expect((await keyOnLiteLLM(u.key)).max_budget).toBe(12);
  });

  it("unknown events and non-final refund statuses are answered 200 and change nothing", async () => {
    const body = JSON.stringify({ event: "subscription.create", data: { reference: "x" } });
    const r = await postWebhook(body, sign(body));
    expect(r.status).toBe(200);
    expect(r.body.outcome).toBe("ignored");
    const pending = JSON.stringify({ event: "refund.pending", data: { transaction_reference: "x", amount: 100, currency: "USD" } });
    expect((await postWebhook(pending, sign(pending))).body.outcome).toBe("ignored");
  });
});

describe("transient failures", () => {
  it("database unreachable: 503 so Paystack retries, and nothing is lost once it is back", async () => {
    const { spawn } = await import("node:child_process");
    const u = await activeUser("db-down");
    const charge = await paidCharge(u, "starter");
    // The same function, served alone with a database URL that refuses connections.
    const port = 54990 + Math.floor(Math.random() * 9);
    const child = spawn(`${process.cwd()}/node_modules/.bin/deno`, ["run", "-A", "supabase/tests/integration/fixtures/serve-function.ts", "paystack-webhook", String(port)], {
      env: { ...process.env, SUPABASE_DB_URL: "postgresql://postgres:postgres@127.0.0.1:1/postgres", NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    child.stdout!.on("data", (c) => (out += c));
    child.stderr!.on("data", (c) => (out += c));
    try {
      await waitFor(async () => out.includes("serving paystack-webhook"), "the function to listen", 15_000);
      const r = await fetch(`http://127.0.0.1:${port}/functions/v1/paystack-webhook`, {
        method: "POST", headers: { "Content-Type": "application/json", "x-paystack-signature": sign(charge.body) }, body: charge.body,
      });
      expect(r.status).toBe(503);
      expect((await r.json()).error).toBe("database_unavailable");
    } finally {
      child.kill("SIGTERM");
    }
    expect((await ledger(u.id)).map((l) => l.kind)).toEqual(["signup_grant"]);
    // Paystack's retry reaches a healthy deployment: credited once.
    const retry = await postWebhook(charge.body, sign(charge.body));
    expect(retry.body.outcome).toBe("credited");
  });
});
