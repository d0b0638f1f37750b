// Self-tests of the Paystack emulator (stack/emulators/paystack): the Paystack behaviour the product and
// its tests rely on (README, "What the product uses"). Spawns the emulator as a Deno subprocess and
// receives its webhooks on a node:http server. Each test makes its own transactions and looks only at
// their events; a test that changes the emulator's settings restores them.
//   npx vitest run supabase/tests/integration/paystack-emulator.test.ts

import { type ChildProcess, spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { signPaystackBody } from "../../../stack/emulators/paystack/webhooks.ts";

/** Parsed JSON from the emulator or a webhook body. */
// deno-lint-ignore no-explicit-any
type Json = any;

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
// Ports in this stack's own range (its Paystack emulator's + 150), so parallel stacks never collide.
const API_PORT = Number(process.env.STACK_PAYSTACK_PORT ?? 54430) + 150;
const API = `http://127.0.0.1:${API_PORT}`;
const ADMIN = `http://127.0.0.1:${API_PORT + 1}`;
const SECRET = "sk_test_emulator_secret";
const RETRY_MS = [100, 200];

const SUCCESS = { card: "4084 0840 8408 4081", cvv: "408" };
const DECLINED = { card: "4084 0800 0000 5408", cvv: "001" };
const EXPIRY = "12/39";

// ---------------------------------------------------------------------------------------------
// Webhook receiver

interface Received {
  raw: string;
  signature: string | undefined;
  event: string;
  data: Record<string, Json>;
  answered: number;
}

const referenceOf = (data: Json): string | undefined =>
  data?.reference ?? data?.transaction_reference ?? data?.transaction?.reference;

class Receiver {
  received: Received[] = [];
  /** status codes to answer for a reference's next deliveries, in order; 200 once used up */
  answers = new Map<string, number[]>();
  server!: http.Server;

  async start() {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const raw = Buffer.concat(chunks).toString("utf8");
        const parsed = JSON.parse(raw);
        const answered = this.answers.get(referenceOf(parsed.data) ?? "")?.shift() ?? 200;
        const signature = req.headers["x-paystack-signature"] as string | undefined;
        this.received.push({ raw, signature, event: parsed.event, data: parsed.data ?? {}, answered });
        res.writeHead(answered).end();
      });
    });
    await new Promise<void>((resolve) => this.server.listen(0, "127.0.0.1", resolve));
    return (this.server.address() as AddressInfo).port;
  }

  forRef(reference: string, event?: string) {
    return this.received.filter((r) => referenceOf(r.data) === reference && (!event || r.event === event));
  }

  async stop() {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

const hmac = (body: string, key = SECRET) => createHmac("sha512", key).update(body, "utf8").digest("hex");

async function until<T>(fn: () => T | Promise<T>, what: string, timeoutMs = 8000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function call(base: string, path: string, init: { body?: unknown; headers?: Record<string, string> } = {}) {
  const res = await fetch(base + path, {
    method: init.body === undefined ? "GET" : "POST",
    headers: { authorization: `Bearer ${SECRET}`, "content-type": "application/json", ...init.headers },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await res.text();
  let body: Json = text;
  try {
    body = JSON.parse(text);
  } catch { /* not JSON */ }
  return { status: res.status, body };
}
const api = (path: string, init?: Parameters<typeof call>[2]) => call(API, path, init);
const admin = (path: string, body?: unknown) => call(ADMIN, path, { body });
const verify = (reference: string) => api(`/transaction/verify/${encodeURIComponent(reference)}`);

let refCounter = 0;
const newRef = (prefix = "t") => `${prefix}-${Date.now().toString(36)}-${++refCounter}`;

async function init(over: Record<string, unknown> = {}) {
  const body = { email: "buyer@example.com", amount: 500, currency: "USD", reference: newRef(), ...over };
  const r = await api("/transaction/initialize", { body });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.data as { authorization_url: string; access_code: string; reference: string };
}

/** 400 with Paystack's error body, and no transaction made. */
async function refused(over: Record<string, unknown>, message?: RegExp) {
  const reference = newRef("refused");
  const body = { email: "a@example.com", amount: 500, currency: "USD", reference, ...over };
  const r = await api("/transaction/initialize", { body });
  expect(r.status, JSON.stringify(over)).toBe(400);
  expect(r.body).toMatchObject({ status: false, type: "validation_error" });
  if (message) expect(r.body.message).toMatch(message);
  expect((await verify(reference)).status).toBe(404);
}

async function payJson(accessCode: string, card: Record<string, string>, expiry = EXPIRY) {
  const res = await fetch(`${API}/checkout/${accessCode}/pay`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ expiry, ...card }),
  });
  return { status: res.status, body: await res.json() as Json };
}

/** Initialised and paid with the success card through the admin API (its first webhook attempt awaited). */
async function paidTx(over: Record<string, unknown> = {}) {
  const t = await init(over);
  const r = await admin("/admin/pay", { reference: t.reference });
  expect(r.body.data.status, JSON.stringify(r.body)).toBe("success");
  return t;
}

/**
 * The proving event for "no (further) event was sent": a payment made after the outcome in question has
 * had its charge.success delivered, so an event sent for that outcome, which would have gone first, is here.
 */
async function laterPaymentDelivered() {
  const later = await init();
  expect((await payJson(later.access_code, SUCCESS)).body.status).toBe("success");
  await until(() => receiver.forRef(later.reference).length === 1, "the later payment's charge.success");
}

/** Runs fn with the emulator's settings changed, and restores them. */
async function withConfig(change: Record<string, unknown>, fn: () => Promise<void>) {
  const before = (await admin("/admin/config")).body.data;
  expect((await admin("/admin/config", change)).status).toBe(200);
  try {
    await fn();
  } finally {
    await admin("/admin/config", { webhook_url: before.webhook_url, retry_ms: before.retry_ms, down: false });
  }
}

// ---------------------------------------------------------------------------------------------
// Lifecycle

const receiver = new Receiver();
let emu: ChildProcess;
let emuOutput = "";
let emuExit: Promise<number | null>;

beforeAll(async () => {
  const receiverPort = await receiver.start();
  emu = spawn(`${ROOT}node_modules/.bin/deno`, ["run", "-A", "stack/emulators/paystack/main.ts"], {
    cwd: ROOT,
    env: {
      ...process.env,
      PAYSTACK_EMULATOR_PORT: String(API_PORT),
      PAYSTACK_EMULATOR_ADMIN_PORT: String(API_PORT + 1),
      PAYSTACK_SECRET_KEY: SECRET,
      PAYSTACK_WEBHOOK_URL: `http://127.0.0.1:${receiverPort}/functions/v1/paystack-webhook`,
      PAYSTACK_WEBHOOK_RETRY_MS: RETRY_MS.join(","),
      NO_COLOR: "1",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  emuExit = new Promise((resolve) => emu.on("exit", (code) => resolve(code)));
  emu.stdout!.on("data", (c) => (emuOutput += c));
  emu.stderr!.on("data", (c) => (emuOutput += c));
  await until(() => emuOutput.includes("listening on"), "emulator to start", 25_000).catch((e) => {
    throw new Error(`${e.message}\n${emuOutput}`);
  });
});

afterAll(async () => {
  if (emu && emu.exitCode === null) {
    emu.kill("SIGKILL");
    await emuExit;
  }
  await receiver.stop();
});

// ---------------------------------------------------------------------------------------------

describe("webhook signature", () => {
  it("reproduces the reference test vector over the raw bytes", async () => {
    const body = '{"event":"charge.success","data":{"id":1,"reference":"ref_1","amount":500,"currency":"USD",' +
      '"status":"success"}}';
    const vector = "935dc8661ef66f058c604c7c1a4ade2ef50fbfa2c7697ab8456f4e410c58c57a" +
      "60d13753b47f0fdd5715ecf64f8f36c7225d2b90b1d372620795781a2f6c7c25";
    expect(Buffer.byteLength(body)).toBe(111);
    expect(await signPaystackBody(SECRET, body)).toBe(vector);
    expect(await signPaystackBody(SECRET, new TextEncoder().encode(body))).toBe(vector);
    expect(hmac(body)).toBe(vector);
  });
});

describe("POST /transaction/initialize", () => {
  it("returns the authorization URL, access code and reference; metadata comes back as sent", async () => {
    const reference = newRef("init");
    const body = { email: "a@example.com", amount: 1500, currency: "USD", reference, metadata: { user_id: "u1" } };
    const r = await api("/transaction/initialize", { body });
    expect(r.body).toMatchObject({ status: true, message: "Authorization URL created", data: { reference } });
    expect(r.body.data.access_code).toMatch(/^[a-z0-9]+$/);
    expect(r.body.data.authorization_url).toBe(`${API}/checkout/${r.body.data.access_code}`);
    expect((await verify(reference)).body.data.metadata).toEqual({ user_id: "u1" });
    const stringified = await init({ metadata: '{"plan":"pro"}' });
    expect((await verify(stringified.reference)).body.data.metadata).toEqual({ plan: "pro" });
  });

  it("generates a reference when none is given and defaults the currency to NGN", async () => {
    const r = await api("/transaction/initialize", { body: { email: "a@example.com", amount: "50000" } });
    expect(r.status).toBe(200);
    expect(r.body.data.reference).toMatch(/^[A-Za-z0-9]+$/);
    const v = (await verify(r.body.data.reference)).body.data;
    expect([v.currency, v.amount]).toEqual(["NGN", 50000]);
    expect(v.metadata).toBe(""); // Paystack sends "" when no metadata was given
  });

  it("refuses a duplicate reference with Paystack's error body", async () => {
    const t = await init();
    const r = await api("/transaction/initialize", {
      body: { email: "b@example.com", amount: 500, currency: "USD", reference: t.reference },
    });
    expect(r.status).toBe(400);
    expect(r.body).toEqual({
      status: false,
      message: "Duplicate Transaction Reference",
      type: "validation_error",
      code: "duplicate_reference",
    });
  });

  it("refuses a wrong or missing key with 401, on every API route", async () => {
    const body = { email: "a@example.com", amount: 500, currency: "USD" };
    const wrong = await api("/transaction/initialize", { body, headers: { authorization: "Bearer sk_test_nope" } });
    expect(wrong).toEqual({ status: 401, body: { status: false, message: "Invalid key" } });
    const none = await fetch(`${API}/transaction/initialize`, { method: "POST", body: JSON.stringify(body) });
    expect(none.status).toBe(401);
    await none.body?.cancel();
    for (const path of ["/transaction/verify/x", "/refund?transaction=1"]) {
      expect((await api(path, { headers: { authorization: "Bearer sk_live_x" } })).status).toBe(401);
    }
  });

  it("refuses bad emails, amounts, references, callback URLs and currencies", async () => {
    await refused({ email: undefined }, /Email is required/);
    await refused({ email: "not-an-email" });
    for (const amount of [0, -5, 5.5, "5.00", "abc", undefined]) await refused({ amount });
    await refused({ reference: "a b/c" }, /alphanumeric/);
    await refused({ callback_url: "ftp://example.com/x" });
    await refused({ currency: "EUR" }, /^Currency not supported by merchant$/);
    await init({ reference: newRef("A.b=C-9") });
  });
});

describe("GET /transaction/verify/:reference", () => {
  it("answers 404 for an unknown reference", async () => {
    expect(await verify("does-not-exist")).toEqual({
      status: 404,
      body: { status: false, message: "Transaction reference not found" },
    });
  });

  it("shows Paystack's transaction shape: abandoned before payment, success with details after", async () => {
    const t = await init({ amount: 500, currency: "USD" });
    const before = await verify(t.reference);
    expect(before.body).toMatchObject({ status: true, message: "Verification successful" });
    const d0 = before.body.data;
    expect(Object.keys(d0).sort()).toEqual([
      "amount",
      "authorization",
      "channel",
      "connect",
      "createdAt",
      "created_at",
      "currency",
      "customer",
      "domain",
      "fees",
      "fees_breakdown",
      "fees_split",
      "gateway_response",
      "id",
      "ip_address",
      "log",
      "message",
      "metadata",
      "order_id",
      "paidAt",
      "paid_at",
      "plan",
      "plan_object",
      "pos_transaction_data",
      "receipt_number",
      "reference",
      "requested_amount",
      "source",
      "split",
      "status",
      "subaccount",
      "transaction_date",
    ]);
    expect(d0.id).toBeGreaterThan(2 ** 31); // consumers must store it as bigint
    expect(d0).toMatchObject({
      domain: "test",
      status: "abandoned",
      reference: t.reference,
      amount: 500,
      requested_amount: 500,
      currency: "USD",
      paid_at: null,
      channel: "card",
      customer: { email: "buyer@example.com" },
    });
    expect(d0.customer.customer_code).toMatch(/^CUS_/);
    expect(await payJson(t.access_code, SUCCESS)).toEqual({
      status: 200,
      body: { status: "success", reference: t.reference, message: "Successful", gateway_response: "Successful" },
    });
    const after = (await verify(t.reference)).body.data;
    expect(after).toMatchObject({ id: d0.id, status: "success", gateway_response: "Successful" });
    expect(Date.parse(after.paid_at)).not.toBeNaN();
    expect(after.paidAt).toBe(after.paid_at);
    expect(after.authorization).toMatchObject({ last4: "4081", bin: "408408", reusable: true, channel: "card" });
    expect(after.authorization.authorization_code).toMatch(/^AUTH_/);
    expect(after.customer).toEqual(d0.customer);
  });
});

describe("hosted checkout", () => {
  it("serves an accessible card form showing amount, email and reference", async () => {
    const t = await init({ amount: 1500, email: "page@example.com" });
    const res = await fetch(t.authorization_url);
    expect(res.headers.get("content-type")).toMatch(/text\/html/);
    const html = await res.text();
    expect(html).toContain('<html lang="en">');
    expect(html).toContain("USD 15.00");
    expect(html).toContain("page@example.com");
    expect(html).toContain(`data-testid="reference">${t.reference}<`);
    expect(html).toContain(`action="/checkout/${t.access_code}/pay"`);
    for (const id of ["card", "expiry", "cvv"]) expect(html).toMatch(new RegExp(`<label for="${id}">`));
    expect(html).toMatch(/<button type="submit">Pay USD 15\.00<\/button>/);
    expect((await fetch(`${API}/checkout/nope`)).status).toBe(404);
  });

  it("success card: charge.success signed over the raw body, with verify's data", async () => {
    const t = await init({ metadata: { user_id: "u-42", plan: "starter" } });
    expect((await payJson(t.access_code, SUCCESS)).body.status).toBe("success");
    const hook = await until(() => receiver.forRef(t.reference, "charge.success")[0], "charge.success");
    expect(hook.signature).toBe(hmac(hook.raw));
    expect(JSON.parse(hook.raw)).toEqual({ event: "charge.success", data: (await verify(t.reference)).body.data });
    expect(hook.data).toMatchObject({ status: "success", amount: 500, metadata: { user_id: "u-42", plan: "starter" } });
    const sent = (await admin(`/admin/deliveries?reference=${t.reference}&event=charge.success`)).body.data;
    expect(sent).toEqual([{
      event: "charge.success",
      reference: t.reference,
      body: hook.raw,
      signature: hook.signature,
    }]);
  });

  it.each([
    ["declined", DECLINED, "Declined"],
    ["wrong CVV", { card: SUCCESS.card, cvv: "123" }, "Declined"],
    ["expired", { ...SUCCESS, expiry: "01/20" }, "Expired Card"],
  ])("%s card: failed with the reason, and no event", async (_name, card, reason) => {
    const t = await init();
    expect(await payJson(t.access_code, card)).toEqual({
      status: 200,
      body: { status: "failed", reference: t.reference, message: reason, gateway_response: reason },
    });
    expect((await verify(t.reference)).body.data).toMatchObject({ status: "failed", gateway_response: reason });
    await laterPaymentDelivered();
    expect(receiver.forRef(t.reference)).toEqual([]);
  });

  it("lets the customer retry after a failure, refuses to charge twice, and sends one event", async () => {
    const t = await init();
    expect((await payJson(t.access_code, DECLINED)).body.status).toBe("failed");
    expect((await payJson(t.access_code, SUCCESS)).body.status).toBe("success");
    const again = await payJson(t.access_code, SUCCESS);
    expect(again).toMatchObject({ status: 400, body: { status: "error", reference: t.reference } });
    expect((await payJson(t.access_code, { card: "12", cvv: "408" })).status).toBe(400);
    await laterPaymentDelivered();
    expect(receiver.forRef(t.reference)).toHaveLength(1);
    expect((await verify(t.reference)).body.data.status).toBe("success");
  });

  it("form post redirects to callback_url with trxref and reference", async () => {
    const t = await init({ callback_url: "http://127.0.0.1:54399/pay/done?plan=starter" });
    const res = await fetch(`${API}/checkout/${t.access_code}/pay`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ ...SUCCESS, expiry: EXPIRY }).toString(),
      redirect: "manual",
    });
    expect(res.status).toBe(303);
    const loc = new URL(res.headers.get("location")!);
    expect(loc.origin + loc.pathname).toBe("http://127.0.0.1:54399/pay/done");
    expect(Object.fromEntries(loc.searchParams)).toEqual({
      plan: "starter",
      trxref: t.reference,
      reference: t.reference,
    });
    await until(() => receiver.forRef(t.reference, "charge.success").length === 1, "charge.success");
  });

  it("form post without callback_url shows a result page; a declined card shows the form again", async () => {
    const t = await init();
    const post = (card: Record<string, string>) =>
      fetch(`${API}/checkout/${t.access_code}/pay`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ ...card, expiry: EXPIRY }).toString(),
      }).then((r) => r.text());
    const declined = await post(DECLINED);
    expect(declined).toContain('role="alert"');
    expect(declined).toContain("Declined");
    expect(declined).toContain("<form");
    expect(await post(SUCCESS)).toContain("Payment successful");
  });
});

