// auto-topup: charges saved cards for the auto top-up attempts that are due (migration 20261202000720).
// Called with the cron secret by the crossing trigger (pg_net, after its transaction commits) and every
// minute by pg_cron while attempts are due. Each run takes a bounded, leased batch
// (private.claim_auto_topups); an attempt is recorded 'charging' before Paystack is called, and one found
// 'charging' again (the run died) or 'pending' is only verified. Credit goes through the same
// verify-and-apply path as the webhook (_shared/charges.ts), exactly once, whichever comes first.
import { verifyAndApply } from "../_shared/charges.ts";
import { db } from "../_shared/db.ts";
import { handler, json, requireCronOrService } from "../_shared/http.ts";
import { log, mask } from "../_shared/log.ts";
import { chargeAuthorization } from "../_shared/paystack.ts";

interface Claim {
  attempt_id: string;
  reference: string;
  action: "charge" | "verify";
  user_id: string;
  email: string | null;
  authorization_code: string | null;
  amount_subunits: number;
  currency: string;
  plan_code: string;
}

/** What the run learned, recorded in SQL (private.auto_topup_result); returns the attempt's status. */
async function record(a: Claim, result: "failed" | "pending" | "requeue", reason: string): Promise<string> {
  const [r] = await db()<{ status: string }[]>`
    select private.auto_topup_result(${a.attempt_id}, ${result}, ${reason}) as status`;
  return r.status;
}

async function runAttempt(a: Claim): Promise<string> {
  if (a.action === "charge") {
    if (!a.authorization_code || !a.email) return await record(a, "failed", "no saved card");
    const charge = await chargeAuthorization({
      authorization_code: a.authorization_code,
      email: a.email,
      amount: a.amount_subunits,
      currency: a.currency,
      reference: a.reference,
      metadata: { purpose: "auto_topup", attempt_id: a.attempt_id, plan: a.plan_code },
    });
    // A duplicate reference means an earlier run's charge reached Paystack: verify it, never charge again.
    if (charge.kind === "refused" && !/duplicate/i.test(charge.message)) {
      return await record(a, "failed", charge.message);
    }
  }
  const r = await verifyAndApply(a.reference, null);
  if (r.outcome === "not_found") return await record(a, "requeue", "Paystack has no charge with this reference yet");
  if (r.outcome === "pending") return await record(a, "pending", `the charge is ${r.status}`);
  if (r.outcome === "rejected") return await record(a, "failed", r.gateway_response ?? r.reason ?? r.status);
  return "succeeded"; // credited (now or by the webhook first): the payment's trigger settled the attempt
}

Deno.serve(handler("auto-topup", async (req) => {
  requireCronOrService(req);
  await req.body?.cancel();
  const claimed = await db()<Claim[]>`select * from private.claim_auto_topups()`;
  const attempts: { attempt_id: string; action: string; status: string; error?: string }[] = [];
  for (const a of claimed) {
    try {
      attempts.push({ attempt_id: a.attempt_id, action: a.action, status: await runAttempt(a) });
    } catch (e) {
      // Transient (Paystack or the database): the lease runs out and the next run verifies this attempt.
      attempts.push({ attempt_id: a.attempt_id, action: a.action, status: "retrying", error: mask(String(e)) });
    }
  }
  if (attempts.length) log.info("auto top-up", { attempts });
  return json({ attempts });
}));
