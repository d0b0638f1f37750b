// push-budget: an operator's "push this user's budget now" (`npm run admin -- push-budget <user>`, and
// after `grant`/`deduct`). Sets the live key's max_budget on LiteLLM to the ledger target (absolute,
// whatever LiteLLM has now) and re-sends the block state if LiteLLM has not confirmed it. Cron secret or
// service role key only (verify_jwt off, like the other operator functions). skip_if_synced (the sign-up
// confirmation's call through pg_net) makes no call when LiteLLM already confirmed the current target.
import { z } from "zod";
import { pushBlock, pushBudget } from "../_shared/budget.ts";
import { db } from "../_shared/db.ts";
import { handler, HttpError, json, parseBody, requireCronOrService } from "../_shared/http.ts";

const body = z.object({ user_id: z.string().uuid(), skip_if_synced: z.boolean().optional() }).strict();

interface LiveKey {
  key_id: string;
  status: string;
  blocked: boolean;
  block_synced: boolean;
  litellm_blocked: boolean | null;
}

Deno.serve(handler("push-budget", async (req) => {
  requireCronOrService(req);
  if (req.method !== "POST") throw new HttpError(405, "method_not_allowed", "use POST");
  const { user_id, skip_if_synced } = await parseBody(
    req,
    body,
    'send {"user_id": "<uuid>"} (and optionally "skip_if_synced": true)',
  );
  const [k] = await db()<LiveKey[]>`select * from private.live_key_of(${user_id})`;
  if (!k) throw new HttpError(404, "no_key", "the user has no key");
  if (k.status !== "active") {
    throw new HttpError(
      409,
      "key_not_active",
      `the key is ${k.status}: provisioning creates it with the ledger budget (requeue it if it is failed)`,
    );
  }
  const pushed = await pushBudget(k.key_id, undefined, { skipIfSynced: skip_if_synced === true });
  let block = "skipped";
  if (!k.block_synced || (k.litellm_blocked !== null && k.litellm_blocked !== k.blocked)) {
    block = await pushBlock(k.key_id, k.blocked);
  }
  return json({
    key_id: k.key_id,
    budget_push: pushed.outcome,
    target_max_budget: pushed.target ?? null,
    error: pushed.error ?? null,
    block_push: block,
  }, pushed.outcome === "failed" ? 503 : 200);
}));