describe("webhook delivery", () => {
  it("retries a failed delivery with the same bytes and signature, until a 200", async () => {
    const t = await init();
    receiver.answers.set(t.reference, [500, 201]); // anything but 200 is a failure
    const paid = await admin("/admin/pay", { reference: t.reference });
    expect(paid.body.data.deliveries).toEqual([
      { event: "charge.success", reference: t.reference, status_code: 500, error: "HTTP 500" },
    ]);
    await until(() => receiver.forRef(t.reference).length === 3, "two retries");
    const hooks = receiver.forRef(t.reference);
    expect(hooks.map((h) => h.answered)).toEqual([500, 201, 200]);
    expect(new Set(hooks.map((h) => h.raw)).size).toBe(1);
    expect(new Set(hooks.map((h) => h.signature))).toEqual(new Set([hmac(hooks[0].raw)]));
  });

  it("gives up after the configured retries", async () => {
    const t = await init();
    receiver.answers.set(t.reference, [503, 503, 503, 503]);
    await admin("/admin/pay", { reference: t.reference });
    await until(() => receiver.forRef(t.reference).length === 3, "three attempts");
    // The proving event: a delivery started after the last attempt has had its first retry (the same
    // delay a fourth attempt would have waited).
    const marker = await init();
    receiver.answers.set(marker.reference, [503]);
    await admin("/admin/pay", { reference: marker.reference });
    await until(() => receiver.forRef(marker.reference).length === 2, "the marker's retry");
    expect(receiver.forRef(t.reference).map((h) => h.answered)).toEqual([503, 503, 503]);
  });

  it("follows the webhook URL and retry settings, and reports a network error", async () => {
    const nowhere = `http://127.0.0.1:${API_PORT + 2}/nowhere`; // in this stack's range; nothing listens there
    await withConfig({ webhook_url: nowhere, retry_ms: [] }, async () => {
      expect((await admin("/admin/config")).body.data).toEqual({ webhook_url: nowhere, retry_ms: [], down: false });
      const t = await init();
      const [first] = (await admin("/admin/pay", { reference: t.reference })).body.data.deliveries;
      expect(first).toMatchObject({ status_code: null, error: expect.stringMatching(/refused|connect/i) });
    });
    expect((await admin("/admin/config")).body.data.retry_ms).toEqual(RETRY_MS);
    expect((await admin("/admin/config", { retry_ms: [-1] })).status).toBe(400);
    expect((await admin("/admin/config", { webhook_url: "nowhere" })).status).toBe(400);
  });

  it("replays the last event's exact bytes, concurrently when asked; 404 when none was sent", async () => {
    const t = await paidTx();
    const r = await admin("/admin/replay", { reference: t.reference, times: 5, concurrent: true });
    expect(r.body.data.deliveries.map((d: Json) => d.status_code)).toEqual([200, 200, 200, 200, 200]);
    const seq = await admin("/admin/replay", { reference: t.reference, times: 2 });
    expect(seq.body.data.deliveries).toHaveLength(2);
    const hooks = receiver.forRef(t.reference, "charge.success");
    expect(hooks).toHaveLength(8);
    expect(new Set(hooks.map((h) => `${h.raw}|${h.signature}`)).size).toBe(1);
    expect((await admin("/admin/replay", { reference: t.reference, event: "refund.processed" })).status).toBe(404);
    expect((await admin("/admin/replay", { reference: t.reference, times: 0 })).status).toBe(400);
  });

  it("sends a hand-made event, signed, found by the reference in its data", async () => {
    const data = { id: 9, status: "escalated", transaction: { reference: newRef("sent") } };
    const r = await admin("/admin/send", { event: "charge.dispute.escalate", data });
    expect(r.body.data).toMatchObject({ reference: data.transaction.reference, deliveries: [{ status_code: 200 }] });
    const [hook] = receiver.forRef(data.transaction.reference);
    expect(hook.raw).toBe(JSON.stringify({ event: "charge.dispute.escalate", data }));
    expect(hook.signature).toBe(hmac(hook.raw));
    expect((await admin("/admin/send", { data })).status).toBe(400);
  });
});

