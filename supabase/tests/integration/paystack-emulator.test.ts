// Integration tests for the Paystack emulator (stack/emulators/paystack).
// Spawns the emulator as a Deno subprocess and receives its webhooks on a node:http server.
//   npx vitest run supabase/tests/integration/paystack-emulator.test.ts

import { type ChildProcess, spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { signPaystackBody } from "../../../stack/emulators/paystack/webhooks.ts";

/** Parsed JSON from the emulator or a webhook body. */
// deno-lint-ignore no-explicit-any
type Json = any;

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
// Ports in this stack's own range (its Paystack emulator's + 150), so parallel stacks never collide.
const API_PORT = Number(process.env.STACK_PAYSTACK_PORT ?? 54430) + 150;
const ADMIN_PORT = API_PORT + 1;
/** The webhook receiver takes any free port (set in beforeAll). */
let RECEIVER_PORT = 0;
const API = `http://127.0.0.1:${API_PORT}`;
const ADMIN = `http://127.0.0.1:${ADMIN_PORT}`;
const SECRET = "sk_test_emulator_secret";
const AUTH = { authorization: `Bearer ${SECRET}` };

const VECTOR_BODY =
  '{"event":"charge.success","data":{"id":1,"reference":"ref_1","amount":500,"currency":"USD","status":"success"}}';
const VECTOR_SIG =
  "935dc8661ef66f058c604c7c1a4ade2ef50fbfa2c7697ab8456f4e410c58c57a60d13753b47f0fdd5715ecf64f8f36c7225d2b90b1d372620795781a2f6c7c25";

const CARDS = {
  success: { card: "4084 0840 8408 4081", cvv: "408" },
  declined: { card: "4084 0800 0000 5408", cvv: "001" },
  insufficient: { card: "4084 0800 0067 0037", cvv: "787" },
  refundFails: { card: "4084 0800 0067 1803", cvv: "180" },
};
const EXPIRY = "12/39";

// ---------------------------------------------------------------------------------------------
// Webhook receiver

interface Received {
  raw: string;
  signature: string | undefined;
  contentType: string | undefined;
  event: string;
  data: Record<string, Json>;
  answered: number;
}

class Receiver {
  received: Received[] = [];
  /** status codes to answer next, in order; 200 once exhausted (unless `always` is set) */
  plan: number[] = [];
  /** when set, only webhooks for this reference consume the plan (a late delivery from an earlier test must not) */
  planRef: string | null = null;
  always: number | null = null;
  server!: http.Server;

  async start(port: number) {
    this.server = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const raw = Buffer.concat(chunks).toString("utf8");
        let parsed: Json = {};
        try {
          parsed = JSON.parse(raw);
        } catch { /* recorded as is */ }
        const mine = this.planRef === null || parsed.data?.reference === this.planRef;
        const status = this.always ?? (mine ? this.plan.shift() : undefined) ?? 200;
        this.received.push({
          raw,
          signature: req.headers["x-paystack-signature"] as string | undefined,
          contentType: req.headers["content-type"],
          event: parsed.event,
          data: parsed.data ?? {},
          answered: status,
        });
        res.writeHead(status, { "content-type": "text/plain" });
        res.end(status === 200 ? "ok" : "nope");
      });
    });
    await new Promise<void>((resolve) =>
      this.server.listen(port, "127.0.0.1", resolve)
    );
    return (this.server.address() as AddressInfo).port;
  }

  reset() {
    this.received = [];
    this.plan = [];
    this.planRef = null;
    this.always = null;
  }

  forRef(reference: string, event?: string) {
    return this.received.filter((r) =>
      (r.data.reference === reference ||
        r.data.transaction_reference === reference ||
        r.data.transaction?.reference === reference) &&
      (!event || r.event === event)
    );
  }

  async stop() {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers

function hmac(body: string, key = SECRET) {
  return createHmac("sha512", key).update(Buffer.from(body, "utf8")).digest(
    "hex",
  );
}

async function until<T>(
  fn: () => T | Promise<T>,
  what: string,
  timeoutMs = 8000,
): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function call(
  base: string,
  path: string,
  init: { method?: string; body?: unknown; headers?: Record<string, string> } =
    {},
) {
  const res = await fetch(base + path, {
    method: init.method ?? (init.body === undefined ? "GET" : "POST"),
    headers: { ...AUTH, "content-type": "application/json", ...init.headers },
    body: init.body === undefined ? undefined : JSON.stringify(init.body),
  });
  const text = await res.text();
  let body: Json = text;
  try {
    body = JSON.parse(text);
  } catch { /* not JSON */ }
  return { status: res.status, body, headers: res.headers };
}
const api = (path: string, init?: Parameters<typeof call>[2]) =>
  call(API, path, init);
const admin = (path: string, body?: unknown) => call(ADMIN, path, { body });

let refCounter = 0;
function newRef(prefix = "t") {
  return `${prefix}-${Date.now().toString(36)}-${++refCounter}`;
}

async function init(over: Record<string, unknown> = {}) {
  const reference = (over.reference as string) ?? newRef();
  const r = await api("/transaction/initialize", {
    body: {
      email: "buyer@example.com",
      amount: 500,
      currency: "USD",
      reference,
      ...over,
    },
  });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.data as {
    authorization_url: string;
    access_code: string;
    reference: string;
  };
}

async function payJson(
  accessCode: string,
  card: { card: string; cvv: string },
  expiry = EXPIRY,
) {
  const res = await fetch(`${API}/checkout/${accessCode}/pay`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ card: card.card, cvv: card.cvv, expiry }),
  });
  return { status: res.status, body: await res.json() as Json };
}

