// checkout: a signed-in user asks to buy a plan, optionally in a currency (else their last one, else the
// operator's default). SQL records our reference with the deal locked (currency, price, USD credit,
// channels) first, then we ask Paystack to initialize a transaction for exactly that. The client never
// sends an amount. Rate-limited per user and per client IP, with a cap on open checkouts per user, all
// counted in SQL (private.start_checkout; limits in private.settings): 429 with Retry-After.
import { z } from "zod";
import { requireUser } from "../_shared/auth.ts";
import { config } from "../_shared/config.ts";
import { db } from "../_shared/db.ts";
import { clientIp, handler, HttpError, json, parseBody } from "../_shared/http.ts";
import { fromSubunits } from "../_shared/money.ts";
import { initializeTransaction, PaystackError } from "../_shared/paystack.ts";
import { sqlRefusal, type Wording } from "../_shared/sql-errors.ts";

const body = z.object({
  plan: z.string().min(1).max(40),
  currency: z.string().regex(/^[A-Za-z]{3}$/).optional(),
}).strict();

type Checkout = {
  outcome: string;
  retry_after_seconds: number;
  reference: string;
  amount_subunits: number;
  currency: string;
  credit: string;
  email: string;
  exponent: number;
  channels: string[];
};

/** start_checkout's refusals (SQL hints), worded for the buyer. */
function refusals(plan: string, currency: string | null): Wording {
  const code = currency ?? "your currency";
  return {
    unknown_plan: `there is no active plan "${plan}"`,
    unknown_user: [400, "no_email", "your account has no email address, which Paystack requires"],
    unknown_currency: `"${code}" is not a currency this shop knows`,
    currency_disabled: `payments in ${code} are not accepted here; choose another one`,
    no_price: `the plan "${plan}" has no price in ${code}; choose another currency`,
  };
}

const LIMITED: Record<string, string> = {
  user_rate_limited: "you started too many checkouts in a short time",
  ip_rate_limited: "too many checkouts were started from your network in a short time",
  too_many_open_checkouts: "you have too many unfinished checkouts",
};

Deno.serve(handler("checkout", async (req) => {
  if (req.method !== "POST") throw new HttpError(405, "method_not_allowed", "use POST");
  const user = await requireUser(req);
  const { plan, currency: asked } = await parseBody(
    req,
    body,
    'send {"plan": "starter", "currency": "NGN"} (currency optional: 3 letters) and nothing else',
  );
  const currency = asked?.toUpperCase() ?? null;
  const sql = db();
  let checkout: Checkout;
  try {
    [checkout] = await sql<Checkout[]>`
      select * from private.start_checkout(${user.id}, ${plan}, ${clientIp(req)}, ${currency})`;
  } catch (e) {
    throw sqlRefusal(e, refusals(plan, currency));
  }
  if (checkout.outcome !== "created") {
    const wait = checkout.retry_after_seconds;
    throw new HttpError(
      429,
      checkout.outcome,
      `${LIMITED[checkout.outcome] ?? "too many checkouts"}: please try again in ${wait} s`,
      { "Retry-After": String(wait) },
    );
  }
  try {
    const tx = await initializeTransaction({
      email: checkout.email, // from auth.users, not from the token (an old token may carry an old address)
      amount: checkout.amount_subunits,
      currency: checkout.currency,
      reference: checkout.reference,
      channels: checkout.channels.length ? checkout.channels : undefined,
      callback_url: config().PAYSTACK_CALLBACK_URL,
      metadata: { user_id: user.id, plan },
    });
    await sql`select private.checkout_initialized(${checkout.reference}, ${tx.access_code})`;
    return json({
      reference: checkout.reference,
      access_code: tx.access_code,
      authorization_url: tx.authorization_url,
      plan,
      currency: checkout.currency,
      amount: fromSubunits(checkout.amount_subunits, checkout.exponent),
      amount_subunits: checkout.amount_subunits,
      exponent: checkout.exponent,
      credit: checkout.credit, // USD
      channels: checkout.channels,
    });
  } catch (e) {
    const reason = e instanceof Error ? e.message : String(e);
    await sql`select private.checkout_failed(${checkout.reference}, ${reason})`;
    if (e instanceof PaystackError && e.transient) {
      throw new HttpError(
        503,
        "payments_unavailable",
        "the payment provider is not answering right now; nothing was charged, please try again in a minute",
      );
    }
    if (e instanceof PaystackError) {
      throw new HttpError(502, "payment_refused", `the payment provider refused the checkout: ${e.message}`);
    }
    throw e;
  }
}));
