// The buy panel: the plans' prices in the chosen currency (public.prices: active plan x enabled currency x
// active price) and the currency picker. Prices are Paystack subunits in that currency; the credit a pack
// buys is always US dollars (LiteLLM spends USD). Pure: rows in, HTML out.
import { esc } from "./html.ts";
import { money, price } from "./money.ts";

export interface Price {
  plan: string;
  name: string;
  currency: string;
  amount_subunits: number;
  exponent: number;
  credit: string;
  channels: string[];
  is_default: boolean;
  sort_order: number;
}
export const PRICE_COLS = "plan,name,currency,amount_subunits,exponent,credit::text,channels,is_default,sort_order";

/** The currencies on sale, the operator's default first, then by code. */
export function currenciesOf(prices: Price[]): string[] {
  const codes = [...new Set(prices.map((p) => p.currency))];
  const isDefault = (c: string) => prices.some((p) => p.currency === c && p.is_default);
  return codes.sort((a, b) => Number(isDefault(b)) - Number(isDefault(a)) || a.localeCompare(b));
}

/** The currency to show: the user's pick, else their usual one (my_currency), else the default; one on sale. */
export function chooseCurrency(prices: Price[], ...wanted: (string | null | undefined)[]): string | null {
  const on = currenciesOf(prices);
  return wanted.find((c) => c && on.includes(c)) ?? on[0] ?? null;
}

const currencyNames = (() => {
  try {
    return new Intl.DisplayNames(undefined, { type: "currency" });
  } catch {
    return null;
  }
})();
const currencyName = (code: string) => currencyNames?.of(code) ?? code;

function picker(codes: string[], chosen: string, busy: boolean): string {
  if (codes.length < 2) return `<p class="hint">Prices in ${esc(currencyName(chosen))} (${esc(chosen)}).</p>`;
  const options = codes.map((c) =>
    `<option value="${esc(c)}"${c === chosen ? " selected" : ""}>${esc(c)} · ${esc(currencyName(c))}</option>`
  );
  return `<div class="currency"><label class="field-label" for="currency">Pay in</label>
    <select id="currency" data-action="currency" data-testid="currency"${busy ? " disabled" : ""}>
      ${options.join("")}</select></div>`;
}

export function buyCard(prices: Price[], currency: string | null, busy: string | null): string {
  const head = `<h2 id="buy-h">Buy credit</h2>`;
  const shown = prices.filter((p) => p.currency === currency).sort((a, b) => a.sort_order - b.sort_order);
  const status = `<div id="buy-status" role="status" aria-live="polite"></div>`;
  if (!currency || !shown.length) return `${head}<p>No plans are on sale right now.</p>${status}`;
  const items = shown.map((p) => {
    const amount = price(p.amount_subunits, p.currency, p.exponent);
    const buttonAttrs = `type="button" class="primary" data-action="buy" data-plan="${esc(p.plan)}"` +
      (busy ? " disabled" : "");
    const label = busy === p.plan
      ? "Opening checkout…"
      : `Buy ${esc(p.name)}<span class="sr-only"> for ${esc(amount)}</span>`;
    return `<li class="plan"><h3>${esc(p.name)}</h3>
      <p class="plan-price" data-testid="price-${esc(p.plan)}"><span class="sr-only">Pay </span>${esc(amount)}</p>
      <p class="plan-credit">${esc(money(p.credit))} of credit</p>
      <button ${buttonAttrs}>${label}</button></li>`;
  }).join("");
  return `${head}
  <p class="hint">Every pack adds the credit shown, in US dollars, to your key's budget. You pay on Paystack's secure
    page and come back here.</p>
  ${picker(currenciesOf(prices), currency, !!busy)}
  <ul class="plans">${items}</ul>
  ${status}`;
}
