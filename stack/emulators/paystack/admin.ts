// Admin port: inspect state and drive scenarios (pay without the page, replay, reorder, forged
// signatures, mutations, disputes, refund events, outage). Requires Bearer <secret key>.
// Every route that sends webhooks waits for the first attempt of each and reports its outcome.

import {
  type AttemptReport,
  type EmulatorContext,
  report,
  type SignMode,
} from "./context.ts";
import {
  BadBody,
  fail,
  hasBearer,
  json,
  parseSubunits,
  readBody,
} from "./http.ts";
import {
  CARD_ALIASES,
  CHANNELS,
  DEFAULT_TEST_CARD,
  type DisputeResolution,
  PaystackError,
  type RefundStatus,
  TEST_CARDS,
  type Transaction,
  transactionData,
} from "./store.ts";
import type { Attempt, Delivery } from "./webhooks.ts";

const REFUND_STATUSES: RefundStatus[] = [
  "pending",
  "processing",
  "processed",
  "failed",
  "needs-attention",
];
const RESOLUTIONS: DisputeResolution[] = [
  "merchant-accepted",
  "auto-accepted",
  "declined",
];

class AdminError extends Error {
  constructor(public httpStatus: number, message: string) {
    super(message);
  }
}

export function makeAdminHandler(
  ctx: EmulatorContext,
): (req: Request) => Promise<Response> {
  return async (req) => {
    if (!hasBearer(req, ctx.secretKey)) return fail(401, "Invalid key");
    try {
      return await route(ctx, req);
    } catch (e) {
      if (e instanceof AdminError || e instanceof PaystackError) {
        return fail(e.httpStatus, e.message);
      }
      if (e instanceof BadBody) return fail(400, e.message);
      console.error(
        `paystack emulator: admin error: ${e instanceof Error ? e.stack : e}`,
      );
      return fail(500, `Internal emulator error: ${e}`);
    }
  };
}

function mustTx(ctx: EmulatorContext, reference: unknown): Transaction {
  if (typeof reference !== "string" || reference === "") {
    throw new AdminError(400, "reference is required");
  }
  const tx = ctx.store.get(reference);
  if (!tx) {
    throw new AdminError(404, `Transaction reference not found: ${reference}`);
  }
  return tx;
}

async function firsts(
  sent: { delivery: Delivery; first: Promise<Attempt> }[],
): Promise<AttemptReport[]> {
  return await Promise.all(
    sent.map(async (s) => report(s.delivery, await s.first)),
  );
}

function adminView(
  ctx: EmulatorContext,
  tx: Transaction,
): Record<string, unknown> {
  return {
    ...transactionData(ctx.store, tx),
    access_code: tx.access_code,
    authorization_url: `${ctx.publicUrl}/checkout/${tx.access_code}`,
    callback_url: tx.callback_url,
    channels: tx.channels,
    card: tx.card,
    refundable: ctx.store.refundable(tx),
    refunds: tx.refunds,
    disputes: tx.disputes,
  };
}

function configView(ctx: EmulatorContext): Record<string, unknown> {
  return {
    webhook_url: ctx.config.webhookUrl,
    retry_ms: ctx.config.retryMs,
    timeout_ms: ctx.config.timeoutMs,
    refund_delay_ms: ctx.config.refundDelayMs,
    down: ctx.isDown(),
    domain: ctx.domain,
    public_url: ctx.publicUrl,
  };
}

function nonNegativeInt(v: unknown, name: string): number {
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) {
    throw new AdminError(400, `${name} must be a non-negative integer`);
  }
  return v;
}

