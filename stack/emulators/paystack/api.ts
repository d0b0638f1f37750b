// The API port: /transaction/initialize, /transaction/verify/:reference, /transaction/charge_authorization,
// /refund (create and list), and the hosted checkout (/checkout/:access_code, public).

import { checkoutPage, checkoutPay } from "./checkout.ts";
import type { EmulatorContext } from "./context.ts";
import { answer, fail, given, hasBearer, json, parseSubunits, PaystackError, readBody } from "./http.ts";
import { CHANNELS, chargeData, CURRENCIES, DEFAULT_CURRENCY, refundData, transactionData } from "./store.ts";

const validation = (message: string, code = "invalid_params") =>
  new PaystackError(400, message, { type: "validation_error", code });

export function makeApiHandler(ctx: EmulatorContext): (req: Request) => Promise<Response> {
  return (req) => answer("api", () => route(ctx, req));
}

async function route(ctx: EmulatorContext, req: Request): Promise<Response> {
  const url = new URL(req.url);
  const [first, second, third, ...rest] = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
  const at = (method: string, ...path: (string | undefined)[]) =>
    req.method === method && rest.length === 0 && [first, second, third].every((p, i) => p === path[i]);

  if (first === "checkout" && at("GET", "checkout", second)) return checkoutPage(ctx, second);
  if (first === "checkout" && at("POST", "checkout", second, "pay")) return await checkoutPay(ctx, second, req);
  if (!hasBearer(req, ctx.secretKey)) return fail(401, "Invalid key");
  if (at("POST", "transaction", "initialize")) return initialize(ctx, await readBody(req));
  if (second === "verify" && at("GET", "transaction", "verify", third)) {
    const tx = ctx.store.transactions.get(third);
    if (!tx) return fail(404, "Transaction reference not found");
    return json(200, { status: true, message: "Verification successful", data: transactionData(tx) });
  }
  if (at("POST", "transaction", "charge_authorization")) return chargeAuthorization(ctx, await readBody(req));
  if (at("POST", "refund")) return await refund(ctx, await readBody(req));
  if (at("GET", "refund")) return listRefunds(ctx, url.searchParams);
  return fail(404, `Route not found: ${req.method} ${url.pathname}`);
}

/** The fields initialize and charge_authorization share, validated as Paystack does. */
function paymentFields(body: Record<string, unknown>) {
  const email = typeof body.email === "string" ? body.email.trim() : "";
  if (!email) throw validation("Email is required");
  if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) throw validation("Invalid Email Address Passed");
  if (!given(body.amount)) throw validation("Amount is required");
  const amount = parseSubunits(body.amount);
  if (amount === null || amount <= 0) throw validation("Invalid Amount Sent");

  // Omitted: the account's default currency, as Paystack does.
  const currency = given(body.currency) ? String(body.currency).toUpperCase() : DEFAULT_CURRENCY;
  const rule = CURRENCIES[currency];
  if (!rule) throw validation("Currency not supported by merchant", "unsupported_currency");
  if (amount < rule.min) throw validation(`Invalid Amount Sent. Minimum amount is ${rule.min} ${currency} subunits`);
  if (rule.whole && amount % 100 !== 0) {
    throw validation(`Invalid Amount Sent. ${currency} amounts must be whole (a multiple of 100 subunits)`);
  }

  const reference = given(body.reference) ? String(body.reference) : null;
  if (reference !== null && !/^[A-Za-z0-9.=-]+$/.test(reference)) {
    throw validation("Only -, ., = and alphanumeric characters allowed in transaction reference");
  }
  let metadata = body.metadata;
  if (typeof metadata === "string" && metadata.trim().startsWith("{")) {
    try {
      metadata = JSON.parse(metadata); // Paystack accepts stringified JSON metadata
    } catch {
      throw validation("Invalid metadata: not valid JSON");
    }
  }
  return { email, amount, currency, reference, metadata };
}