async function verify(reference: string) {
  return await api(`/transaction/verify/${encodeURIComponent(reference)}`);
}

async function deliveries(reference: string, event?: string) {
  const q = new URLSearchParams({ reference, ...(event ? { event } : {}) });
  const r = await admin(`/admin/deliveries?${q}`);
  expect(r.status).toBe(200);
  return r.body.data as Json[];
}

/** Initialise and pay with the success card through the admin API (first webhook attempt awaited). */
async function paidTx(over: Record<string, unknown> = {}, card = "success") {
  const t = await init(over);
  const r = await admin("/admin/pay", { reference: t.reference, card });
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  expect(r.body.data.status).toBe("success");
  return t;
}

// ---------------------------------------------------------------------------------------------
// Lifecycle

const receiver = new Receiver();
let emu: ChildProcess;
let emuOutput = "";
let emuExit: Promise<number | null>;

beforeAll(async () => {
  RECEIVER_PORT = await receiver.start(0);
  emu = spawn(`${ROOT}node_modules/.bin/deno`, [
    "run",
    "-A",
    "stack/emulators/paystack/main.ts",
  ], {
    cwd: ROOT,
    env: {
      ...process.env,
      PAYSTACK_EMULATOR_PORT: String(API_PORT),
      PAYSTACK_EMULATOR_ADMIN_PORT: String(ADMIN_PORT),
      PAYSTACK_SECRET_KEY: SECRET,
      PAYSTACK_WEBHOOK_URL:
        `http://127.0.0.1:${RECEIVER_PORT}/functions/v1/paystack-webhook`,
      PAYSTACK_WEBHOOK_RETRY_MS: "100,200",
      NO_COLOR: "1",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  emuExit = new Promise((resolve) => emu.on("exit", (code) => resolve(code)));
  emu.stdout!.on("data", (c) => (emuOutput += c));
  emu.stderr!.on("data", (c) => (emuOutput += c));
  await until(
    () => emuOutput.includes("listening on"),
    "emulator to start",
    25_000,
  ).catch((e) => {
    throw new Error(`${e.message}\n${emuOutput}`);
  });
});

afterAll(async () => {
  if (emu && emu.exitCode === null) {
    emu.kill("SIGTERM");
    await Promise.race([emuExit, sleep(5000)]);
    if (emu.exitCode === null) emu.kill("SIGKILL");
  }
  await receiver.stop();
});

beforeEach(async () => {
  const r = await admin("/admin/reset", {});
  expect(r.status).toBe(200);
  receiver.reset();
});

// ---------------------------------------------------------------------------------------------

describe("webhook signature", () => {
  it("reproduces the reference test vector", async () => {
    expect(Buffer.byteLength(VECTOR_BODY)).toBe(111);
    expect(await signPaystackBody(SECRET, VECTOR_BODY)).toBe(VECTOR_SIG);
    expect(
      await signPaystackBody(SECRET, new TextEncoder().encode(VECTOR_BODY)),
    ).toBe(VECTOR_SIG);
    expect(hmac(VECTOR_BODY)).toBe(VECTOR_SIG);
  });

  it("sends a raw body byte for byte with the vector signature", async () => {
    const r = await admin("/admin/send", { body: VECTOR_BODY });
    expect(r.status).toBe(200);
    expect(r.body.data.deliveries).toEqual([
      expect.objectContaining({
        event: "charge.success",
        reference: "ref_1",
        status_code: 200,
        error: null,
      }),
    ]);
    expect(receiver.received).toHaveLength(1);
    const got = receiver.received[0];
    expect(got.raw).toBe(VECTOR_BODY);
    expect(got.signature).toBe(VECTOR_SIG);
    expect(got.contentType).toMatch(/^application\/json/);
  });

  it("forges signatures on request: wrong key, no header, literal value", async () => {
    const data = {
      id: 9,
      reference: "forged-1",
      amount: 500,
      currency: "USD",
      status: "success",
    };
    const wrong = await admin("/admin/send", {
      event: "charge.success",
      data,
      sign: "wrong",
    });
    const none = await admin("/admin/send", {
      event: "charge.success",
      data,
      sign: false,
    });
    const literal = await admin("/admin/send", {
      event: "charge.success",
      data,
      sign: "abc",
    });
    const good = await admin("/admin/send", { event: "charge.success", data });
    for (const r of [wrong, none, literal, good]) {
      expect(r.body.data.deliveries[0].status_code).toBe(200);
    }
    const [w, n, l, g] = receiver.received;
    const expected = hmac(JSON.stringify({ event: "charge.success", data }));
    expect(g.raw).toBe(JSON.stringify({ event: "charge.success", data }));
    expect(g.signature).toBe(expected);
    expect(w.signature).toMatch(/^[0-9a-f]{128}$/);
    expect(w.signature).not.toBe(expected);
    expect(n.signature).toBeUndefined();
    expect(l.signature).toBe("abc");
  });
});

describe("POST /transaction/initialize", () => {
  it("returns the authorization URL, access code and reference", async () => {
    const reference = newRef("init");
    const r = await api("/transaction/initialize", {
      body: {
        email: "a@example.com",
        amount: 1500,
        currency: "USD",
        reference,
        metadata: { user_id: "u1" },
      },
    });
    expect(r.status).toBe(200);
    expect(r.body.status).toBe(true);
    expect(r.body.message).toBe("Authorization URL created");
    expect(r.body.data.reference).toBe(reference);
    expect(r.body.data.access_code).toMatch(/^[a-z0-9]+$/);
    expect(r.body.data.authorization_url).toBe(
      `${API}/checkout/${r.body.data.access_code}`,
    );
    const v = await verify(reference);
    expect(v.body.data.metadata).toEqual({ user_id: "u1" });
  });

  it("generates a reference when none is given and defaults the currency to NGN", async () => {
    const r = await api("/transaction/initialize", {
      body: { email: "a@example.com", amount: "50000" },
    });
    expect(r.status).toBe(200);
    expect(r.body.data.reference).toMatch(/^[A-Za-z0-9]+$/);
    const v = await verify(r.body.data.reference);
    expect(v.body.data.currency).toBe("NGN");
    expect(v.body.data.amount).toBe(50000);
    expect(v.body.data.metadata).toBe(""); // Paystack sends "" when no metadata was given
  });

  it("rejects a duplicate reference", async () => {
    const t = await init();
    const r = await api("/transaction/initialize", {
      body: {
        email: "b@example.com",
        amount: 500,
        currency: "USD",
        reference: t.reference,
      },
    });
    expect(r.status).toBe(400);
    expect(r.body).toEqual({
      status: false,
      message: "Duplicate Transaction Reference",
      type: "validation_error",
      code: "duplicate_reference",
    });
  });

  it("rejects a wrong or missing key", async () => {
    const body = { email: "a@example.com", amount: 500, currency: "USD" };
    const wrong = await api("/transaction/initialize", {
      body,
      headers: { authorization: "Bearer sk_test_nope" },
    });
    expect(wrong.status).toBe(401);
    expect(wrong.body).toEqual({ status: false, message: "Invalid key" });
    const res = await fetch(`${API}/transaction/initialize`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify(body),
    });
    expect(res.status).toBe(401);
    expect(await res.json()).toEqual({ status: false, message: "Invalid key" });
    const v = await api("/transaction/verify/x", {
      headers: { authorization: "Bearer sk_live_x" },
    });
    expect(v.status).toBe(401);
  });

  it("rejects an unsupported currency, bad references and bad amounts", async () => {
    const base = { email: "a@example.com", amount: 500 };
    const eur = await api("/transaction/initialize", {
      body: { ...base, currency: "EUR" },
    });
    expect(eur.status).toBe(400);
    expect(eur.body.status).toBe(false);
    expect(eur.body.message).toBe("Currency not supported by merchant");
    const badRef = await api("/transaction/initialize", {
      body: { ...base, currency: "USD", reference: "a b/c" },
    });
    expect(badRef.status).toBe(400);
    const okRef = await api("/transaction/initialize", {
      body: { ...base, currency: "USD", reference: newRef("A.b=C-9") },
    });
    expect(okRef.status).toBe(200);
    const belowMin = await api("/transaction/initialize", {
      body: { ...base, amount: 199, currency: "USD" },
    });
    expect(belowMin.status).toBe(400);
    const minimum = await api("/transaction/initialize", {
      body: { ...base, amount: 200, currency: "USD" },
    });
    expect(minimum.status).toBe(200);
    for (const amount of [0, -5, 5.5, "5.00", "abc"]) {
      const r = await api("/transaction/initialize", {
        body: { ...base, amount, currency: "USD" },
      });
      expect(r.status, String(amount)).toBe(400);
      expect(r.body.status).toBe(false);
    }
    const noEmail = await api("/transaction/initialize", {
      body: { amount: 500, currency: "USD" },
    });
    expect(noEmail.status).toBe(400);
  });
});

describe("GET /transaction/verify/:reference", () => {
  it("answers 404 for an unknown reference", async () => {
    const r = await verify("does-not-exist");
    expect(r.status).toBe(404);
    expect(r.body).toEqual({
      status: false,
      message: "Transaction reference not found",
    });
  });

  it("shows abandoned before payment and success with details after", async () => {
    const t = await init({ amount: 500, currency: "USD" });
    const before = await verify(t.reference);
    expect(before.status).toBe(200);
    expect(before.body.status).toBe(true);
    expect(before.body.message).toBe("Verification successful");
    const d0 = before.body.data;
    expect(Number.isInteger(d0.id)).toBe(true);
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
    expect(typeof d0.customer.id).toBe("number");

    const pay = await payJson(t.access_code, CARDS.success);
    expect(pay).toEqual({
      status: 200,
      body: {
        status: "success",
        reference: t.reference,
        message: "Successful",
        gateway_response: "Successful",
      },
    });
    const after = (await verify(t.reference)).body.data;
    expect(after.id).toBe(d0.id);
    expect(after.status).toBe("success");
    expect(after.gateway_response).toBe("Successful");
    expect(Date.parse(after.paid_at)).not.toBeNaN();
    expect(after.paidAt).toBe(after.paid_at);
    expect(after.fees).toBe(20); // 3.9% of 5.00 USD
    expect(after.authorization).toMatchObject({
      last4: "4081",
      bin: "408408",
      reusable: true,
      channel: "card",
    });
    expect(after.authorization.authorization_code).toMatch(/^AUTH_/);
    expect(after.customer.id).toBe(d0.customer.id);
  });
});

describe("checkout", () => {
  it("serves an accessible card form showing amount and email", async () => {
    const t = await init({ amount: 1500, email: "page@example.com" });
    const res = await fetch(t.authorization_url);
    expect(res.status).toBe(200);
    expect(res.headers.get("content-type")).toMatch(/text\/html/);
    const html = await res.text();
    expect(html).toContain('<html lang="en">');
    expect(html).toContain("USD 15.00");
    expect(html).toContain("page@example.com");
    expect(html).toContain(`action="/checkout/${t.access_code}/pay"`);
    for (const id of ["card", "expiry", "cvv"]) {
      expect(html).toMatch(new RegExp(`<label for="${id}">`));
      expect(html).toMatch(new RegExp(`<input id="${id}" name="${id}"`));
    }
    expect(html).toMatch(/<button type="submit">Pay USD 15\.00<\/button>/);
    const missing = await fetch(`${API}/checkout/nope`);
    expect(missing.status).toBe(404);
  });

  it("success card: charge.success webhook with a valid signature over the raw body", async () => {
    const t = await init({ metadata: { user_id: "u-42", plan: "starter" } });
    const pay = await payJson(t.access_code, CARDS.success);
    expect(pay.body.status).toBe("success");
    const [hook] = await until(() => {
      const got = receiver.forRef(t.reference, "charge.success");
      return got.length ? got : null;
    }, "charge.success");
    expect(hook.signature).toBe(hmac(hook.raw));
    expect(hook.signature).not.toBe(hmac(hook.raw, "sk_test_other"));
    const v = (await verify(t.reference)).body.data;
    expect(JSON.parse(hook.raw)).toEqual({ event: "charge.success", data: v });
    expect(hook.data).toMatchObject({
      id: v.id,
      status: "success",
      reference: t.reference,
      amount: 500,
      currency: "USD",
      domain: "test",
      metadata: { user_id: "u-42", plan: "starter" },
    });
    const ds = await until(async () => {
      const d = await deliveries(t.reference);
      return d.length === 1 && d[0].status === "delivered" ? d : null;
    }, "delivery recorded");
    expect(ds[0].attempts).toEqual([
      expect.objectContaining({ attempt: 1, status_code: 200, error: null }),
    ]);
    expect(ds[0].signature).toBe(hook.signature);
    expect(ds[0].body).toBe(hook.raw);
  });

  it("refund-fails card also charges successfully", async () => {
    const t = await init();
    const pay = await payJson(t.access_code, CARDS.refundFails);
    expect(pay.body.status).toBe("success");
    await until(
      () => receiver.forRef(t.reference, "charge.success").length === 1,
      "charge.success",
    );
    expect((await verify(t.reference)).body.data.authorization.last4).toBe(
      "1803",
    );
  });

  it.each([
    ["declined", CARDS.declined, "Declined"],
    ["insufficient funds", CARDS.insufficient, "Insufficient Funds"],
    ["wrong CVV", { card: CARDS.success.card, cvv: "123" }, "Declined"],
  ])(
    "%s card: failed, reason given, no webhook",
    async (_name, card, reason) => {
      const t = await init();
      const pay = await payJson(t.access_code, card);
      expect(pay.status).toBe(200);
      expect(pay.body).toMatchObject({
        status: "failed",
        reference: t.reference,
        message: reason,
      });
      const v = (await verify(t.reference)).body.data;
      expect(v.status).toBe("failed");
      expect(v.gateway_response).toBe(reason);
      expect(v.paid_at).toBeNull();
      await sleep(300);
      expect(receiver.received).toHaveLength(0);
      expect(await deliveries(t.reference)).toEqual([]);
    },
  );

  it("lets the customer retry after a failure, and refuses to charge twice", async () => {
    const t = await init();
    expect((await payJson(t.access_code, CARDS.insufficient)).body.status).toBe(
      "failed",
    );
    expect((await payJson(t.access_code, CARDS.success)).body.status).toBe(
      "success",
    );
    const again = await payJson(t.access_code, CARDS.success);
    expect(again.status).toBe(400);
    expect(again.body.status).toBe("error");
    await until(() => receiver.forRef(t.reference).length === 1, "one webhook");
    await sleep(200);
    expect(receiver.forRef(t.reference)).toHaveLength(1);
    expect((await verify(t.reference)).body.data.status).toBe("success");
  });

  it("rejects a past expiry as a failed charge and malformed input with 400", async () => {
    const t = await init();
    const expired = await payJson(t.access_code, CARDS.success, "01/20");
    expect(expired.body).toMatchObject({
      status: "failed",
      message: "Expired Card",
    });
    const bad = await payJson(t.access_code, { card: "12", cvv: "408" });
    expect(bad.status).toBe(400);
    expect(bad.body.status).toBe("error");
  });

  it("form post redirects to callback_url with trxref and reference", async () => {
    const t = await init({
      callback_url: "http://127.0.0.1:54399/pay/done?plan=starter",
    });
    const res = await fetch(`${API}/checkout/${t.access_code}/pay`, {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({
        card: CARDS.success.card,
        cvv: "408",
        expiry: EXPIRY,
      }).toString(),
      redirect: "manual",
    });
    expect(res.status).toBe(303);
    const loc = new URL(res.headers.get("location")!);
    expect(loc.origin + loc.pathname).toBe("http://127.0.0.1:54399/pay/done");
    expect(loc.searchParams.get("plan")).toBe("starter");
    expect(loc.searchParams.get("trxref")).toBe(t.reference);
    expect(loc.searchParams.get("reference")).toBe(t.reference);
    await until(
      () => receiver.forRef(t.reference, "charge.success").length === 1,
      "charge.success",
    );
  });

  it("form post without callback_url shows a result page; a declined card re-shows the form", async () => {
    const t = await init();
    const post = (card: { card: string; cvv: string }) =>
      fetch(`${API}/checkout/${t.access_code}/pay`, {
        method: "POST",
        headers: { "content-type": "application/x-www-form-urlencoded" },
        body: new URLSearchParams({ ...card, expiry: EXPIRY }).toString(),
        redirect: "manual",
      });
    const declined = await post(CARDS.declined);
    const declinedHtml = await declined.text();
    expect(declinedHtml).toContain('role="alert"');
    expect(declinedHtml).toContain("Declined");
    expect(declinedHtml).toContain("<form");
    const ok = await post(CARDS.success);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain("Payment successful");
  });
});

describe("webhook delivery", () => {
  it("retries after a 500 and stops at the first 200", async () => {
    const t = await init();
    receiver.plan = [500];
    receiver.planRef = t.reference;
    const paid = await admin("/admin/pay", { reference: t.reference });
    expect(paid.body.data.deliveries).toEqual([
      expect.objectContaining({
        event: "charge.success",
        status_code: 500,
        error: "HTTP 500",
      }),
    ]);
    const [d] = await until(async () => {
      const ds = await deliveries(t.reference);
      return ds[0]?.status === "delivered" ? ds : null;
    }, "delivered after retry");
    expect(d.attempts.map((a: Json) => a.status_code)).toEqual([500, 200]);
    const hooks = receiver.forRef(t.reference);
    expect(hooks.map((h) => h.answered)).toEqual([500, 200]);
    expect(hooks[1].raw).toBe(hooks[0].raw);
    expect(hooks[1].signature).toBe(hooks[0].signature);
    expect(hooks[0].signature).toBe(hmac(hooks[0].raw));
  });

  it("gives up after the configured retries and records every attempt", async () => {
    receiver.always = 503;
    await admin("/admin/config", { retry_ms: [50, 50] });
    const t = await paidTx();
    const [d] = await until(async () => {
      const ds = await deliveries(t.reference);
      return ds[0]?.status === "failed" ? ds : null;
    }, "give up");
    expect(d.attempts.map((a: Json) => [a.attempt, a.status_code])).toEqual([
      [1, 503],
      [2, 503],
      [3, 503],
    ]);
    expect(d.next_attempt_at).toBeNull();
    await sleep(200);
    expect(receiver.forRef(t.reference)).toHaveLength(3);
  });

  it("treats any non-200 (even 201) as failure and records network errors", async () => {
    const t = await init();
    receiver.plan = [201];
    receiver.planRef = t.reference;
    const paid = await admin("/admin/pay", { reference: t.reference });
    expect(paid.body.data.deliveries[0].status_code).toBe(201);
    const [d1] = await until(async () => {
      const ds = await deliveries(t.reference);
      return ds[0]?.status === "delivered" ? ds : null;
    }, "retry delivered");
    expect(d1.attempts.map((a: Json) => a.status_code)).toEqual([201, 200]);
    expect(receiver.forRef(t.reference).map((h) => h.answered)).toEqual([
      201,
      200,
    ]);

    await admin("/admin/config", {
      webhook_url: "http://127.0.0.1:54398/nowhere",
      retry_ms: [],
    });
    const t2 = await init();
    const paid2 = await admin("/admin/pay", { reference: t2.reference });
    expect(paid2.body.data.deliveries[0].status_code).toBeNull();
    expect(paid2.body.data.deliveries[0].error).toMatch(/refused|connect/i);
    const [d] = await deliveries(t2.reference);
    expect(d.status).toBe("failed");
  });

  it("replays the same body and signature, concurrently when asked", async () => {
    const t = await paidTx();
    await until(
      () => receiver.forRef(t.reference).length === 1,
      "first delivery",
    );
    const r = await admin("/admin/replay", {
      reference: t.reference,
      times: 5,
      concurrent: true,
    });
    expect(r.status).toBe(200);
    expect(r.body.data.deliveries).toHaveLength(5);
    expect(r.body.data.deliveries.every((d: Json) => d.status_code === 200))
      .toBe(true);
    const hooks = receiver.forRef(t.reference, "charge.success");
    expect(hooks).toHaveLength(6);
    expect(new Set(hooks.map((h) => h.raw)).size).toBe(1);
    expect(new Set(hooks.map((h) => h.signature)).size).toBe(1);
    expect(hooks[0].signature).toBe(hmac(hooks[0].raw));
    const seq = await admin("/admin/replay", {
      reference: t.reference,
      times: 2,
    });
    expect(seq.body.data.deliveries.map((d: Json) => d.status_code)).toEqual([
      200,
      200,
    ]);
    const missing = await admin("/admin/replay", {
      reference: t.reference,
      event: "refund.processed",
    });
    expect(missing.status).toBe(404);
  });

  it("reorders charge.success events", async () => {
    const a = await init();
    const b = await init();
    for (const t of [a, b]) {
      const r = await admin("/admin/pay", {
        reference: t.reference,
        webhook: false,
      });
      expect(r.body.data.deliveries).toEqual([]);
    }
    expect(receiver.received).toHaveLength(0);
    const r = await admin("/admin/reorder", {
      references: [b.reference, a.reference],
    });
    expect(r.status).toBe(200);
    expect(
      r.body.data.deliveries.map((d: Json) => [d.reference, d.status_code]),
    )
      .toEqual([
        [b.reference, 200],
        [a.reference, 200],
      ]);
    expect(receiver.received.map((h) => h.data.reference)).toEqual([
      b.reference,
      a.reference,
    ]);
    const unpaid = await init();
    expect(
      (await admin("/admin/reorder", { references: [unpaid.reference] }))
        .status,
    ).toBe(400);
  });
});

describe("refunds", () => {
  it("full refund: queued response, then refund.pending and refund.processed; verify shows reversed", async () => {
    const t = await paidTx();
    const v = (await verify(t.reference)).body.data;
    const r = await api("/refund", { body: { transaction: t.reference } });
    expect(r.status).toBe(200);
    expect(r.body.status).toBe(true);
    expect(r.body.message).toBe("Refund has been queued for processing");
    expect(r.body.data).toMatchObject({
      status: "pending",
      amount: 500,
      currency: "USD",
      transaction: { id: v.id, reference: t.reference },
    });
    const processed = await until(
      () => receiver.forRef(t.reference, "refund.processed")[0],
      "refund.processed",
    );
    expect(processed.signature).toBe(hmac(processed.raw));
    expect(processed.data).toMatchObject({
      status: "processed",
      transaction_reference: t.reference,
      amount: 500,
      currency: "USD",
      id: r.body.data.id,
    });
    expect(processed.data.refund_reference).toMatch(/^RFD_/);
    const pending = receiver.forRef(t.reference, "refund.pending");
    expect(pending).toHaveLength(1);
    expect(pending[0].data).toMatchObject({
      status: "pending",
      id: r.body.data.id,
    });
    expect(receiver.forRef(t.reference, "refund.failed")).toHaveLength(0);
    expect((await verify(t.reference)).body.data.status).toBe("reversed");
  });

  it("partial refunds by transaction id; over-refund and unpaid refunds are rejected", async () => {
    const t = await paidTx({ amount: 2000 });
    const id = (await verify(t.reference)).body.data.id;
    const part = await api("/refund", {
      body: { transaction: id, amount: 500 },
    });
    expect(part.status).toBe(200);
    expect(part.body.data.amount).toBe(500);
    const over = await api("/refund", {
      body: { transaction: t.reference, amount: 1501 },
    });
    expect(over.status).toBe(400);
    expect(over.body.status).toBe(false);
    await until(
      () => receiver.forRef(t.reference, "refund.processed").length === 1,
      "partial processed",
    );
    expect((await verify(t.reference)).body.data.status).toBe("success");
    const rest = await api("/refund", {
      body: { transaction: t.reference, amount: 1500 },
    });
    expect(rest.status).toBe(200);

    const unpaid = await init();
    const r = await api("/refund", { body: { transaction: unpaid.reference } });
    expect(r.status).toBe(400);
    expect(r.body.status).toBe(false);
    const unknown = await api("/refund", { body: { transaction: "nope" } });
    expect(unknown.status).toBe(404);
  });

  it("lists a transaction's refunds (GET /refund) with Paystack's shapes, newest first, in pages", async () => {
    // https://paystack.com/docs/api/refund/#list: transaction (id), currency, from/to, perPage, page.
    const t = await paidTx({ amount: 2000 });
    const other = await paidTx({ amount: 1000 });
    const id = (await verify(t.reference)).body.data.id;
    const otherId = (await verify(other.reference)).body.data.id;
    const made = [];
    for (const amount of [300, 700]) made.push((await api("/refund", { body: { transaction: t.reference, amount } })).body.data);
    await api("/refund", { body: { transaction: other.reference, amount: 100 } });
    await until(() => receiver.forRef(t.reference, "refund.processed").length === 2, "both refunds processed");
    const all = await api(`/refund?transaction=${id}`);
    expect(all.status).toBe(200);
    expect(all.body).toMatchObject({ status: true, message: "Refunds retrieved", meta: { total: 2, skipped: 0, perPage: 50, page: 1, pageCount: 1 } });
    expect(all.body.data.map((r: Json) => r.id)).toEqual([made[1].id, made[0].id]);
    for (const r of all.body.data) {
      expect(Object.keys(r).sort()).toEqual([
        "amount", "channel", "created_at", "currency", "customer_note", "deducted_amount", "dispute", "domain", "expected_at",
        "fully_deducted", "id", "integration", "merchant_note", "refunded_at", "refunded_by", "settlement", "status",
        "transaction", "transaction_reference", "updated_at",
      ]);
      expect(r).toMatchObject({ transaction: id, transaction_reference: t.reference, currency: "USD", status: "processed", domain: "test" });
    }
    expect(all.body.data.map((r: Json) => r.amount)).toEqual([700, 300]);
    const page2 = await api(`/refund?transaction=${id}&perPage=1&page=2`);
    expect(page2.body.meta).toMatchObject({ total: 2, skipped: 1, perPage: 1, page: 2, pageCount: 2 });
    expect(page2.body.data.map((r: Json) => r.id)).toEqual([made[0].id]);
    expect((await api(`/refund?transaction=${otherId}`)).body.data.map((r: Json) => r.amount)).toEqual([100]);
    expect((await api("/refund")).body.meta.total).toBe(3); // no filter: every refund
    expect((await api(`/refund?transaction=${id}&currency=NGN`)).body.data).toEqual([]);
    expect((await api("/refund?transaction=1")).body).toMatchObject({ status: true, data: [], meta: { total: 0 } });
    expect((await api("/refund?perPage=0")).status).toBe(400);
    const noKey = await call(API, `/refund?transaction=${id}`, { headers: { authorization: "Bearer sk_test_wrong" } });
    expect(noKey.status).toBe(401);
  });

  it("refund-fails card: refund.failed instead of refund.processed", async () => {
    const t = await paidTx({}, "refund_fails");
    const r = await api("/refund", { body: { transaction: t.reference } });
    expect(r.status).toBe(200);
    const failed = await until(
      () => receiver.forRef(t.reference, "refund.failed")[0],
      "refund.failed",
    );
    expect(failed.data).toMatchObject({
      status: "failed",
      transaction_reference: t.reference,
      amount: 500,
    });
    expect(failed.signature).toBe(hmac(failed.raw));
    await sleep(300);
    expect(receiver.forRef(t.reference, "refund.processed")).toHaveLength(0);
    expect((await verify(t.reference)).body.data.status).toBe("success");
    const tx = await admin(`/admin/transactions/${t.reference}`);
    expect(tx.body.data.refundable).toBe(500);
  });

  it("admin refund-event sends any refund status, with a string amount when asked", async () => {
    const t = await paidTx();
    const pending = await admin("/admin/refund-event", {
      reference: t.reference,
      status: "pending",
      amount: "500",
    });
    expect(pending.status).toBe(200);
    expect(pending.body.data.deliveries[0]).toMatchObject({
      event: "refund.pending",
      status_code: 200,
    });
    const refundId = pending.body.data.refund.id;
    const na = await admin("/admin/refund-event", {
      reference: t.reference,
      status: "needs-attention",
      refund_id: refundId,
    });
    expect(na.body.data.deliveries[0].event).toBe("refund.needs-attention");
    const hooks = receiver.forRef(t.reference).filter((h) =>
      h.event.startsWith("refund.")
    );
    expect(hooks.map((h) => [h.event, h.data.status, h.data.id])).toEqual([
      ["refund.pending", "pending", refundId],
      ["refund.needs-attention", "needs-attention", refundId],
    ]);
    expect(hooks[0].data.amount).toBe("500");
    expect(hooks[1].data.amount).toBe(500);
    const bad = await admin("/admin/refund-event", {
      reference: t.reference,
      status: "done",
    });
    expect(bad.status).toBe(400);
  });
});

describe("disputes", () => {
  it("create, remind, resolve", async () => {
    const t = await paidTx();
    const v = (await verify(t.reference)).body.data;
    const created = await admin("/admin/dispute", {
      reference: t.reference,
      action: "create",
    });
    expect(created.status).toBe(200);
    expect(created.body.data.deliveries[0]).toMatchObject({
      event: "charge.dispute.create",
      status_code: 200,
    });
    const remind = await admin("/admin/dispute", {
      reference: t.reference,
      action: "remind",
    });
    expect(remind.body.data.deliveries[0].status_code).toBe(200);
    const resolved = await admin("/admin/dispute", {
      reference: t.reference,
      action: "resolve",
      resolution: "merchant-accepted",
    });
    expect(resolved.body.data.deliveries[0].status_code).toBe(200);

    const hooks = receiver.forRef(t.reference).filter((h) =>
      h.event.startsWith("charge.dispute.")
    );
    expect(hooks.map((h) => h.event)).toEqual([
      "charge.dispute.create",
      "charge.dispute.remind",
      "charge.dispute.resolve",
    ]);
    for (const h of hooks) expect(h.signature).toBe(hmac(h.raw));
    const id = hooks[0].data.id;
    expect(hooks[0].data).toMatchObject({
      refund_amount: 500,
      currency: "USD",
      status: "awaiting-merchant-feedback",
      resolution: null,
      transaction: {
        id: v.id,
        reference: t.reference,
        amount: 500,
        status: "success",
      },
    });
    expect(hooks[1].data).toMatchObject({ id, resolution: null });
    expect(hooks[2].data).toMatchObject({
      id,
      status: "resolved",
      resolution: "merchant-accepted",
    });
    expect((await verify(t.reference)).body.data.status).toBe("reversed");
    const again = await admin("/admin/dispute", {
      reference: t.reference,
      action: "resolve",
      resolution: "declined",
    });
    expect(again.status).toBe(400);
  });

  it("declined resolution keeps the payment; remind without a dispute is refused", async () => {
    const t = await paidTx();
    expect(
      (await admin("/admin/dispute", {
        reference: t.reference,
        action: "remind",
      })).status,
    ).toBe(400);
    await admin("/admin/dispute", {
      reference: t.reference,
      action: "create",
      refund_amount: 300,
    });
    const r = await admin("/admin/dispute", {
      reference: t.reference,
      action: "resolve",
      resolution: "declined",
    });
    expect(r.body.data.dispute).toMatchObject({
      status: "resolved",
      resolution: "declined",
      refund_amount: 300,
    });
    const last = receiver.forRef(t.reference, "charge.dispute.resolve")[0];
    expect(last.data.resolution).toBe("declined");
    expect((await verify(t.reference)).body.data.status).toBe("success");
    const unpaid = await init();
    expect(
      (await admin("/admin/dispute", {
        reference: unpaid.reference,
        action: "create",
      })).status,
    ).toBe(400);
  });
});

describe("admin", () => {
  it("mutate changes what verify and later webhooks report", async () => {
    const t = await init({ amount: 500, currency: "USD" });
    const m = await admin("/admin/mutate", {
      reference: t.reference,
      amount: 499,
      currency: "NGN",
    });
    expect(m.status).toBe(200);
    expect(m.body.data).toMatchObject({
      amount: 499,
      currency: "NGN",
      requested_amount: 500,
    });
    await admin("/admin/pay", { reference: t.reference });
    const hook = receiver.forRef(t.reference, "charge.success")[0];
    expect(hook.data).toMatchObject({
      amount: 499,
      currency: "NGN",
      requested_amount: 500,
    });

    const t2 = await paidTx();
    await admin("/admin/mutate", {
      reference: t2.reference,
      status: "failed",
      domain: "live",
    });
    const v2 = (await verify(t2.reference)).body.data;
    expect(v2).toMatchObject({ status: "failed", domain: "live" });
    // the webhook already sent still says success: replay re-sends that exact body
    await admin("/admin/replay", { reference: t2.reference });
    const hooks = receiver.forRef(t2.reference, "charge.success");
    expect(hooks).toHaveLength(2);
    expect(hooks[1].data.status).toBe("success");
    expect(
      (await admin("/admin/mutate", {
        reference: t2.reference,
        domain: "staging",
      })).status,
    ).toBe(400);
  });

  it("pay with the declined alias sends no webhook; transactions are inspectable", async () => {
    const t = await init();
    const r = await admin("/admin/pay", {
      reference: t.reference,
      card: "declined",
    });
    expect(r.body.data).toMatchObject({
      status: "failed",
      gateway_response: "Declined",
      deliveries: [],
    });
    const tx = await admin(`/admin/transactions/${t.reference}`);
    expect(tx.body.data).toMatchObject({
      reference: t.reference,
      status: "failed",
      access_code: t.access_code,
    });
    expect((await admin("/admin/transactions/none")).status).toBe(404);
  });

  it("requires the secret key", async () => {
    const r = await call(ADMIN, "/admin/deliveries", {
      headers: { authorization: "Bearer wrong" },
    });
    expect(r.status).toBe(401);
    expect(r.body).toEqual({ status: false, message: "Invalid key" });
  });

  it("down closes the API listener (connection refused); up reopens it with state kept", async () => {
    const t = await init();
    const down = await admin("/admin/config", { down: true });
    expect(down.body.data.down).toBe(true);
    await expect(
      fetch(`${API}/transaction/verify/${t.reference}`, { headers: AUTH }),
    ).rejects.toThrow();
    const cause = await fetch(`${API}/`, { headers: AUTH }).catch((e) =>
      e.cause?.code
    );
    expect(cause).toBe("ECONNREFUSED");
    // webhooks keep flowing while the API is down
    const sent = await admin("/admin/send", {
      event: "charge.success",
      data: { reference: "during-outage" },
    });
    expect(sent.body.data.deliveries[0].status_code).toBe(200);
    const up = await admin("/admin/config", { down: false });
    expect(up.body.data.down).toBe(false);
    const v = await verify(t.reference);
    expect(v.status).toBe(200);
    expect(v.body.data.reference).toBe(t.reference);
  });

  it("reset clears transactions and deliveries and restores the startup config", async () => {
    const t = await paidTx();
    await admin("/admin/config", {
      retry_ms: [1, 2, 3],
      webhook_url: "http://127.0.0.1:54398/x",
    });
    const r = await admin("/admin/reset", {});
    expect(r.body.data).toMatchObject({
      retry_ms: [100, 200],
      webhook_url:
        `http://127.0.0.1:${RECEIVER_PORT}/functions/v1/paystack-webhook`,
    });
    expect((await verify(t.reference)).status).toBe(404);
    expect(await deliveries(t.reference)).toEqual([]);
  });
});

describe("currencies and channels", () => {
  // Paystack's minimum charge per currency, in subunits (x100 for every currency; README for sources).
  const MINIMUM: Record<string, number> = {
    NGN: 5000, USD: 200, GHS: 10, KES: 300, ZAR: 100, XOF: 100, EGP: 1, RWF: 100,
  };

  it("takes each of the eight currencies from its minimum, in subunits, and refuses below it", async () => {
    for (const [currency, min] of Object.entries(MINIMUM)) {
      const t = await init({ currency, amount: min });
      const v = (await verify(t.reference)).body.data;
      expect([v.currency, v.amount, v.requested_amount], currency).toEqual([currency, min, min]);
      if (min > 1) {
        const below = await api("/transaction/initialize", {
          body: { email: "a@example.com", amount: min - 1, currency },
        });
        expect([below.status, below.body.status], currency).toEqual([400, false]);
        expect(below.body.message).toMatch(/^Invalid Amount Sent/);
      }
    }
    const lower = await init({ currency: "ghs", amount: 10 }); // codes are case-insensitive, as on Paystack
    expect((await verify(lower.reference)).body.data.currency).toBe("GHS");
  });

  it("XOF and RWF amounts must be whole units (x100); others may carry subunits", async () => {
    for (const currency of ["XOF", "RWF"]) {
      const r = await api("/transaction/initialize", {
        body: { email: "a@example.com", amount: 150, currency },
      });
      expect(r.status, currency).toBe(400);
      expect(r.body.message).toMatch(/whole/);
      await init({ currency, amount: 5000 });
    }
    await init({ currency: "KES", amount: 301 });
  });

  it("passes channels on and refuses unknown ones like Paystack (400, nothing created)", async () => {
    const t = await init({ currency: "GHS", amount: 1000, channels: ["card", "mobile_money"] });
    const tx = (await admin(`/admin/transactions/${t.reference}`)).body.data;
    expect(tx.channels).toEqual(["card", "mobile_money"]);
    for (const channels of [["card", "apple"], "card", [1]]) {
      const reference = newRef("chan");
      const r = await api("/transaction/initialize", {
        body: { email: "a@example.com", amount: 1000, currency: "GHS", reference, channels },
      });
      expect(r.status, JSON.stringify(channels)).toBe(400);
      expect(r.body.status).toBe(false);
      expect((await verify(reference)).status).toBe(404);
    }
    // A channel the checkout did not offer cannot be used to pay it.
    const refused = await admin("/admin/pay", { reference: t.reference, channel: "ussd" });
    expect(refused.status).toBe(400);
    expect((await verify(t.reference)).body.data.status).toBe("abandoned");
  });

  it.each(["bank", "ussd", "bank_transfer", "qr"])(
    "%s completes at once and verify and charge.success report the channel",
    async (channel) => {
      const t = await init({ currency: "NGN", amount: 500000 });
      const r = await admin("/admin/pay", { reference: t.reference, channel });
      expect(r.body.data).toMatchObject({ status: "success", deliveries: [{ event: "charge.success", status_code: 200 }] });
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
    const code = await Promise.race([
      emuExit,
      sleep(5000).then(() => "timeout"),
    ]);
    expect(code).toBe(0);
  });
});
