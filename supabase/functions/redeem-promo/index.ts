// redeem-promo: a signed-in user redeems a promo code. SQL does everything under the user's lock
// (private.redeem_promo: rate limit, code checks, one redemption per user, the limit, the 'promo' ledger row,
// the key marked for a push) and answers with an outcome; then the key's max_budget is raised like after
// any grant (the versioned absolute push; reconcile repairs it if LiteLLM is down). Refusals are 4xx with
// nothing changed; 429 with Retry-After when rate-limited (refused attempts count too).
import { z } from "zod";
import { requireUser } from "../_shared/auth.ts";
import { pushBudget } from "../_shared/budget.ts";
import { db } from "../_shared/db.ts";
import { handler, HttpError, json, parseBody } from "../_shared/http.ts";

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

/** redeem_promo's refusals (outcomes), worded for the user. */
const REFUSALS: Record<string, [number, string]> = {
  unknown_code: [404, "there is no such promo code"],
  code_expired: [410, "this promo code has expired"],
  code_used_up: [409, "this promo code has been used up"],
  already_redeemed: [409, "you have already redeemed this promo code"],
};

Deno.serve(handler("redeem-promo", async (req) => {
  if (req.method !== "POST") {
    throw new HttpError(405, "method_not_allowed", "use POST");
  }
  const user = await requireUser(req);
  const { code } = await parseBody(
    req,
    body,
    'send {"code": "<promo code>"} and nothing else',
  );
  const [r] = await db()<
    Redemption[]
  >`select * from private.redeem_promo(${user.id}, ${code})`;
  if (r.outcome === "rate_limited") {
    const wait = String(r.retry_after_seconds);
    throw new HttpError(
      429,
      "rate_limited",
      `too many attempts: please try again in ${wait} s`,
      {
        "Retry-After": wait,
      },
    );
  }
  const refusal = REFUSALS[r.outcome];
  if (refusal) throw new HttpError(refusal[0], r.outcome, refusal[1]);
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