describe("refunds", () => {
  it("full refund: queued, then refund.pending and refund.processed; verify shows reversed", async () => {
    const t = await paidTx();
    const v = (await verify(t.reference)).body.data;
    const r = await api("/refund", { body: { transaction: t.reference } });
    expect(r.body).toMatchObject({
      status: true,
      message: "Refund has been queued for processing",
      data: { status: "pending", amount: 500, currency: "USD", transaction: { id: v.id, reference: t.reference } },
    });
    const processed = await until(() => receiver.forRef(t.reference, "refund.processed")[0], "refund.processed");
    expect(processed.signature).toBe(hmac(processed.raw));
    expect(processed.data).toMatchObject({ status: "processed", amount: 500, currency: "USD", id: r.body.data.id });
    expect(processed.data.refund_reference).toMatch(/^RFD_/);
    expect(receiver.forRef(t.reference, "refund.pending").map((h) => h.data.id)).toEqual([r.body.data.id]);
    expect((await verify(t.reference)).body.data.status).toBe("reversed");
    expect((await api("/refund", { body: { transaction: t.reference } })).status).toBe(400);
  });

  it("partial refunds by transaction id; over-refund, unpaid and unknown are refused", async () => {
    const t = await paidTx({ amount: 2000 });
    const id = (await verify(t.reference)).body.data.id;
    expect((await api("/refund", { body: { transaction: id, amount: 500 } })).body.data.amount).toBe(500);
    const over = await api("/refund", { body: { transaction: t.reference, amount: 1501 } });
    expect([over.status, over.body.status]).toEqual([400, false]);
    await until(() => receiver.forRef(t.reference, "refund.processed").length === 1, "partial processed");
    expect((await verify(t.reference)).body.data.status).toBe("success");
    expect((await api("/refund", { body: { transaction: t.reference, amount: 1500 } })).status).toBe(200);
    const unpaid = await init();
    expect((await api("/refund", { body: { transaction: unpaid.reference } })).status).toBe(400);
    expect((await api("/refund", { body: { transaction: "nope" } })).status).toBe(404);
  });

  it("lists a transaction's refunds (GET /refund) with Paystack's shapes, newest first, in pages", async () => {
    const t = await paidTx({ amount: 2000 });
    const other = await paidTx({ amount: 1000 });
    const id = (await verify(t.reference)).body.data.id;
    const made = [];
    for (const amount of [300, 700]) {
      made.push((await api("/refund", { body: { transaction: t.reference, amount } })).body.data);
    }
    await api("/refund", { body: { transaction: other.reference, amount: 100 } });
    await until(() => receiver.forRef(t.reference, "refund.processed").length === 2, "both refunds processed");
    const all = await api(`/refund?transaction=${id}`);
    expect(all.body).toMatchObject({
      status: true,
      message: "Refunds retrieved",
      meta: { total: 2, skipped: 0, perPage: 50, page: 1, pageCount: 1 },
    });
    expect(all.body.data.map((r: Json) => [r.id, r.amount])).toEqual([[made[1].id, 700], [made[0].id, 300]]);
    for (const r of all.body.data) {
      expect(Object.keys(r).sort()).toEqual([
        "amount",
        "channel",
        "created_at",
        "currency",
        "customer_note",
        "deducted_amount",
        "dispute",
        "domain",
        "expected_at",
        "fully_deducted",
        "id",
        "integration",
        "merchant_note",
        "refunded_at",
        "refunded_by",
        "settlement",
        "status",
        "transaction",
        "transaction_reference",
        "updated_at",
      ]);
      expect(r).toMatchObject({
        transaction: id,
        transaction_reference: t.reference,
        currency: "USD",
        status: "processed",
      });
    }
    const page2 = await api(`/refund?transaction=${id}&perPage=1&page=2`);
    expect(page2.body.meta).toMatchObject({ total: 2, skipped: 1, perPage: 1, page: 2, pageCount: 2 });
    expect(page2.body.data.map((r: Json) => r.id)).toEqual([made[0].id]);
    expect((await api("/refund?transaction=1")).body).toMatchObject({ status: true, data: [], meta: { total: 0 } });
    expect((await api("/refund?perPage=0")).status).toBe(400);
  });
});

