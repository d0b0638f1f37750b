// Key rotation: a new LiteLLM key that carries the remaining credit exactly; the old key blocked.
// The state machine and every money decision live in SQL (migrations/20261126000900_key_rotation.sql,
// 20261202000320_rotation_in_flight.sql); this file only carries each step to LiteLLM and records it.
// Every step is idempotent, so a run that dies anywhere (LiteLLM failing, the function killed) is finished
// by the next run: the user or an operator rotating again, or ops-sweep (pg_cron, every minute).
//
//   opened    -> block the old key on LiteLLM                     (no new requests)
//   blocked   -> wait rotation_settle_seconds, read its spend, retire it in SQL
//   retired   -> create the new key with max_budget = ledger target (ledger - retired keys' spend)
//   activated -> done
// Requests admitted before the block may still be running: reconcile-spend keeps reading the retired key
// and charges what they cost (the new key's target drops), then deletes the old key once its spend has
// not moved for retired_key_settle_seconds.
import { createKeyAtTarget, pushBlock, pushBudget } from "./budget.ts";
import { db } from "./db.ts";
import { HttpError } from "./http.ts";
import { litellm, LiteLLMError } from "./litellm.ts";
import { log, mask, maskKey } from "./log.ts";
import { sqlRefusal } from "./sql-errors.ts";

interface Context {
  rotation_id: string;
  user_id: string;
  state: "opened" | "blocked" | "retired" | "activated" | "done";
  old_key_id: string;
  old_key_value: string;
  old_key_missing: boolean;
  new_key_id: string | null;
  new_key_value: string;
  new_key_alias: string;
  new_key_blocked: boolean | null;
  target_max_budget: string | null;
  settle_remaining_seconds: string;
  rpm_limit: number;
  tpm_limit: number;
}

export interface RotationResult {
  rotation_id: string;
  state: "done" | "waiting";
  steps: string[];
  resume_in_seconds?: number;
  key_id?: string;
  key_masked?: string;
  max_budget?: string;
}

/**
 * Opens a rotation of the user's key (or continues the unfinished one) and runs it.
 * rateLimited: a user from the dashboard (at most one rotation per rotation_user_min_interval_seconds).
 */
