// Payments as the user sees them (public.my_payments): each in the currency it was charged in, how it was
// paid, the USD credit it bought, and a link to its receipt (public.my_receipts): merchant, reference, date,
// what was paid in which currency and how, the USD credit it bought, refunds, and the exchange rate when the
// price was derived from the USD one. Pure: rows in, HTML out.
import { esc, fmtDateTime } from "./html.ts";
import { isPositive, money, price } from "./money.ts";
import { sentence } from "./views.ts";

export interface Payment {
  reference: string;
  plan_code: string;
  plan_name: string;
  amount_subunits: number;
  currency: string;
  exponent: number;
  channel: string | null;
  fx_rate: string | null;
  credit: string;
  refunded_subunits: number;
  status: string;
  paid_at: string | null;
  created_at: string;
}
export const PAYMENT_COLS = [
  "reference,plan_code,plan_name,amount_subunits,currency,exponent,channel,fx_rate::text,credit::text",
  "refunded_subunits,status,paid_at,created_at",
].join(",");

export const PAYMENT_STATUS: Record<string, string> = {
  credited: "Credited",
  partially_refunded: "Partly refunded",
  refunded: "Refunded",
  disputed: "Disputed",
  reversed: "Reversed",
};

/** Paystack's channel names (what verify reports) in words; "" when Paystack did not say. */
const CHANNELS: Record<string, string> = {
  card: "Card",
  bank: "Bank account",
  ussd: "USSD",
  mobile_money: "Mobile money",
  bank_transfer: "Bank transfer",
  qr: "QR code",
};
export const channelName = (c: string | null | undefined) => (c ? CHANNELS[c] ?? c : "");

export const receiptHref = (reference: string) => `#/receipt/${encodeURIComponent(reference)}`;

const cell = (label: string, html: string, cls = "") =>
  `<td role="cell" data-label="${label}"${cls ? ` class="${cls}"` : ""}>${html}</td>`;
const col = (label: string, cls = "") =>
  `<th scope="col" role="columnheader"${cls ? ` class="${cls}"` : ""}>${label}</th>`;

function paymentRow(p: Payment): string {
  const paid = (n: number) => esc(price(n, p.currency, p.exponent));
  const back = p.refunded_subunits > 0 ? ` (${paid(p.refunded_subunits)} back)` : "";
  const receipt = `<a href="${esc(receiptHref(p.reference))}">Receipt` +
    `<span class="sr-only"> for ${esc(p.reference)}</span></a>`;
  return `<tr role="row">${cell("Date", esc(fmtDateTime(p.paid_at ?? p.created_at)))}${cell("Plan", esc(p.plan_name))}
    ${cell("Paid", paid(p.amount_subunits), "num")}${cell("Paid by", esc(channelName(p.channel) || "–"))}
    ${cell("Credit", esc(money(p.credit)), "num")}
    ${cell("Status", `${esc(PAYMENT_STATUS[p.status] ?? p.status)}${back}`)}
    ${cell("Reference", `<code class="ref">${esc(p.reference)}</code> ${receipt}`)}</tr>`;
}

export function paymentsCard(pays: Payment[]): string {
  const title = `<h2 id="payments-h">Payment history</h2>`;
  if (!pays.length) return `${title}\n  <p>No payments yet.</p>`;
  const head = col("Date") + col("Plan") + col("Paid", "num") + col("Paid by") + col("Credit", "num") + col("Status") +
    col("Reference");
  return `${title}
  <div class="table-wrap" tabindex="0" role="region" aria-labelledby="payments-h">
    <table class="stack" role="table" aria-labelledby="payments-h" data-testid="payments">
    <thead role="rowgroup"><tr role="row">${head}</tr></thead>
    <tbody role="rowgroup">${pays.map(paymentRow).join("")}</tbody></table></div>`;
}

type Outcome = {
  kind: "waiting" | "paid" | "rejected" | "failed" | "unknown" | "slow";
  reference: string;
  credit?: string;
  reason?: string | null;
  remaining?: string;
};