function initialize(ctx: EmulatorContext, body: Record<string, unknown>): Response {
  const { email, amount, currency, reference, metadata } = paymentFields(body);
  const callback_url = given(body.callback_url) ? String(body.callback_url) : null;
  if (callback_url !== null && !/^https?:$/.test(URL.parse(callback_url)?.protocol ?? "")) {
    throw validation("Invalid callback_url");
  }
  let channels: string[] | null = null;
  if (given(body.channels)) {
    channels = Array.isArray(body.channels) ? body.channels.map(String) : [String(body.channels)];
    const bad = channels.filter((c) => !CHANNELS.includes(c));
    if (!Array.isArray(body.channels) || bad.length) throw validation(`Invalid channels: ${bad.join(", ")}`);
  }

  const tx = ctx.store.initialize({ email, amount, currency, reference, callback_url, metadata, channels });
  return json(200, {
    status: true,
    message: "Authorization URL created",
    data: {
      authorization_url: `${ctx.publicUrl}/checkout/${tx.access_code}`,
      access_code: tx.access_code,
      reference: tx.reference,
    },
  });
}

/** How long a pending charge of a saved card takes to succeed (the card's `recharge` is "pending"). */
const RECHARGE_PENDING_MS = 1500;

/**
 * POST /transaction/charge_authorization (https://paystack.com/docs/api/transaction/#charge-authorization):
 * `authorization_code`, `email`, `amount`, `currency`, `reference`, `metadata`. 200 "Charge attempted" with
 * the charge decided (success sends charge.success) or pending (it succeeds RECHARGE_PENDING_MS later, with
 * its charge.success); a refusal is a 400 and creates nothing.
 */
function chargeAuthorization(ctx: EmulatorContext, body: Record<string, unknown>): Response {
  const code = given(body.authorization_code) ? String(body.authorization_code) : "";
  if (!code) throw validation("Authorization code is required");
  const fields = paymentFields(body);
  const tx = ctx.store.chargeAuthorization(code, fields);
  const sendSuccess = () => ctx.chargeSuccess(tx).catch((e) => console.error(`paystack emulator: ${e}`));
  if (tx.status === "success") sendSuccess();
  if (tx.status === "pending") {
    setTimeout(() => tx.status === "pending" && (ctx.store.complete(tx), sendSuccess()), RECHARGE_PENDING_MS);
  }
  return json(200, { status: true, message: "Charge attempted", data: chargeData(tx) });
}

function refund(ctx: EmulatorContext, body: Record<string, unknown>): Response {
  if (!given(body.transaction)) throw validation("Transaction is required");
  const tx = ctx.store.find(body.transaction);
  if (!tx) return fail(404, "Transaction not found");
  const amount = given(body.amount) ? parseSubunits(body.amount) ?? 0 : undefined;
  const r = ctx.refund(tx, amount);
  return json(200, {
    status: true,
    message: "Refund has been queued for processing",
    data: refundData(tx, r, false),
  });
}

/** GET /refund (https://paystack.com/docs/api/refund/#list): `transaction` (id), `perPage` (50), `page` (1). */
function listRefunds(ctx: EmulatorContext, q: URLSearchParams): Response {
  const positive = (name: string, fallback: number) => {
    const n = q.get(name) ? parseSubunits(q.get(name)) : fallback;
    if (!n) throw validation(`Invalid ${name}`);
    return n;
  };
  const perPage = positive("perPage", 50);
  const page = positive("page", 1);
  const transaction = q.get("transaction");
  const rows = [...ctx.store.transactions.values()]
    .filter((tx) => !transaction || String(tx.id) === transaction)
    .flatMap((tx) => tx.refunds.map((r) => refundData(tx, r, true)))
    .sort((a, b) => Number(b.id) - Number(a.id)); // newest first
  const skipped = (page - 1) * perPage;
  return json(200, {
    status: true,
    message: "Refunds retrieved",
    data: rows.slice(skipped, skipped + perPage),
    meta: { total: rows.length, skipped, perPage, page, pageCount: Math.max(1, Math.ceil(rows.length / perPage)) },
  });
}
