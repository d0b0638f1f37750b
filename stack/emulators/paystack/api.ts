// The public API port: /transaction/initialize, /transaction/verify/:reference, /refund (create and
// list), and the hosted checkout page (/checkout/:access_code).

import type { EmulatorContext } from "./context.ts";
import { handleCheckoutPage, handleCheckoutPay } from "./checkout.ts";
import {
  BadBody,
  fail,
  hasBearer,
  json,
  parseSubunits,
  readBody,
} from "./http.ts";
import {
  CHANNELS,
  CURRENCIES,
  DEFAULT_CURRENCY,
  PaystackError,
  REFERENCE_PATTERN,
  refundApiData,
  refundListData,
  transactionData,
} from "./store.ts";

const EMAIL_PATTERN = /^[^\s@]+@[^\s@]+\.[^\s@]+$/;

function validation(message: string, code = "invalid_params"): Response {
  return fail(400, message, { type: "validation_error", code });
}

export function makeApiHandler(
  ctx: EmulatorContext,
): (req: Request) => Promise<Response> {
  return async (req) => {
    try {
      return await route(ctx, req);
    } catch (e) {
      if (e instanceof BadBody) return validation(e.message);
      if (e instanceof PaystackError) {
        return fail(e.httpStatus, e.message, e.extra);
      }
      console.error(
        `paystack emulator: api error: ${e instanceof Error ? e.stack : e}`,
      );
      return fail(500, "Internal emulator error");
    }
  };
}

async function route(ctx: EmulatorContext, req: Request): Promise<Response> {
  const url = new URL(req.url);
  const path = url.pathname.replace(/\/+$/, "") || "/";
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);

  // Hosted checkout: public, no key.
  if (parts[0] === "checkout" && parts.length === 2 && req.method === "GET") {
    return handleCheckoutPage(ctx, parts[1]);
  }
  if (
    parts[0] === "checkout" && parts.length === 3 && parts[2] === "pay" &&
    req.method === "POST"
  ) {
    return await handleCheckoutPay(ctx, parts[1], req);
  }
  if (path === "/" && req.method === "GET") {
    return json(200, {
      status: true,
      message: "Paystack emulator",
      data: { domain: ctx.domain },
    });
  }

  if (!hasBearer(req, ctx.secretKey)) return fail(401, "Invalid key");

  if (path === "/transaction/initialize" && req.method === "POST") {
    return await initialize(ctx, await readBody(req));
  }
  if (
    parts[0] === "transaction" && parts[1] === "verify" && parts.length === 3 &&
    req.method === "GET"
  ) {
    const tx = ctx.store.get(parts[2]);
    if (!tx) return fail(404, "Transaction reference not found");
    return json(200, {
      status: true,
      message: "Verification successful",
      data: transactionData(ctx.store, tx),
    });
  }
  if (path === "/refund" && req.method === "POST") {
    return await refund(ctx, await readBody(req));
  }
  if (path === "/refund" && req.method === "GET") {
    return listRefunds(ctx, url.searchParams);
  }
  return fail(404, `Route not found: ${req.method} ${path}`);
}