async function route(ctx: EmulatorContext, req: Request): Promise<Response> {
  const url = new URL(req.url);
  const path = url.pathname.replace(/\/+$/, "");
  const parts = path.split("/").filter(Boolean).map(decodeURIComponent);
  if (parts[0] !== "admin") {
    return fail(404, `Route not found: ${req.method} ${path}`);
  }
  const what = parts[1] ?? "";

  if (req.method === "GET") {
    if (what === "deliveries" && parts.length === 2) {
      const data = ctx.webhooks.list({
        reference: url.searchParams.get("reference"),
        event: url.searchParams.get("event"),
      });
      return json(200, { status: true, message: "Deliveries retrieved", data });
    }
    if (what === "transactions" && parts.length === 2) {
      const data = [...ctx.store.transactions.values()].map((tx) =>
        adminView(ctx, tx)
      );
      return json(200, {
        status: true,
        message: "Transactions retrieved",
        data,
      });
    }
    if (what === "transactions" && parts.length === 3) {
      return json(200, {
        status: true,
        message: "Transaction retrieved",
        data: adminView(ctx, mustTx(ctx, parts[2])),
      });
    }
    if (what === "config" && parts.length === 2) {
      return json(200, {
        status: true,
        message: "Config",
        data: configView(ctx),
      });
    }
    return fail(404, `Route not found: ${req.method} ${path}`);
  }
  if (req.method !== "POST" || parts.length !== 2) {
    return fail(404, `Route not found: ${req.method} ${path}`);
  }

  const body = await readBody(req);
  switch (what) {
    case "config":
      return await config(ctx, body);
    case "pay":
      return await pay(ctx, body);
    case "complete": {
      const tx = mustTx(ctx, body.reference);
      return payReport(tx, await completeNow(ctx, tx));
    }
    case "abandon": {
      const tx = mustTx(ctx, body.reference);
      ctx.store.abandon(tx);
      return payReport(tx, []);
    }
    case "replay":
      return await replay(ctx, body);
    case "send":
      return await send(ctx, body);
    case "reorder":
      return await reorder(ctx, body);
    case "mutate":
      return mutate(ctx, body);
    case "dispute":
      return await dispute(ctx, body);
    case "refund-event":
      return await refundEvent(ctx, body);
    case "reset":
      await ctx.reset(body.keep_config === true);
      return json(200, {
        status: true,
        message: "Reset",
        data: configView(ctx),
      });
  }
  return fail(404, `Route not found: ${req.method} ${path}`);
}

async function config(
  ctx: EmulatorContext,
  body: Record<string, unknown>,
): Promise<Response> {
  if (body.webhook_url !== undefined) {
    if (typeof body.webhook_url !== "string") {
      throw new AdminError(400, "webhook_url must be a string");
    }
    try {
      new URL(body.webhook_url);
    } catch {
      throw new AdminError(400, "webhook_url must be an absolute URL");
    }
    ctx.config.webhookUrl = body.webhook_url;
  }
  if (body.retry_ms !== undefined) {
    if (!Array.isArray(body.retry_ms)) {
      throw new AdminError(400, "retry_ms must be an array of integers");
    }
    ctx.config.retryMs = body.retry_ms.map((v) =>
      nonNegativeInt(v, "retry_ms[]")
    );
  }
  if (body.timeout_ms !== undefined) {
    ctx.config.timeoutMs = Math.max(
      1,
      nonNegativeInt(body.timeout_ms, "timeout_ms"),
    );
  }
  if (body.refund_delay_ms !== undefined) {
    ctx.config.refundDelayMs = nonNegativeInt(
      body.refund_delay_ms,
      "refund_delay_ms",
    );
  }
  if (body.down !== undefined) {
    if (typeof body.down !== "boolean") {
      throw new AdminError(400, "down must be a boolean");
    }
    await ctx.setDown(body.down);
  }
  return json(200, {
    status: true,
    message: "Config updated",
    data: configView(ctx),
  });
}

function resolveCard(card: unknown): string {
  if (card === undefined || card === null || card === "") {
    return DEFAULT_TEST_CARD;
  }
  const s = String(card);
  return CARD_ALIASES[s] ?? s;
}

async function pay(
  ctx: EmulatorContext,
  body: Record<string, unknown>,
): Promise<Response> {
  const tx = mustTx(ctx, body.reference);
  const channel = body.channel === undefined ? "card" : String(body.channel);
  if (!CHANNELS.includes(channel)) {
    throw new AdminError(400, `channel must be one of ${CHANNELS.join(", ")}`);
  }
  let result = { status: "", gateway_response: "" };
  if (channel === "card") {
    const card = resolveCard(body.card);
    const known = TEST_CARDS[card.replace(/[\s-]/g, "")];
    result = ctx.store.charge(tx, {
      card,
      cvv: body.cvv !== undefined ? String(body.cvv) : known?.cvv ?? "123",
      expiry: body.expiry !== undefined ? String(body.expiry) : undefined,
    });
  } else {
    ctx.store.payBy(tx, channel);
    if (tx.status === "pending") {
      const after = body.complete_after_ms === undefined ? 0 : nonNegativeInt(body.complete_after_ms, "complete_after_ms");
      // The customer approves on their phone later; an abandon in between wins.
      if (after > 0) {
        ctx.later(after, async () => {
          if (tx.status === "pending") await completeNow(ctx, tx);
        });
      }
    }
  }
  let deliveries: AttemptReport[] = [];
  if (tx.status === "success" && body.webhook !== false) {
    deliveries = await firsts([await ctx.sendChargeSuccess(tx)]);
  }
  return payReport(tx, deliveries);
}