export async function rotateUserKey(
  userId: string,
  requestedBy: string,
  opts: { rateLimited: boolean; maxInlineWaitSeconds?: number },
): Promise<RotationResult> {
  const sql = db();
  let started: { rotation_id: string; state: string; claimed: boolean; is_new: boolean };
  try {
    [started] = await sql`select * from private.start_key_rotation(${userId}, ${requestedBy}, ${opts.rateLimited})`;
  } catch (e) {
    throw sqlRefusal(e); // unknown_user 404, no_active_key 409, too_soon 429
  }
  if (!started.claimed) {
    throw new HttpError(
      409,
      "rotation_in_progress",
      "another run is rotating this key right now; try again in a minute",
    );
  }
  log.info(started.is_new ? "rotation opened" : "rotation continued", {
    rotation_id: started.rotation_id,
    user_id: userId,
    state: started.state,
  });
  return await runRotation(started.rotation_id, opts.maxInlineWaitSeconds);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * Runs a rotation whose lease this run holds, from its current state to done, or until it must wait for
 * the old key's spend to settle longer than maxInlineWaitSeconds (ops-sweep then finishes it). On any
 * failure the lease is released with a back-off and the error is rethrown.
 */
export async function runRotation(rotationId: string, maxInlineWaitSeconds?: number): Promise<RotationResult> {
  const sql = db();
  const client = litellm();
  const steps: string[] = [];
  const [{ inline }] = await sql<
    { inline: string }[]
  >`select private.setting_numeric('rotation_max_inline_wait_seconds') as inline`;
  const maxWait = maxInlineWaitSeconds ?? Number(inline);
  let state = "unknown";
  try {
    for (let guard = 0; guard < 8; guard++) {
      const [c] = await sql<Context[]>`select * from private.key_rotation_context(${rotationId})`;
      if (!c) throw new Error(`rotation ${rotationId} not found`);
      state = c.state;
      if (c.state === "opened" || c.state === "blocked") {
        // Step 2: block the old key, so its spend stops moving (repeated on a rerun: blocking is idempotent).
        await sql`select private.rotation_block_intent(${rotationId})`;
        let missing = c.old_key_missing;
        if (!missing) {
          try {
            await client.blockKey(c.old_key_value);
          } catch (e) {
            // A key LiteLLM does not know (deleted behind our back) cannot spend: confirm, then go on.
            if (!(e instanceof LiteLLMError) || e.retryable || (await client.keyInfo(c.old_key_value)) !== null) {
              throw e;
            }
            missing = true;
          }
        }
        const [{ wait }] = await sql<
          { wait: string }[]
        >`select private.rotation_old_blocked(${rotationId}, ${missing}) as wait`;
        steps.push(missing ? "old key already gone from LiteLLM" : "old key blocked");
        // Step 3: LiteLLM writes spend in batches; what is in flight lands within the settle time.
        const waitS = missing ? 0 : Number(wait);
        if (waitS > maxWait) {
          await sql`select private.rotation_failed(${rotationId}, 'waiting for the old key''s spend to settle', ${new Date(
            Date.now() + waitS * 1000,
          )})`;
          log.info("rotation waiting for spend to settle", { rotation_id: rotationId, seconds: Math.ceil(waitS) });
          return { rotation_id: rotationId, state: "waiting", steps, resume_in_seconds: Math.ceil(waitS) };
        }
        if (waitS > 0) await sleep(Math.ceil(waitS * 1000) + 50);
        let finalSpend: string | null = null;
        if (!missing) {
          const info = await client.keyInfo(c.old_key_value);
          finalSpend = info ? info.spend : null; // gone meanwhile: the last spend reconcile saw stands
        }
        const [r] = await sql<{ new_key_id: string; target_max_budget: string }[]>`
          select * from private.rotation_retire_old(${rotationId}, ${finalSpend})`;
        steps.push(
          `old key retired with spend ${finalSpend ?? "as last observed"}; new key target ${r.target_max_budget}`,
        );
        continue;
      }
      if (c.state === "retired") {
        // Step 4: the new key, with the value and alias chosen when the rotation opened (a rerun finds it),
        // at the ledger target (never below 0: key_target_budget).
        const confirmed = await createKeyAtTarget({
          key: c.new_key_value,
          key_alias: c.new_key_alias,
          max_budget: c.target_max_budget!,
          rpm_limit: c.rpm_limit,
          tpm_limit: c.tpm_limit,
          user_id: c.user_id,
          metadata: { app: "litellm-credits", user_id: c.user_id, key_id: c.new_key_id, rotated_from: c.old_key_id },
          blocked: c.new_key_blocked ?? false,
        });
        await sql`select private.rotation_new_key_active(${rotationId}, ${confirmed})`;
        steps.push(`new key active with max_budget ${confirmed ?? "unconfirmed (pushed again below)"}`);
        // A payment may have landed meanwhile; an open dispute keeps the key blocked.
        await pushBudget(c.new_key_id!);
        if (c.new_key_blocked) await pushBlock(c.new_key_id!, true);
        continue;
      }
      if (c.state === "activated") {
        // The old key stays blocked on LiteLLM: reconcile charges its late spend, then deletes it.
        await sql`select private.rotation_finish(${rotationId})`;
        steps.push("done; the old key is deleted once its spend has settled");
        continue;
      }
      // done
      const [k] = await sql<{ id: string; key_value: string; litellm_max_budget: string | null }[]>`
        select k.id, k.key_value, k.litellm_max_budget from public.api_keys k where k.id = ${c.new_key_id}`;
      log.info("key rotated", {
        rotation_id: rotationId,
        user_id: c.user_id,
        old_key: maskKey(c.old_key_value),
        new_key: maskKey(k.key_value),
        steps: steps.length,
      });
      return {
        rotation_id: rotationId,
        state: "done",
        steps,
        key_id: k.id,
        key_masked: maskKey(k.key_value),
        max_budget: k.litellm_max_budget ?? undefined,
      };
    }
    throw new Error("rotation did not converge");
  } catch (e) {
    const msg = mask(e instanceof Error ? e.message : String(e));
    await sql`select private.rotation_failed(${rotationId}, ${`${state}: ${msg}`})`.catch(() => {});
    log.warn("rotation stopped; a rerun or ops-sweep finishes it", { rotation_id: rotationId, state, error: msg });
    throw e;
  }
}