function initialize(
  ctx: EmulatorContext,
  body: Record<string, unknown>,
): Response {
  const email = typeof body.email === "string" ? body.email.trim() : "";
  if (!email) return validation("Email is required");
  if (!EMAIL_PATTERN.test(email)) {
    return validation("Invalid Email Address Passed");
  }

  if (body.amount === undefined || body.amount === null || body.amount === "") {
    return validation("Amount is required");
  }
  const amount = parseSubunits(body.amount);
  if (amount === null || amount <= 0) return validation("Invalid Amount Sent");

  let currency = DEFAULT_CURRENCY; // omitted: the account's default currency, as Paystack does
  if (
    body.currency !== undefined && body.currency !== null &&
    body.currency !== ""
  ) {
    currency = String(body.currency).toUpperCase();
    if (!CURRENCIES[currency]) {
      return fail(400, "Currency not supported by merchant", {
        type: "validation_error",
        code: "unsupported_currency",
      });
    }
  }
  const { min, whole } = CURRENCIES[currency];
  if (amount < min) {
    return validation(
      `Invalid Amount Sent. Minimum amount is ${min} ${currency} subunits`,
    );
  }
  if (whole && amount % 100 !== 0) {
    return validation(`Invalid Amount Sent. ${currency} amounts must be whole (a multiple of 100 subunits)`);
  }

  let reference: string | undefined;
  if (
    body.reference !== undefined && body.reference !== null &&
    body.reference !== ""
  ) {
    reference = String(body.reference);
    if (!REFERENCE_PATTERN.test(reference)) {
      return validation(
        "Only -, ., = and alphanumeric characters allowed in transaction reference",
      );
    }
  }

  let callback_url: string | null = null;
  if (typeof body.callback_url === "string" && body.callback_url !== "") {
    try {
      const u = new URL(body.callback_url);
      if (u.protocol !== "http:" && u.protocol !== "https:") {
        throw new Error("scheme");
      }
      callback_url = body.callback_url;
    } catch {
      return validation("Invalid callback_url");
    }
  }

  let metadata: unknown = body.metadata;
  if (typeof metadata === "string" && metadata.trim().startsWith("{")) {
    try {
      metadata = JSON.parse(metadata); // Paystack accepts stringified JSON metadata
    } catch {
      return validation("Invalid metadata: not valid JSON");
    }
  }

  let channels: string[] | null = null;
  if (body.channels !== undefined && body.channels !== null) {
    const list = Array.isArray(body.channels) ? body.channels.map(String) : null;
    const bad = list ? list.filter((c) => !CHANNELS.includes(c)) : [String(body.channels)];
    if (!list || bad.length) return validation(`Invalid channels: ${bad.join(", ")}`);
    channels = list;
  }

  const tx = ctx.store.initialize({
    email,
    amount,
    currency,
    reference,
    callback_url,
    metadata,
    channels,
  });
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

function refund(ctx: EmulatorContext, body: Record<string, unknown>): Response {
  const key = body.transaction;
  if (key === undefined || key === null || key === "") {
    return validation("Transaction is required");
  }
  const tx = ctx.store.find(key as string | number);
  if (!tx) return fail(404, "Transaction not found");
  let amount = ctx.store.refundable(tx);
  if (body.amount !== undefined && body.amount !== null && body.amount !== "") {
    const a = parseSubunits(body.amount);
    if (a === null || a <= 0) return validation("Invalid refund amount");
    amount = a;
  }
  const r = ctx.store.createRefund(tx, amount, { validate: true });
  ctx.scheduleRefundOutcome(tx, r);
  return json(200, {
    status: true,
    message: "Refund has been queued for processing",
    data: refundApiData(ctx.store, tx, r),
  });
}

/**
 * GET /refund (https://paystack.com/docs/api/refund/#list): `transaction` (the transaction's id),
 * `currency`, `from`/`to` (created at, inclusive), `perPage` (default 50), `page` (default 1); newest
 * first; `meta` as in Paystack's OpenAPI description (total, skipped, perPage, page, pageCount).
 */
function listRefunds(ctx: EmulatorContext, q: URLSearchParams): Response {
  const positive = (name: string, fallback: number) => {
    const raw = q.get(name);
    if (raw === null || raw === "") return fallback;
    const n = parseSubunits(raw);
    if (n === null || n < 1) throw new BadBody(`Invalid ${name}`);
    return n;
  };
  const perPage = positive("perPage", 50);
  const page = positive("page", 1);
  const transaction = q.get("transaction");
  const currency = q.get("currency")?.toUpperCase() || null;
  const from = q.get("from") ? Date.parse(q.get("from")!) : null;
  const to = q.get("to") ? Date.parse(q.get("to")!) : null;
  if (Number.isNaN(from) || Number.isNaN(to)) throw new BadBody("Invalid date");
  const rows = [...ctx.store.transactions.values()]
    .filter((tx) => !transaction || String(tx.id) === transaction)
    .flatMap((tx) => tx.refunds.map((r) => ({ tx, r })))
    .filter(({ r }) => !currency || r.currency === currency)
    .filter(({ r }) => (from === null || Date.parse(r.created_at) >= from) && (to === null || Date.parse(r.created_at) <= to))
    .sort((a, b) => b.r.created_at.localeCompare(a.r.created_at) || b.r.id - a.r.id);
  const skipped = (page - 1) * perPage;
  return json(200, {
    status: true,
    message: "Refunds retrieved",
    data: rows.slice(skipped, skipped + perPage).map(({ tx, r }) => refundListData(tx, r)),
    meta: { total: rows.length, skipped, perPage, page, pageCount: Math.max(1, Math.ceil(rows.length / perPage)) },
  });
}