/** The outcome of a return from Paystack, in words. */
export function paymentResult(state: Outcome): string {
  const ref = `<code>${esc(state.reference)}</code>`;
  const dismiss = `<button type="button" class="small" data-action="dismiss-payment">Dismiss</button>`;
  const banner = (kind: string, html: string) =>
    `<div class="banner ${kind}" data-testid="payment-result">${html}</div>`;
  switch (state.kind) {
    case "waiting":
      return banner(
        "info",
        `<span class="spinner" aria-hidden="true"></span>` +
          `Confirming your payment with Paystack… (reference ${ref})`,
      );
    case "slow":
      return banner(
        "warn",
        `Paystack has not confirmed this payment yet (reference ${ref}). This can take a minute, ` +
          "and a few minutes for mobile money or a bank transfer (approve it on your phone or in your bank's app); " +
          "this page updates by itself when it does. If you cancelled the payment, nothing was charged.",
      );
    case "paid": {
      const now = state.remaining ? `; you now have ${esc(money(state.remaining))}` : "";
      return banner(
        "ok",
        `<strong>Payment received.</strong> ${esc(money(state.credit))} of credit was added ` +
          `to your key${now}. <a href="${esc(receiptHref(state.reference))}">View the receipt</a> ${dismiss}`,
      );
    }
    case "rejected":
      return banner(
        "danger",
        `<strong>This payment was not credited.</strong> ${esc(sentence(state.reason))} ` +
          `If money left your account, contact support and quote reference ${ref}. ${dismiss}`,
      );
    case "failed":
      return banner(
        "danger",
        `<strong>The checkout could not be started.</strong> ${esc(sentence(state.reason))} ` +
          `Nothing was charged; please try again. ${dismiss}`,
      );
    default:
      return banner(
        "warn",
        `We could not find payment ${ref} on this account. If you paid while signed in as ` +
          `someone else, sign in with that account. ${dismiss}`,
      );
  }
}

// ---------- receipt ----------

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
export const RECEIPT_COLS = [
  "reference,paid_at,plan_name,currency,exponent,amount_subunits,charged_subunits,channel,credit::text",
  "refunded_subunits,credit_reversed::text,fx_rate::text,status,merchant_name",
].join(",");

const rateFmt = new Intl.NumberFormat(undefined, { maximumFractionDigits: 6 });

/** "1 USD = 1,500 NGN" from the recorded rate (local currency per USD), formatted from its exact string. */
export const rateText = (rate: string, currency: string) =>
  `1 USD = ${rateFmt.format(rate as unknown as number)} ${currency}`;

export function receiptHtml(r: Receipt): string {
  const paid = (n: number) => esc(price(n, r.currency, r.exponent));
  const line = (label: string, html: string, id: string) =>
    `<div><dt>${label}</dt><dd data-testid="receipt-${id}">${html}</dd></div>`;
  const refunded = r.refunded_subunits > 0 || isPositive(r.credit_reversed);
  const charged = Number(r.charged_subunits);
  const lines = [
    line("Reference", `<code>${esc(r.reference)}</code>`, "reference"),
    line("Date", esc(fmtDateTime(r.paid_at)), "date"),
    line("Item", `${esc(r.plan_name)} credit pack`, "item"),
    line("Amount paid", `${paid(r.amount_subunits)} <span class="sub">${esc(r.currency)}</span>`, "amount"),
    charged > r.amount_subunits ? line("Charged, with fees", paid(charged), "charged") : "",
    r.channel ? line("Paid by", esc(channelName(r.channel)), "channel") : "",
    line("Credit granted", `${esc(money(r.credit))} <span class="sub">USD, LLM credit</span>`, "credit"),
    r.fx_rate ? line("Exchange rate", esc(rateText(r.fx_rate, r.currency)), "rate") : "",
    refunded ? line("Refunded", paid(r.refunded_subunits), "refunded") : "",
    refunded
      ? line("Credit taken back", `${esc(money(r.credit_reversed))} <span class="sub">USD</span>`, "reversed")
      : "",
    line("Status", esc(PAYMENT_STATUS[r.status] ?? r.status), "status"),
  ];
  return `<article class="card receipt" aria-labelledby="receipt-h" data-testid="receipt">
  <header class="receipt-head"><p class="merchant" data-testid="receipt-merchant">${esc(r.merchant_name)}</p>
    <h1 id="receipt-h">Receipt</h1></header>
  <dl class="receipt-lines">
    ${lines.filter(Boolean).join("\n    ")}
  </dl>
  <p class="hint">Paid through Paystack. The credit is in US dollars and is spent on the LiteLLM proxy with your
    API key.</p>
</article>`;
}
