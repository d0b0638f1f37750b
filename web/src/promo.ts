// The promo code form: redeem-promo (the function checks the code, once per user, and raises the key's
// max_budget); the promo lot then shows apart in "Where your credit comes from" (views.ts lotsCard).
import { sb } from "./app.ts";
import { describeFunctionError } from "./buy.ts";
import { load } from "./dashboard.ts";
import { $, esc, fmtDate, setHtml } from "./html.ts";
import { money } from "./money.ts";

/** The card's content (static: the dashboard's refreshes never re-render it, so typing is not lost). */
export function promoCard(): string {
  return `<h2 id="promo-h">Promo code</h2>
  <form data-form="promo" class="promo-form">
    <label class="field-label" for="promo-code">Code</label>
    <div class="copyrow"><input id="promo-code" name="code" autocomplete="off" maxlength="60" required spellcheck="false">
    <button type="submit" data-testid="redeem">Redeem</button></div>
  </form>
  <p class="hint">Promo credit is spent before paid credit, the one expiring soonest first; what is left of it at expiry lapses. Paid credit never expires.</p>
  <p id="promo-status" aria-live="polite" data-testid="promo-status"></p>`;
}

export async function redeem(form: HTMLFormElement) {
  const input = form.querySelector<HTMLInputElement>("input")!;
  const button = form.querySelector<HTMLButtonElement>("button")!;
  const code = input.value.trim();
  if (!code || button.disabled) return;
  button.disabled = true;
  setHtml($("#promo-status"), "Redeeming…");
  const { data, error } = await sb.functions.invoke("redeem-promo", { body: { code } });
  button.disabled = false;
  if (error) {
    const why = await describeFunctionError(error, "The code was not redeemed", "the server");
    return setHtml($("#promo-status"), `<span class="error">${esc(why)}</span>`);
  }
  input.value = "";
  const until = data.expires_at ? `, to use by ${fmtDate(data.expires_at)}` : "";
  setHtml($("#promo-status"), esc(`Added ${money(data.amount)} of promo credit${until}.`));
  void load();
}
