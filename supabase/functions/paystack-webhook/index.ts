// paystack-webhook: Paystack's signed events. The signature is checked over the raw bytes before
// anything is parsed; a charge is credited only after Paystack's verify endpoint confirms it and it
// matches what the checkout locked, exactly once per reference (in SQL). Answers:
//   413: body over PAYSTACK_WEBHOOK_MAX_BYTES (nothing stored); 403: source IP off the optional allow-list
//   401: bad or missing signature (both recorded as hash, size and reason only; _shared/webhook-gate.ts)
//   200: every permanent outcome (credited, duplicate, rejected with a reason, ignored)
//   5xx: transient failures (database or Paystack unreachable, a payment verify still calls pending), so
//        Paystack retries.
import { z } from "zod";
import { db, isTransientDbError } from "../_shared/db.ts";
import { pushBlock, pushBudget } from "../_shared/budget.ts";
import { handler, HttpError, json } from "../_shared/http.ts";
import { log } from "../_shared/log.ts";
import { verifyAndApply } from "../_shared/charges.ts";
import { listRefunds, PaystackError } from "../_shared/paystack.ts";
import { admitPaystackPost } from "../_shared/webhook-gate.ts";

const envelope = z.object({ event: z.string().min(1), data: z.record(z.string(), z.unknown()) });
const chargeData = z.object({ reference: z.string().min(1) }).passthrough();
const refundData = z.object({ transaction_reference: z.string().min(1) }).passthrough();
const disputeData = z.object({
  id: z.union([z.number().int(), z.string().regex(/^\d+$/).transform(Number)]),
  resolution: z.string().nullish(),
  transaction: z.object({ reference: z.string().min(1) }).passthrough(),
}).passthrough();

// The stored copy of an event leaves out the card's authorization code (it charges the card again).
function withoutAuthorizationCode(body: z.infer<typeof envelope>) {
  const auth = body.data.authorization;
  if (!auth || typeof auth !== "object" || !("authorization_code" in auth)) return body;
  return { ...body, data: { ...body.data, authorization: { ...auth, authorization_code: "AUTH_***" } } };
}

type Outcome = { outcome: string; reason: string | null; key_id: string | null; target_max_budget: string | null };

async function onCharge(data: unknown, deliveryId: string) {
  const sql = db();
  const parsed = chargeData.safeParse(data);
  if (!parsed.success) {
    await sql`select private.finish_delivery(${deliveryId}, 'rejected', 'charge without a reference')`;
    return json({ outcome: "rejected", reason: "charge without a reference" });
  }
  // The event body is only a hint: Paystack's verify endpoint decides (_shared/charges.ts).
  const r = await verifyAndApply(parsed.data.reference, deliveryId);
  if (r.outcome === "not_found") {
    await sql`select private.finish_delivery(${deliveryId}, 'rejected', 'verify: transaction reference not found')`;
    return json({ outcome: "rejected", reason: "verify: transaction reference not found" });
  }
  if (r.outcome === "pending") {
    // Not an answer yet (mobile money, transfers are paid offline): nothing is decided; a 503 makes Paystack
    // deliver again later, and the charge.success that follows the customer's approval credits it.
    throw new HttpError(503, "payment_pending", `verify: the payment is still ${r.status}; retry later`);
  }
  return json({ outcome: r.outcome, reason: r.reason, budget_push: r.budget_push });
}

async function onRefund(event: string, data: unknown, deliveryId: string) {
  const sql = db();
  if (event !== "refund.processed") {
    // Only refund.processed means the money went back; the others are progress reports.
    await sql`select private.finish_delivery(${deliveryId}, 'ignored', ${event + ": logged only"})`;
    return json({ outcome: "ignored" });
  }
  const parsed = refundData.safeParse(data);
  if (!parsed.success) {
    await sql`select private.finish_delivery(${deliveryId}, 'rejected', 'malformed refund data')`;
    return json({ outcome: "rejected", reason: "malformed refund data" });
  }
  // The event only says "look again": what is taken back is recomputed from Paystack's list of this
  // transaction's refunds (an absolute), so replays, order and refunds without a reference cannot skew it.
  const reference = parsed.data.transaction_reference;
  const [p] = await sql<
    { provider_transaction_id: string | null }[]
  >`select * from private.refund_lookup(${reference})`;
  const refunds = p?.provider_transaction_id ? await listRefunds(p.provider_transaction_id) : [];
  const [r] = await sql<Outcome[]>`
    select * from private.apply_refunds(${reference}, ${sql.json(refunds as never)}, ${deliveryId})`;
  let push = "skipped";
  if (r.key_id && r.outcome !== "rejected") {
    push = (await pushBudget(r.key_id, undefined, { skipIfSynced: true })).outcome;
  }
  log.info("refunds", { reference, outcome: r.outcome, reason: r.reason, listed: refunds.length, budget_push: push });
  return json({ outcome: r.outcome, reason: r.reason, budget_push: push });
}