describe("disputes", () => {
  it("create, then resolve as merchant-accepted: signed events on the transaction; verify says reversed", async () => {
    const t = await paidTx();
    const v = (await verify(t.reference)).body.data;
    const created = await admin("/admin/dispute", { reference: t.reference, action: "create" });
    expect(created.body.data.deliveries).toEqual([
      { event: "charge.dispute.create", reference: t.reference, status_code: 200, error: null },
    ]);
    await admin("/admin/dispute", { reference: t.reference, action: "resolve", resolution: "merchant-accepted" });
    const hooks = receiver.forRef(t.reference).filter((h) => h.event.startsWith("charge.dispute."));
    expect(hooks.map((h) => h.event)).toEqual(["charge.dispute.create", "charge.dispute.resolve"]);
    for (const h of hooks) expect(h.signature).toBe(hmac(h.raw));
    expect(hooks[0].data).toMatchObject({
      id: created.body.data.dispute.id,
      refund_amount: 500,
      currency: "USD",
      status: "awaiting-merchant-feedback",
      resolution: null,
      transaction: { id: v.id, reference: t.reference, amount: 500, status: "success" },
    });
    expect(hooks[1].data).toMatchObject({ id: hooks[0].data.id, status: "resolved", resolution: "merchant-accepted" });
    expect((await verify(t.reference)).body.data.status).toBe("reversed");
    const again = await admin("/admin/dispute", { reference: t.reference, action: "resolve", resolution: "declined" });
    expect(again.status).toBe(400); // none open
  });

  it("a declined resolution keeps the payment; unpaid transactions and bad input are refused", async () => {
    const t = await paidTx();
    await admin("/admin/dispute", { reference: t.reference, action: "create" });
    expect((await admin("/admin/dispute", { reference: t.reference, action: "resolve", resolution: "won" })).status)
      .toBe(400);
    const r = await admin("/admin/dispute", { reference: t.reference, action: "resolve", resolution: "declined" });
    expect(r.body.data.dispute).toMatchObject({ status: "resolved", resolution: "declined" });
    expect((await verify(t.reference)).body.data.status).toBe("success");
    const unpaid = await init();
    expect((await admin("/admin/dispute", { reference: unpaid.reference, action: "create" })).status).toBe(400);
    expect((await admin("/admin/dispute", { reference: t.reference, action: "remind" })).status).toBe(400);
  });
});

