// The receipt of one payment, #/receipt/<reference>, from public.my_receipts (RLS: the signed-in user's own):
// merchant, reference, date, what was paid in which currency and how, the USD credit it bought, refunds, and
// the exchange rate when the price was derived from the USD one. Printable: print CSS drops everything else.
import { gen, root, sb, state } from "./app.ts";
import { $, esc, fmtDateTime, setHtml } from "./html.ts";
import { isPositive, money, price } from "./money.ts";
import { channelName, PAYMENT_STATUS } from "./payments.ts";
import { topbar } from "./views.ts";

export interface Receipt {
  reference: string;
  paid_at: string | null;
  plan_name: string;
  currency: string;
  exponent: number;
  amount_subunits: number;
  /** What the card or wallet was charged; more than the price when Paystack's fees are passed on. */
  charged_subunits: number | null;
  channel: string | null;
  credit: string;
  refunded_subunits: number;
  credit_reversed: string;
  fx_rate: string | null;
  status: string;
  merchant_name: string;
}
export const RECEIPT_COLS =
  "reference,paid_at,plan_name,currency,exponent,amount_subunits,charged_subunits,channel,credit::text,refunded_subunits,credit_reversed::text,fx_rate::text,status,merchant_name";

const rateFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 6 });

/** "1 USD = 1,500 NGN" from the recorded rate (local currency per USD), formatted from the exact string. */
export const rateText = (rate: string, currency: string) => `1 USD = ${rateFmt.format(rate as unknown as number)} ${currency}`;

export function receiptHtml(r: Receipt): string {
  const paid = (n: number) => esc(price(n, r.currency, r.exponent));
  const line = (label: string, html: string, id: string) => `<div><dt>${label}</dt><dd data-testid="receipt-${id}">${html}</dd></div>`;
  const refunded = r.refunded_subunits > 0 || isPositive(r.credit_reversed);
  return `<article class="card receipt" aria-labelledby="receipt-h" data-testid="receipt">
  <header class="receipt-head"><p class="merchant" data-testid="receipt-merchant">${esc(r.merchant_name)}</p>
    <h1 id="receipt-h">Receipt</h1></header>
  <dl class="receipt-lines">
    ${line("Reference", `<code>${esc(r.reference)}</code>`, "reference")}
    ${line("Date", esc(fmtDateTime(r.paid_at)), "date")}
    ${line("Item", `${esc(r.plan_name)} credit pack`, "item")}
    ${line("Amount paid", `${paid(r.amount_subunits)} <span class="sub">${esc(r.currency)}</span>`, "amount")}
    ${Number(r.charged_subunits) > r.amount_subunits ? line("Charged, with fees", paid(Number(r.charged_subunits)), "charged") : ""}
    ${r.channel ? line("Paid by", esc(channelName(r.channel)), "channel") : ""}
    ${line("Credit granted", `${esc(money(r.credit))} <span class="sub">USD, LLM credit</span>`, "credit")}
    ${r.fx_rate ? line("Exchange rate", esc(rateText(r.fx_rate, r.currency)), "rate") : ""}
    ${refunded ? line("Refunded", paid(r.refunded_subunits), "refunded") : ""}
    ${refunded ? line("Credit taken back", `${esc(money(r.credit_reversed))} <span class="sub">USD</span>`, "reversed") : ""}
    ${line("Status", esc(PAYMENT_STATUS[r.status] ?? r.status), "status")}
  </dl>
  <p class="hint">Paid through Paystack. The credit is in US dollars and is spent on the LiteLLM proxy with your API key.</p>
</article>`;
}

const reference = () => /^#\/receipt\/(.+)$/.exec(location.hash)?.[1];

/** The reference in the address (#/receipt/<reference>), or null on any other page. */
export function receiptReference(): string | null {
  const ref = reference();
  if (!ref) return null;
  try {
    return decodeURIComponent(ref);
  } catch {
    return ref;
  }
}

export async function showReceipt(ref: string) {
  const my = gen;
  root.dataset.view = "receipt";
  document.title = `Receipt ${ref} · LLM credit`;
  root.innerHTML = `${topbar(state.email)}
<main id="main" class="wrap receipt-page" tabindex="-1">
  <nav class="receipt-actions no-print" aria-label="Receipt">
    <a href="#/">Back to your dashboard</a>
    <button type="button" class="small" data-action="print">Print</button>
  </nav>
  <div id="receipt" aria-live="polite"><p class="muted">Loading the receipt…</p></div>
</main>`;
  const { data, error } = await sb.from("my_receipts").select(RECEIPT_COLS).eq("reference", ref).maybeSingle();
  if (my !== gen || receiptReference() !== ref) return;
  const r = data as unknown as Receipt | null;
  if (error) {
    setHtml($("#receipt"), `<div class="banner danger" role="alert">We could not load this receipt (${esc(error.message)}). Please reload the page.</div>`);
  } else if (!r) {
    setHtml($("#receipt"), `<div class="banner warn" role="alert" data-testid="receipt-missing">We could not find a payment with reference <code>${esc(ref)}</code> on this account.</div>`);
  } else {
    document.title = `Receipt ${ref} · ${r.merchant_name}`;
    setHtml($("#receipt"), receiptHtml(r));
  }
  $<HTMLElement>("#main")?.focus();
}