async function onDispute(event: string, data: unknown, deliveryId: string) {
  const sql = db();
  const parsed = disputeData.safeParse(data);
  if (!parsed.success) {
    await sql`select private.finish_delivery(${deliveryId}, 'rejected', 'malformed dispute data')`;
    return json({ outcome: "rejected", reason: "malformed dispute data" });
  }
  const action = event.slice("charge.dispute.".length); // create | remind | resolve
  const d = parsed.data;
  const [r] = await sql<(Outcome & { blocked: boolean | null })[]>`
    select * from private.apply_dispute(${d.id}, ${d.transaction.reference}, ${action}, ${
    d.resolution ?? null
  }, ${deliveryId})`;
  let block = "skipped";
  let push = "skipped";
  if (r.key_id && r.blocked !== null) {
    // Budget first: a lost dispute lowers it, so unblocking never opens more credit than the ledger has.
    push = (await pushBudget(r.key_id)).outcome;
    block = await pushBlock(r.key_id, r.blocked);
  }
  return json({ outcome: r.outcome, reason: r.reason, blocked: r.blocked, block_push: block, budget_push: push });
}

Deno.serve(handler("paystack-webhook", async (req) => {
  if (req.method !== "POST") throw new HttpError(405, "method_not_allowed", "use POST");
  const admitted = await admitPaystackPost(req); // size, source and signature, before anything is parsed
  if (admitted instanceof Response) return admitted;
  const { raw, bodyHash, sourceIp } = admitted;
  const sql = db();
  try {
    let body: z.infer<typeof envelope>;
    try {
      body = envelope.parse(JSON.parse(new TextDecoder().decode(raw)));
    } catch {
      await sql`select private.record_delivery(null, null, true, null, ${bodyHash}, ${sourceIp}, 'rejected', 'malformed body')`;
      return json({ outcome: "rejected", reason: "malformed body" });
    }
    const data = body.data as Record<string, unknown>;
    const tx = data.transaction as Record<string, unknown> | undefined;
    const reference = String(data.reference ?? data.transaction_reference ?? tx?.reference ?? "") || null;
    const [{ id: deliveryId }] = await sql<{ id: string }[]>`
      select private.record_delivery(${body.event}, ${reference}, true, ${
      sql.json(withoutAuthorizationCode(body) as never)
    }, ${bodyHash}, ${sourceIp}) as id`;
    try {
      if (body.event === "charge.success") return await onCharge(data, deliveryId);
      if (body.event.startsWith("refund.")) return await onRefund(body.event, data, deliveryId);
      if (body.event.startsWith("charge.dispute.")) return await onDispute(body.event, data, deliveryId);
      await sql`select private.finish_delivery(${deliveryId}, 'ignored', ${"unhandled event " + body.event})`;
      log.info("ignored event", { event: body.event });
      return json({ outcome: "ignored" });
    } catch (e) {
      // Transient: leave the delivery marked as an error and ask Paystack to retry.
      await sql`select private.finish_delivery(${deliveryId}, 'error', ${(e as Error).message})`.catch(() => {});
      throw e;
    }
  } catch (e) {
    if (e instanceof PaystackError && e.transient) {
      throw new HttpError(503, "paystack_unavailable", "could not verify with Paystack; retry later");
    }
    if (isTransientDbError(e)) throw new HttpError(503, "database_unavailable", "database unavailable; retry later");
    throw e; // unexpected: 500, Paystack retries
  }
}));