function payReport(tx: Transaction, deliveries: AttemptReport[]): Response {
  const message = { success: "Paid", pending: "Pending", abandoned: "Abandoned" }[tx.status] ?? "Payment failed";
  return json(200, {
    status: true,
    message,
    data: { reference: tx.reference, status: tx.status, gateway_response: tx.gateway_response, deliveries },
  });
}

async function completeNow(ctx: EmulatorContext, tx: Transaction): Promise<AttemptReport[]> {
  ctx.store.complete(tx);
  return await firsts([await ctx.sendChargeSuccess(tx)]);
}

async function replay(
  ctx: EmulatorContext,
  body: Record<string, unknown>,
): Promise<Response> {
  if (typeof body.reference !== "string" || !body.reference) {
    throw new AdminError(400, "reference is required");
  }
  const event = typeof body.event === "string" && body.event
    ? body.event
    : "charge.success";
  const times = body.times === undefined
    ? 1
    : nonNegativeInt(body.times, "times");
  if (times < 1 || times > 200) {
    throw new AdminError(400, "times must be between 1 and 200");
  }
  const last = ctx.webhooks.last(body.reference, event);
  if (!last) {
    throw new AdminError(
      404,
      `No ${event} has been sent for ${body.reference}`,
    );
  }
  const one = () =>
    ctx.webhooks.dispatch({
      event,
      reference: last.reference,
      body: last.body,
      signature: last.signature,
      source: "replay",
    });
  let deliveries: AttemptReport[];
  if (body.concurrent === true) {
    deliveries = await firsts(Array.from({ length: times }, one));
  } else {
    deliveries = [];
    for (let i = 0; i < times; i++) deliveries.push(...await firsts([one()]));
  }
  return json(200, {
    status: true,
    message: "Replayed",
    data: { event, reference: body.reference, deliveries },
  });
}

function parseSign(v: unknown): SignMode {
  if (v === undefined || v === true) return true;
  if (v === false) return false;
  if (typeof v === "string") return v;
  throw new AdminError(
    400,
    'sign must be true, false, "wrong" or a literal header value',
  );
}

async function send(
  ctx: EmulatorContext,
  body: Record<string, unknown>,
): Promise<Response> {
  const sign = parseSign(body.sign);
  let raw: string;
  let event: string;
  let data: unknown;
  if (typeof body.body === "string") {
    raw = body.body; // sent byte for byte
    try {
      const parsed = JSON.parse(raw);
      event = typeof parsed?.event === "string"
        ? parsed.event
        : String(body.event ?? "unknown");
      data = parsed?.data;
    } catch {
      event = String(body.event ?? "unknown");
    }
  } else {
    if (typeof body.event !== "string" || !body.event) {
      throw new AdminError(400, "event is required");
    }
    event = body.event;
    data = body.data ?? {};
    raw = JSON.stringify({ event, data });
  }
  const d = (data ?? {}) as Record<string, unknown>;
  const tr = d.transaction as Record<string, unknown> | undefined;
  const reference = typeof body.reference === "string"
    ? body.reference
    : String(d.reference ?? d.transaction_reference ?? tr?.reference ?? "") ||
      null;
  const deliveries = await firsts([
    await ctx.sendRaw(event, reference, raw, "send", sign),
  ]);
  return json(200, {
    status: true,
    message: "Sent",
    data: { event, reference, deliveries },
  });
}

async function reorder(
  ctx: EmulatorContext,
  body: Record<string, unknown>,
): Promise<Response> {
  if (!Array.isArray(body.references) || body.references.length === 0) {
    throw new AdminError(400, "references must be a non-empty array");
  }
  const txs = body.references.map((r) => mustTx(ctx, r));
  for (const tx of txs) {
    if (
      !ctx.webhooks.last(tx.reference, "charge.success") &&
      tx.status !== "success"
    ) {
      throw new AdminError(
        400,
        `Transaction ${tx.reference} has not been paid`,
      );
    }
  }
  const deliveries: AttemptReport[] = [];
  for (const tx of txs) {
    const last = ctx.webhooks.last(tx.reference, "charge.success");
    const sent = last
      ? ctx.webhooks.dispatch({
        event: "charge.success",
        reference: tx.reference,
        body: last.body,
        signature: last.signature,
        source: "reorder",
      })
      : await ctx.sendChargeSuccess(tx, "reorder");
    deliveries.push(...await firsts([sent])); // one at a time, so arrival order is the given order
  }
  return json(200, {
    status: true,
    message: "Sent in order",
    data: { deliveries },
  });
}