describe("admin", () => {
  it("mutate changes what verify reports; an event already sent keeps its bytes", async () => {
    const t = await init({ amount: 500, currency: "USD" });
    const m = await admin("/admin/mutate", { reference: t.reference, amount: 499, currency: "NGN" });
    expect(m.body.data).toMatchObject({ amount: 499, currency: "NGN", requested_amount: 500 });
    await admin("/admin/pay", { reference: t.reference });
    expect(receiver.forRef(t.reference, "charge.success")[0].data).toMatchObject({ amount: 499, currency: "NGN" });

    const t2 = await paidTx();
    await admin("/admin/mutate", { reference: t2.reference, status: "failed", domain: "live" });
    expect((await verify(t2.reference)).body.data).toMatchObject({ status: "failed", domain: "live" });
    await admin("/admin/replay", { reference: t2.reference });
    expect(receiver.forRef(t2.reference, "charge.success").map((h) => h.data.status)).toEqual(["success", "success"]);
    expect((await admin("/admin/mutate", { reference: t2.reference, domain: "staging" })).status).toBe(400);
    expect((await admin("/admin/mutate", { reference: t2.reference, amount: "x" })).status).toBe(400);
  });

  it("pay without the page: webhook false sends nothing; the transaction view adds channels and refunds", async () => {
    const t = await init({ channels: ["card"] });
    const r = await admin("/admin/pay", { reference: t.reference, webhook: false });
    expect(r.body.data).toEqual({
      reference: t.reference,
      status: "success",
      gateway_response: "Successful",
      deliveries: [],
    });
    await api("/refund", { body: { transaction: t.reference, amount: 100 } });
    const tx = (await admin(`/admin/transactions/${t.reference}`)).body.data;
    expect(tx).toMatchObject({ ...(await verify(t.reference)).body.data, channels: ["card"] });
    expect(tx.refunds).toEqual([expect.objectContaining({ amount: 100, currency: "USD" })]);
    const declined = await init();
    const d = await admin("/admin/pay", { reference: declined.reference, card: "declined" });
    expect(d.body.data).toMatchObject({ status: "failed", gateway_response: "Declined", deliveries: [] });
    await laterPaymentDelivered();
    expect(receiver.forRef(declined.reference)).toEqual([]);
    expect(receiver.forRef(t.reference, "charge.success")).toEqual([]);
    expect((await admin("/admin/transactions/none")).status).toBe(404);
    expect((await admin("/admin/nothing", {})).status).toBe(404);
    expect((await admin("/admin/pay", { reference: "none" })).status).toBe(404);
  });

  it("requires the secret key", async () => {
    const r = await call(ADMIN, "/admin/config", { headers: { authorization: "Bearer wrong" } });
    expect(r).toEqual({ status: 401, body: { status: false, message: "Invalid key" } });
  });

  it("down refuses API connections while webhooks still flow; up reopens the API with state kept", async () => {
    const t = await init();
    await withConfig({ down: true }, async () => {
      expect((await admin("/admin/config")).body.data.down).toBe(true);
      const cause = await fetch(`${API}/transaction/verify/${t.reference}`).catch((e) => e.cause?.code);
      expect(cause).toBe("ECONNREFUSED");
      const sent = await admin("/admin/send", { event: "charge.success", data: { reference: newRef("outage") } });
      expect(sent.body.data.deliveries[0].status_code).toBe(200);
    });
    expect((await admin("/admin/config")).body.data.down).toBe(false);
    expect((await verify(t.reference)).body.data.reference).toBe(t.reference);
  });
});

