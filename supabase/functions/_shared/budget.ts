// Pushing a key's budget and block state from the ledger to LiteLLM.
// The SQL decides the absolute target; this only carries it over. A push that loses a race with a newer
// ledger change is detected by its version and followed by a fresh push.
import { db } from "./db.ts";
import { type CallStats, litellm, LiteLLMError } from "./litellm.ts";
import { log } from "./log.ts";

export type PushOutcome = "synced" | "failed" | "skipped";

interface Target {
  key_id: string;
  key_value: string;
  target_max_budget: string;
  budget_version: string;
  status: string;
  blocked: boolean;
  sync_status: string;
  litellm_max_budget: string | null;
}

/**
 * Sets max_budget on LiteLLM to the ledger target, retrying while newer ledger changes keep arriving.
 * skipIfSynced: no call when LiteLLM already confirmed this exact target (a duplicate delivery, a key
 * just created at its target). Reconcile's drift repair never skips: it pushes because LiteLLM differs.
 */
export async function pushBudget(keyId: string, stats?: CallStats, opts: { skipIfSynced?: boolean } = {}):
  Promise<{ outcome: PushOutcome; target?: string; error?: string }> {
  const sql = db();
  for (let round = 0; round < 3; round++) {
    const [t] = await sql<Target[]>`select * from private.budget_push_target(${keyId})`;
    if (!t || t.status !== "active") return { outcome: "skipped" }; // provisioning will create it with the target
    if (opts.skipIfSynced && t.sync_status === "synced" && t.litellm_max_budget !== null &&
        Number(t.litellm_max_budget) === Number(t.target_max_budget)) {
      return { outcome: "synced", target: t.target_max_budget };
    }
    try {
      const row = await litellm().setMaxBudget(t.key_value, Number(t.target_max_budget), stats);
      const confirmed = row.max_budget ?? Number(t.target_max_budget);
      const [{ done }] = await sql<{ done: boolean }[]>`
        select private.confirm_budget_push(${keyId}, ${t.budget_version}, ${String(confirmed)}) as done`;
      if (done) return { outcome: "synced", target: t.target_max_budget };
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      await sql`select private.fail_budget_push(${keyId}, ${msg})`;
      log.warn("budget push failed; reconcile will retry", { key_id: keyId, error: msg, type: (e as LiteLLMError).type });
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