function mutate(ctx: EmulatorContext, body: Record<string, unknown>): Response {
  const tx = mustTx(ctx, body.reference);
  const int = (v: unknown, name: string) => {
    const n = parseSubunits(v);
    if (n === null) {
      throw new AdminError(400, `${name} must be an integer (subunits)`);
    }
    return n;
  };
  if (body.amount !== undefined) tx.amount = int(body.amount, "amount");
  if (body.requested_amount !== undefined) {
    tx.requested_amount = int(body.requested_amount, "requested_amount");
  }
  if (body.currency !== undefined) tx.currency = String(body.currency);
  if (body.domain !== undefined) {
    if (body.domain !== "test" && body.domain !== "live") {
      throw new AdminError(400, 'domain must be "test" or "live"');
    }
    tx.domain = body.domain;
  }
  if (body.status !== undefined) tx.status = String(body.status);
  if (body.gateway_response !== undefined) {
    tx.gateway_response = String(body.gateway_response);
  }
  if (body.metadata !== undefined) tx.metadata = body.metadata;
  if (body.paid_at !== undefined) {
    tx.paid_at = body.paid_at === null ? null : String(body.paid_at);
  }
  if (body.fees !== undefined) {
    tx.fees = body.fees === null ? null : int(body.fees, "fees");
  }
  return json(200, {
    status: true,
    message: "Mutated",
    data: adminView(ctx, tx),
  });
}

async function dispute(
  ctx: EmulatorContext,
  body: Record<string, unknown>,
): Promise<Response> {
  const tx = mustTx(ctx, body.reference);
  const action = body.action;
  if (action !== "create" && action !== "remind" && action !== "resolve") {
    throw new AdminError(400, 'action must be "create", "remind" or "resolve"');
  }
  let d = tx.disputes.at(-1);
  if (action === "create") {
    if (tx.status !== "success" && tx.status !== "reversed") {
      throw new AdminError(400, "Only a paid transaction can be disputed");
    }
    const refundAmount = body.refund_amount === undefined
      ? tx.amount
      : parseSubunits(body.refund_amount);
    if (refundAmount === null) {
      throw new AdminError(400, "refund_amount must be an integer (subunits)");
    }
    d = ctx.store.createDispute(tx, refundAmount);
  } else {
    if (!d) {
      throw new AdminError(
        400,
        `No dispute exists for ${tx.reference}; create one first`,
      );
    }
    if (d.status === "resolved") {
      throw new AdminError(400, `Dispute ${d.id} is already resolved`);
    }
    const at = new Date().toISOString();
    if (action === "remind") {
      d.updated_at = at;
    } else {
      const resolution = body.resolution as DisputeResolution;
      if (!RESOLUTIONS.includes(resolution)) {
        throw new AdminError(
          400,
          'resolution must be "merchant-accepted", "auto-accepted" or "declined"',
        );
      }
      d.status = "resolved";
      d.resolution = resolution;
      d.resolved_at = at;
      d.updated_at = at;
      d.history.push({ status: "resolved", by: "emulator", createdAt: at });
      // The customer got the money back: Paystack marks the transaction reversed.
      if (resolution !== "declined" && tx.status === "success") {
        tx.status = "reversed";
      }
    }
  }
  const deliveries = await firsts([await ctx.sendDisputeEvent(tx, d, action)]);
  return json(200, {
    status: true,
    message: `charge.dispute.${action} sent`,
    data: { dispute: d, deliveries },
  });
}

async function refundEvent(
  ctx: EmulatorContext,
  body: Record<string, unknown>,
): Promise<Response> {
  const tx = mustTx(ctx, body.reference);
  const status = body.status as RefundStatus;
  if (!REFUND_STATUSES.includes(status)) {
    throw new AdminError(
      400,
      `status must be one of ${REFUND_STATUSES.join(", ")}`,
    );
  }
  let amount: number | undefined;
  let amountOverride: string | undefined;
  if (typeof body.amount === "string") {
    amountOverride = body.amount; // sent as a string, as Paystack sometimes does
    amount = parseSubunits(body.amount) ?? undefined;
  } else if (body.amount !== undefined) {
    amount = parseSubunits(body.amount) ?? undefined;
    if (amount === undefined) {
      throw new AdminError(
        400,
        "amount must be an integer (subunits) or a string",
      );
    }
  }
  let refund;
  if (body.refund_id !== undefined) {
    refund = tx.refunds.find((r) => r.id === Number(body.refund_id));
    if (!refund) {
      throw new AdminError(
        404,
        `No refund ${body.refund_id} on ${tx.reference}`,
      );
    }
  } else {
    refund = ctx.store.createRefund(tx, amount ?? tx.amount, {
      validate: false,
    });
  }
  const deliveries = await firsts([
    await ctx.sendRefundEvent(tx, refund, status, amountOverride),
  ]);
  return json(200, {
    status: true,
    message: `refund.${status} sent`,
    data: { refund, deliveries },
  });
}