describe("currencies and channels", () => {
  // Paystack's minimum charge per currency, in subunits (x100 for every currency; README for sources).
  const MINIMUM: Record<string, number> = {
    NGN: 5000,
    USD: 200,
    GHS: 10,
    KES: 300,
    ZAR: 100,
    XOF: 100,
    EGP: 1,
    RWF: 100,
  };

  it("takes each of the eight currencies from its minimum, in subunits, and refuses below it", async () => {
    for (const [currency, min] of Object.entries(MINIMUM)) {
      const t = await init({ currency, amount: min });
      const v = (await verify(t.reference)).body.data;
      expect([v.currency, v.amount, v.requested_amount], currency).toEqual([currency, min, min]);
      if (min > 1) await refused({ amount: min - 1, currency }, /^Invalid Amount Sent/);
    }
    const lower = await init({ currency: "ghs", amount: 10 }); // codes are case-insensitive, as on Paystack
    expect((await verify(lower.reference)).body.data.currency).toBe("GHS");
  });

  it("XOF and RWF amounts must be whole units (x100); others may carry subunits", async () => {
    for (const currency of ["XOF", "RWF"]) {
      await refused({ amount: 150, currency }, /whole/);
      await init({ currency, amount: 5000 });
    }
    await init({ currency: "KES", amount: 301 });
  });

  it("passes channels on and refuses unknown ones like Paystack (400, nothing created)", async () => {
    const t = await init({ currency: "GHS", amount: 1000, channels: ["card", "mobile_money"] });
    const tx = (await admin(`/admin/transactions/${t.reference}`)).body.data;
    expect(tx.channels).toEqual(["card", "mobile_money"]);
    for (const channels of [["card", "apple_pay"], "card", [1]]) await refused({ channels }, /Invalid channels/);
    // A channel the checkout did not offer cannot be used to pay it.
    expect((await admin("/admin/pay", { reference: t.reference, channel: "ussd" })).status).toBe(400);
    expect((await verify(t.reference)).body.data.status).toBe("abandoned");
  });

  it.each(["bank", "ussd", "bank_transfer", "qr"])(
    "%s completes at once and verify and charge.success report the channel",
    async (channel) => {
      const t = await init({ currency: "NGN", amount: 500000 });
      const r = await admin("/admin/pay", { reference: t.reference, channel });
      expect(r.body.data).toMatchObject({
        status: "success",
        deliveries: [{ event: "charge.success", status_code: 200 }],
      });
      const v = (await verify(t.reference)).body.data;
      expect(v).toMatchObject({ status: "success", channel, currency: "NGN", amount: 500000 });
      expect(v.authorization.channel).toBe(channel);
      const [hook] = receiver.forRef(t.reference, "charge.success");
      expect(hook.data).toMatchObject({ channel, status: "success" });
    },
  );
});

