// provision-key: creates the LiteLLM key of each due provisioning job, with max_budget = ledger target.
// Called by the sign-up trigger and the cron sweep through pg_net (cron secret), or by an operator.
// Exactly one key per user, even if we die between LiteLLM creating the key and our database write:
// the key value and alias were chosen at sign-up, so a rerun finds the key instead of creating another.
import { db } from "../_shared/db.ts";
import { createKeyAtTarget, pushBudget } from "../_shared/budget.ts";
import { handler, json, requireCronOrService } from "../_shared/http.ts";
import type { CallStats } from "../_shared/litellm.ts";
import { log, maskKey } from "../_shared/log.ts";

interface Job {
  job_id: string;
  key_id: string;
  user_id: string;
  key_alias: string;
  key_value: string;
  attempts: number;
}

async function provision(job: Job, limits: { rpm: number; tpm: number }): Promise<"done" | "queued" | "dead"> {
  const sql = db();
  // Tries = attempts to create the key (retries included); confirming calls are not counted.
  const stats: CallStats = { attempts: 0 };
  try {
    const [{ target }] = await sql<{ target: string }[]>`select private.key_target_budget(${job.key_id}) as target`;
    const confirmed = await createKeyAtTarget({
      key: job.key_value,
      key_alias: job.key_alias,
      max_budget: target,
      rpm_limit: limits.rpm,
      tpm_limit: limits.tpm,
      user_id: job.user_id,
      metadata: { app: "litellm-credits", user_id: job.user_id, key_id: job.key_id },
    }, stats);
    // Active either way; a budget LiteLLM did not confirm stays pending for the push below and reconcile.
    await sql`select private.complete_provisioning(${job.job_id}, ${stats.attempts}, ${confirmed})`;
    // A payment may have landed meanwhile: make sure LiteLLM has the latest target.
    await pushBudget(job.key_id, undefined, { skipIfSynced: true });
    log.info("key provisioned", { key: maskKey(job.key_value), job_id: job.job_id, tries: stats.attempts });
    return "done";
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const [{ state }] = await sql<{ state: "queued" | "dead" }[]>`
      select private.fail_provisioning(${job.job_id}, ${Math.max(stats.attempts, 1)}, ${msg}) as state`;
    log.warn("provisioning failed", {
      job_id: job.job_id,
      key: maskKey(job.key_value),
      tries: stats.attempts,
      state,
      error: msg,
    });
    return state;
  }
}

Deno.serve(handler("provision-key", async (req) => {
  requireCronOrService(req);
  await req.body?.cancel();
  const sql = db();
  const jobs = await sql<Job[]>`select * from private.claim_provisioning_jobs(10, 60)`;
  const [limits] = await sql<{ rpm: number; tpm: number }[]>`
    select private.setting_numeric('key_rpm_limit')::int as rpm, private.setting_numeric('key_tpm_limit')::int as tpm`;
  const results = { claimed: jobs.length, done: 0, queued: 0, dead: 0 };
  // A few at a time: quick for a burst of sign-ups, gentle on LiteLLM.
  const queue = [...jobs];
  await Promise.all(Array.from({ length: Math.min(4, queue.length) }, async () => {
    for (let j = queue.shift(); j; j = queue.shift()) results[await provision(j, limits)]++;
  }));
  return json(results);
}));
