// Buying a pack: Paystack's redirect flow. checkout returns authorization_url (Paystack's hosted page),
// Paystack sends the user back to PAYSTACK_CALLBACK_URL (this page) with ?reference=..., and we wait for
// the webhook's result in public.checkouts / my_payments. (@paystack/inline-js's resumeTransaction(access_code)
// could open a popup instead, but it loads Paystack's script from the internet; the redirect needs nothing.)
import { FunctionsFetchError, FunctionsHttpError } from "@supabase/supabase-js";
import { gen, sb, sleep, state } from "./app.ts";
import { load } from "./dashboard.ts";
import { $, esc, setHtml } from "./html.ts";
import { type Payment, PAYMENT_COLS, paymentResult } from "./payments.ts";
import { buyCard } from "./prices.ts";
import { sentence } from "./views.ts";

const RETURN_KEY = "litellm-credits.return-reference";

/** Back from Paystack: keep the reference for the dashboard and tidy the address bar. */
export function captureReturnReference() {
  const q = new URLSearchParams(location.search);
  const ref = q.get("reference") ?? q.get("trxref");
  if (ref) {
    sessionStorage.setItem(RETURN_KEY, ref);
    history.replaceState(null, "", location.pathname + location.hash);
  }
}

export const returnReference = () => sessionStorage.getItem(RETURN_KEY);
export const forgetReturn = () => sessionStorage.removeItem(RETURN_KEY);

/** The plan a #/buy?plan=&currency= link asked for, focused once the buy panel shows it. */
let preselected: string | null = null;

/** #/buy?plan=<code>&currency=<cur> (one tap from a low-balance notification): picks that currency and plan. */
export function takeBuyLink(): boolean {
  const m = /^#\/buy\?(.*)$/.exec(location.hash);
  if (!m) return false;
  const q = new URLSearchParams(m[1]);
  if (q.get("currency")) state.currency = q.get("currency")!.toUpperCase();
  preselected = q.get("plan");
  history.replaceState(null, "", `${location.pathname}${location.search}#/`);
  return true;
}

export function renderBuy() {
  const status = $("#buy-status")?.innerHTML ?? "";
  setHtml($("#buy"), buyCard(state.prices, state.currency, state.buying));
  const el = $("#buy-status");
  if (el && status && !el.innerHTML) el.innerHTML = status;
  const pick = preselected && $<HTMLElement>(`[data-action="buy"][data-plan="${CSS.escape(preselected)}"]`);
  if (pick) {
    preselected = null;
    pick.classList.add("preselected");
    pick.scrollIntoView({ block: "center" });
    pick.focus();
  }
}

/** Back from Paystack through the browser's back button restores this page from the bfcache. */
export function onPageShow(e: PageTransitionEvent) {
  if (e.persisted && state.buying) {
    state.buying = null;
    renderBuy();
  }
}

/** A function's refusal as a sentence for the user (checkout's wording unless told; promo.ts words its own). */
export async function describeFunctionError(
  error: unknown,
  failed = "The checkout did not start",
  service = "the payment service",
): Promise<string> {
  if (error instanceof FunctionsHttpError) {
    const res = error.context as Response;
    const body = await res.json().catch(() => null) as { message?: string } | null;
    if (res.status === 401) return "Your session has expired. Please sign out and sign in again.";
    if (body?.message) return sentence(body.message);
    return `${failed} (error ${res.status}). Please try again.`;
  }
  if (error instanceof FunctionsFetchError) {
    return `We could not reach ${service}. Check your connection and try again.`;
  }
  return `${failed}. Please try again in a minute.`;
}

/** The currency picker: the plans' prices in another currency (the checkout then locks that one). */
export function pickCurrency(currency: string) {
  if (state.buying) return;
  state.currency = currency;
  renderBuy();
}

export async function buy(plan: string) {
  if (state.buying) return;
  const my = gen;
  const currency = state.currency;
  state.buying = plan;
  renderBuy();
  setHtml($("#buy-status"), "");
  const { data, error } = await sb.functions.invoke<{ reference: string; authorization_url: string }>("checkout", {
    body: { plan, currency },
  });
  if (my !== gen) return;
  if (error || !data?.authorization_url) {
    state.buying = null;
    renderBuy();
    setHtml($("#buy-status"), `<p class="error" role="alert">${esc(await describeFunctionError(error))}</p>`);
    return;
  }
  $("#buy-status")!.textContent = "Taking you to Paystack…";
  location.assign(data.authorization_url);
}

/** Back from Paystack: wait for the webhook's verdict on this reference and say what happened. */
export async function watchPayment(reference: string, my: number) {
  const show = (s: Parameters<typeof paymentResult>[0]) =>
    my === gen && setHtml($("#payment-status"), paymentResult(s));
  show({ kind: "waiting", reference });
  const started = Date.now();
  let slow = false;
  while (my === gen && Date.now() - started < 15 * 60_000) {
    const [co, pay] = await Promise.all([
      sb.from("checkouts").select("reference,status,status_reason,credit::text").eq("reference", reference)
        .maybeSingle(),
      sb.from("my_payments").select(PAYMENT_COLS).eq("reference", reference).maybeSingle(),
    ]);
    if (my !== gen) return;
    const payment = pay.data as unknown as Payment | null;
    const checkout = co.data as { status: string; status_reason: string | null; credit: string } | null;
    if (payment) {
      forgetReturn();
      await load();
      return show({ kind: "paid", reference, credit: payment.credit, remaining: state.account?.remaining });
    }
    if (checkout?.status === "rejected") {
      forgetReturn();
      return show({ kind: "rejected", reference, reason: checkout.status_reason });
    }
    if (checkout?.status === "failed") {
      forgetReturn();
      return show({ kind: "failed", reference, reason: checkout.status_reason });
    }
    if (!co.error && !checkout) {
      forgetReturn();
      return show({ kind: "unknown", reference });
    }
    if (!slow && Date.now() - started > 45_000) {
      slow = true;
      show({ kind: "slow", reference });
    }
    await sleep(slow ? 5_000 : 700);
  }
}