describe("mobile money", () => {
  async function pending(over: Record<string, unknown> = {}, pay: Record<string, unknown> = {}) {
    const t = await init({ currency: "GHS", amount: 2500, channels: ["mobile_money"], ...over });
    const r = await admin("/admin/pay", { reference: t.reference, channel: "mobile_money", ...pay });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.data).toMatchObject({ status: "pending", gateway_response: "Pending", deliveries: [] });
    return t;
  }

  it("is pending (verify says so) until /admin/complete, then success and one charge.success", async () => {
    const t = await pending();
    const v = (await verify(t.reference)).body.data;
    expect(v).toMatchObject({ status: "pending", gateway_response: "Pending", channel: "mobile_money", paid_at: null });
    expect((await admin("/admin/pay", { reference: t.reference, channel: "mobile_money" })).status).toBe(400);
    const done = await admin("/admin/complete", { reference: t.reference });
    expect(done.body.data).toMatchObject({
      status: "success",
      deliveries: [{ event: "charge.success", reference: t.reference, status_code: 200 }],
    });
    const after = (await verify(t.reference)).body.data;
    expect(after).toMatchObject({ status: "success", channel: "mobile_money", currency: "GHS", amount: 2500 });
    expect(Date.parse(after.paid_at)).not.toBeNaN();
    const hooks = receiver.forRef(t.reference, "charge.success");
    expect(hooks).toHaveLength(1);
    expect(hooks[0].signature).toBe(hmac(hooks[0].raw));
    expect(hooks[0].data).toEqual(after);
    expect((await admin("/admin/complete", { reference: t.reference })).status).toBe(400);
  });

  it("completes by itself after complete_after_ms", async () => {
    const t = await pending({}, { complete_after_ms: 150 });
    const hook = await until(() => receiver.forRef(t.reference, "charge.success")[0], "charge.success");
    expect(hook.data).toMatchObject({ status: "success", channel: "mobile_money" });
    expect((await verify(t.reference)).body.data.status).toBe("success");
  });

  it("abandoned: verify says abandoned, no charge.success ever, and it cannot be completed", async () => {
    const t = await pending({}, { complete_after_ms: 100 });
    const a = await admin("/admin/abandon", { reference: t.reference });
    expect(a.body.data).toMatchObject({ status: "abandoned", deliveries: [] });
    expect((await verify(t.reference)).body.data).toMatchObject({ status: "abandoned", paid_at: null });
    expect((await admin("/admin/complete", { reference: t.reference })).status).toBe(400);
    // The proving event: a payment scheduled to complete later than the abandoned one has completed.
    const later = await pending({}, { complete_after_ms: 400 });
    await until(() => receiver.forRef(later.reference, "charge.success").length === 1, "the later payment");
    expect(receiver.forRef(t.reference)).toEqual([]);
    expect((await admin(`/admin/deliveries?reference=${t.reference}`)).body.data).toEqual([]);
    expect((await verify(t.reference)).body.data.status).toBe("abandoned");
  });

  it("refunds in the charged currency, partially in subunits", async () => {
    const t = await pending({ currency: "KES", amount: 150000 });
    await admin("/admin/complete", { reference: t.reference });
    const r = await api("/refund", { body: { transaction: t.reference, amount: 50050 } });
    expect(r.body.data).toMatchObject({ status: "pending", amount: 50050, currency: "KES" });
    const processed = await until(() => receiver.forRef(t.reference, "refund.processed")[0], "refund.processed");
    expect(processed.data).toMatchObject({ amount: 50050, currency: "KES", transaction_reference: t.reference });
    const id = (await verify(t.reference)).body.data.id;
    const listed = (await api(`/refund?transaction=${id}`)).body.data;
    expect(listed).toEqual([expect.objectContaining({ amount: 50050, currency: "KES", channel: "mobile_money" })]);
    expect((await verify(t.reference)).body.data.status).toBe("success"); // partial: not reversed
    expect((await api("/refund", { body: { transaction: t.reference, amount: 99951 } })).status).toBe(400);
  });
});

describe("process", () => {
  it("exits cleanly on SIGTERM", async () => {
    emu.kill("SIGTERM");
    const deadline = new Promise((r) => setTimeout(() => r("still running after 5 s"), 5000));
    expect(await Promise.race([emuExit, deadline])).toBe(0);
  });
});
