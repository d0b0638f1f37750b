// The one verify-and-apply path for a Paystack charge, shared by the webhook (charge.success) and auto-topup
// (the answer of charge_authorization and its follow-up verifies): Paystack's verify answer decides, SQL
// (private.apply_payment) credits exactly once per reference against what the checkout locked, the budget is
// pushed the usual way, and a reusable card is saved (private.save_payment_method; its code is never logged),
// all but the push in one SQL call (private.apply_verified_payment).
import { pushBudget, type PushTarget } from "./budget.ts";
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

// private.apply_verified_payment's row: the outcome, the card, and the key's push target read in the same
// transaction (pushBudget's first round needs no read of its own).
type Applied = Omit<PushTarget, "key_id"> & {
  outcome: "credited" | "duplicate" | "rejected";
  reason: string | null;
  key_id: string | null;
  card_saved: boolean;
  card_error: string | null;
};

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
  // One round trip: credit once (private.apply_payment), save a reusable card (the SQL refuses anything else),
  // and read the key's push target.
  const [r] = await sql<Applied[]>`
    select * from private.apply_verified_payment(${tx.reference}, ${tx.status}, ${tx.amount},
      ${tx.requested_amount ?? null}, ${tx.currency}, ${tx.domain ?? null}, ${paystackMode()}, ${tx.id},
      ${tx.paid_at ?? tx.paidAt ?? null}, ${deliveryId}, ${tx.channel ?? null},
      ${tx.authorization ? sql.json(tx.authorization as never) : null})`;
  let push = "skipped";
  // A duplicate only needs a push if the first delivery could not make one.
  if (r.key_id && r.outcome !== "rejected") {
    push = (await pushBudget(r.key_id, undefined, { skipIfSynced: true, target: { ...r, key_id: r.key_id } })).outcome;
  }
  if (r.card_error) {
    log.warn("the card could not be saved; the payment stands", { reference: tx.reference, error: r.card_error });
  }
  log.info("charge", {
    reference: tx.reference,
    outcome: r.outcome,
    reason: r.reason,
    budget_push: push,
    card_saved: r.card_saved,
  });
  return {
    outcome: r.outcome,
    reason: r.reason,
    budget_push: push,
    status: tx.status,
    gateway_response: tx.gateway_response ?? null,
  };
}
