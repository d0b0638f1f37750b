// redeem-promo: a signed-in user redeems a promo code. SQL does everything under the user's lock
// (private.redeem_promo: rate limit, code checks, one redemption per user, the limit, the 'promo' ledger row,
// the key marked for a push); then the key's max_budget is raised like after any grant (the versioned
// absolute push; reconcile repairs it if LiteLLM is down). 429 with Retry-After when rate-limited.
import { z } from "zod";
import { requireUser } from "../_shared/auth.ts";
import { pushBudget } from "../_shared/budget.ts";
import { db } from "../_shared/db.ts";
import { handler, HttpError, json, parseBody } from "../_shared/http.ts";
import { sqlRefusal } from "../_shared/sql-errors.ts";

const body = z.object({ code: z.string().trim().min(1).max(60) }).strict();

type Redemption = {
  outcome: string;
  retry_after_seconds: number;
  code: string;
  amount: string;
  expires_at: Date | null;
  key_id: string | null;
  target_max_budget: string | null;
  remaining: string;
};

/** redeem_promo's refusals (SQL hints), worded for the user. */
const REFUSALS: Record<string, [number, string, string]> = {
  unknown_code: [404, "unknown_code", "there is no such promo code"],
  code_expired: [410, "code_expired", "this promo code has expired"],
  code_used_up: [409, "code_used_up", "this promo code has been used up"],
  already_redeemed: [409, "already_redeemed", "you have already redeemed this promo code"],
};

Deno.serve(handler("redeem-promo", async (req) => {
  if (req.method !== "POST") throw new HttpError(405, "method_not_allowed", "use POST");
  const user = await requireUser(req);
  const { code } = await parseBody(req, body, 'send {"code": "<promo code>"} and nothing else');
  let r: Redemption;
  try {
    [r] = await db()<Redemption[]>`select * from private.redeem_promo(${user.id}, ${code})`;
  } catch (e) {
    throw sqlRefusal(e, REFUSALS);
  }
  if (r.outcome !== "redeemed") {
    const wait = String(r.retry_after_seconds);
    throw new HttpError(429, "rate_limited", `too many attempts: please try again in ${wait} s`, {
      "Retry-After": wait,
    });
  }
  const pushed = r.key_id ? await pushBudget(r.key_id) : { outcome: "skipped" };
  return json({
    code: r.code,
    amount: r.amount, // USD, exact decimal string
    expires_at: r.expires_at,
    remaining: r.remaining,
    max_budget: r.target_max_budget,
    budget_push: pushed.outcome, // "failed": reconcile raises it within a minute
  });
}));
