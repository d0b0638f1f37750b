// The one verify-and-apply path for a Paystack charge, shared by the webhook (charge.success) and auto-topup
// (the answer of charge_authorization and its follow-up verifies): Paystack's verify answer decides, SQL
// (private.apply_payment) credits exactly once per reference against what the checkout locked, the budget is
// pushed the usual way, and a reusable card is saved (private.save_payment_method; its code is never logged).
import { pushBudget } from "./budget.ts";
import { paystackMode } from "./config.ts";
import { db } from "./db.ts";
import { log } from "./log.ts";
import { PENDING_STATUSES, type Transaction, verifyTransaction } from "./paystack.ts";

export type ApplyResult =
  | { outcome: "not_found" } // Paystack does not know the reference
  | { outcome: "pending"; status: string } // not an answer yet: nothing decided
  | {
    outcome: "credited" | "duplicate" | "rejected";
    reason: string | null;
    budget_push: string;
    status: string;
    gateway_response: string | null;
  };

type Outcome = { outcome: string; reason: string | null; key_id: string | null; target_max_budget: string | null };

/**
 * Verifies `reference` with Paystack and applies the answer when it is final. deliveryId: the webhook
 * delivery to mark (null for auto-topup). Transient failures (Paystack, database) throw.
 */
export async function verifyAndApply(reference: string, deliveryId: string | null): Promise<ApplyResult> {
  const tx = await verifyTransaction(reference);
  if (!tx || tx.reference !== reference) return { outcome: "not_found" };
  if (PENDING_STATUSES.includes(tx.status)) return { outcome: "pending", status: tx.status };
  return await applyVerified(tx, deliveryId);
}

async function applyVerified(tx: Transaction, deliveryId: string | null): Promise<ApplyResult> {
  const sql = db();
  const [r] = await sql<Outcome[]>`
    select * from private.apply_payment(${tx.reference}, ${tx.status}, ${tx.amount}, ${tx.requested_amount ?? null},
      ${tx.currency}, ${tx.domain ?? null}, ${paystackMode()}, ${tx.id}, ${tx.paid_at ?? tx.paidAt ?? null},
      ${deliveryId}, ${tx.channel ?? null})`;
  let push = "skipped";
  let saved = false;
  if (r.outcome === "credited" || r.outcome === "duplicate") {
    // Only a reusable authorization can be saved (private.save_payment_method refuses the rest): mobile money
    // and bank payments skip the round trip.
    if (tx.authorization?.reusable === true) {
      const [s] = await sql<{ id: string | null }[]>`
        select private.save_payment_method(${tx.reference}, ${sql.json(tx.authorization as never)}) as id`;
      saved = s.id !== null;
    }
    // A duplicate only needs a push if the first delivery could not make one.
    if (r.key_id) push = (await pushBudget(r.key_id, undefined, { skipIfSynced: true })).outcome;
  }
  log.info("charge", {
    reference: tx.reference,
    outcome: r.outcome,
    reason: r.reason,
    budget_push: push,
    card_saved: saved,
  });
  return {
    outcome: r.outcome as "credited" | "duplicate" | "rejected",
    reason: r.reason,
    budget_push: push,
    status: tx.status,
    gateway_response: tx.gateway_response ?? null,
  };
}
