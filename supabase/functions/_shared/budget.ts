// Pushing a key's budget and block state from the ledger to LiteLLM, and creating a key at its target.
// The SQL decides the absolute target; this only carries it over. A push that loses a race with a newer
// ledger change is detected by its version and followed by a fresh push. A budget counts as confirmed only
// when LiteLLM says it has exactly the value sent (its answer, else a read); the SQL compares.
import { db } from "./db.ts";
import { type CallStats, type GenerateKeyRequest, litellm, LiteLLMError } from "./litellm.ts";
import { log, maskKey } from "./log.ts";
import { sameMoney } from "./money.ts";

export type PushOutcome = "synced" | "failed" | "skipped";

/** A key's push target (private.budget_push_target, or the same columns from apply_verified_payment). */
export interface PushTarget {
  key_id: string;
  key_value: string;
  target_max_budget: string;
  budget_version: string;
  status: string;
  sync_status: string;
  litellm_max_budget: string | null;
}
interface Target extends PushTarget {
  blocked: boolean;
}

/** Sets max_budget and returns what LiteLLM says the key now has (its answer, else a read); null: it did not say. */
export async function setAndConfirmMaxBudget(key: string, target: string, stats?: CallStats): Promise<string | null> {
  const answer = await litellm().setMaxBudget(key, target, stats);
  return answer.max_budget ?? (await litellm().keyInfo(key, stats))?.max_budget ?? null;
}

/**
 * Creates a key whose value and alias were chosen beforehand (sign-up, rotation) with max_budget = the
 * ledger target, or finds the one an earlier run created and died before recording ("alias exists"; a
 * 200 for an existing custom key changes nothing). Returns the max_budget LiteLLM confirms (null: none).
 * Only the create call counts in stats (the tries of provisioning).
 */
export async function createKeyAtTarget(req: GenerateKeyRequest, stats?: CallStats): Promise<string | null> {
  const client = litellm();
  try {
    await client.generateKey(req, stats);
  } catch (e) {
    if (!(e instanceof LiteLLMError && e.status === 400 && /alias/i.test(e.message))) throw e;
    log.info("key already on LiteLLM; confirming", { key: maskKey(req.key) });
  }
  const info = await client.keyInfo(req.key);
  if (!info) throw new Error("LiteLLM does not know the key after creating it (its alias may belong to another key)");
  if (info.key_alias && info.key_alias !== req.key_alias) {
    throw new Error("the key on LiteLLM belongs to another alias");
  }
  if (info.max_budget != null && sameMoney(info.max_budget, req.max_budget)) return info.max_budget;
  return await setAndConfirmMaxBudget(req.key, req.max_budget);
}

/**
 * Sets max_budget on LiteLLM to the ledger target, retrying while newer ledger changes keep arriving.
 * skipIfSynced: no call when LiteLLM already confirmed this exact target (a duplicate delivery, a key
 * just created at its target). Reconcile's drift repair never skips: it pushes because LiteLLM differs.
 * target: the key's target as read in the transaction that changed the ledger (its first round reads nothing).
 */
export async function pushBudget(
  keyId: string,
  stats?: CallStats,
  opts: { skipIfSynced?: boolean; target?: PushTarget } = {},
): Promise<{ outcome: PushOutcome; target?: string; error?: string }> {
  const sql = db();
  for (let round = 0; round < 3; round++) {
    const [t] = round === 0 && opts.target
      ? [opts.target]
      : await sql<PushTarget[]>`select * from private.budget_push_target(${keyId})`;
    if (!t || t.status !== "active") return { outcome: "skipped" }; // provisioning will create it with the target
    // Only before this run has pushed: once its own push was stale, "synced" may be a concurrent push's confirm
    // of a read taken before this run's late write landed on LiteLLM, so it pushes the current target again.
    if (
      opts.skipIfSynced && round === 0 && t.sync_status === "synced" && t.litellm_max_budget !== null &&
      sameMoney(t.litellm_max_budget, t.target_max_budget)
    ) {
      return { outcome: "synced", target: t.target_max_budget };
    }
    try {
      const confirmed = await setAndConfirmMaxBudget(t.key_value, t.target_max_budget, stats);
      if (confirmed === null) throw new Error("LiteLLM did not confirm the max_budget it was sent");
      // true only if LiteLLM has exactly the target and no ledger change happened meanwhile
      const [{ done }] = await sql<{ done: boolean }[]>`
        select private.confirm_budget_push(${keyId}, ${t.budget_version}, ${confirmed}) as done`;
      if (done) return { outcome: "synced", target: t.target_max_budget };
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      await sql`select private.fail_budget_push(${keyId}, ${msg})`;
      log.warn("budget push failed; reconcile will retry", {
        key_id: keyId,
        error: msg,
        type: (e as LiteLLMError).type,
      });
      return { outcome: "failed", error: msg };
    }
  }
  return { outcome: "failed", error: "ledger kept changing during the push; reconcile will finish it" };
}

/** Blocks or unblocks the key on LiteLLM as a dispute requires, then records what LiteLLM now has. */
export async function pushBlock(keyId: string, blocked: boolean, stats?: CallStats): Promise<PushOutcome> {
  const sql = db();
  const [t] = await sql<Target[]>`select * from private.budget_push_target(${keyId})`;
  if (!t || t.status !== "active") return "skipped";
  try {
    if (blocked) await litellm().blockKey(t.key_value, stats);
    else await litellm().unblockKey(t.key_value, stats);
    await sql`select private.confirm_blocked(${keyId}, ${blocked})`;
    return "synced";
  } catch (e) {
    await sql`select private.fail_budget_push(${keyId}, ${"block: " + (e as Error).message})`;
    return "failed";
  }
}
