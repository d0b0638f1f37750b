// The billing page, #/billing: the saved card (public.payment_methods: brand, last4 and expiry only; the
// authorization code stays in private and never reaches the browser) with a Remove button, and the auto
// top-up settings form (public.auto_topup_settings, written through RLS; the database validates the pack,
// the currency and the cap). Both tables are the signed-in user's own rows only.
import { gen, root, sb, state } from "./app.ts";
import { $, esc, setHtml } from "./html.ts";
import { type Price, PRICE_COLS } from "./prices.ts";
import { sentence, topbar } from "./views.ts";

interface Card {
  id: number;
  brand: string | null;
  last4: string | null;
  exp_month: number | null;
  exp_year: number | null;
  bank: string | null;
}
interface Settings {
  enabled: boolean;
  threshold_usd: string;
  plan_code: string;
  currency: string;
  monthly_max_count: number | null;
  monthly_max_usd: string | null;
  disabled_reason: string | null;
  consecutive_failures: number;
}
const SETTINGS_COLS =
  "enabled,threshold_usd::text,plan_code,currency,monthly_max_count,monthly_max_usd::text,disabled_reason,consecutive_failures";

export const billingRoute = () => /^#\/billing\/?$/.test(location.hash);

export async function showBilling() {
  const my = gen;
  root.dataset.view = "billing";
  document.title = "Billing · LLM credit";
  root.innerHTML = `${topbar(state.email)}
<main id="main" class="wrap" tabindex="-1">
  <nav class="no-print"><a href="#/">Back to your dashboard</a></nav>
  <h1>Billing</h1>
  <div class="grid">
    <section id="cards" class="card" aria-labelledby="cards-h"><h2 id="cards-h">Saved card</h2><p class="muted">Loading…</p></section>
    <section id="topup" class="card" aria-labelledby="topup-h"><h2 id="topup-h">Auto top-up</h2><p class="muted">Loading…</p></section>
  </div>
</main>`;
  const [cards, settings, prices] = await Promise.all([
    sb.from("payment_methods").select("id,brand,last4,exp_month,exp_year,bank").order("updated_at", {
      ascending: false,
    }),
    sb.from("auto_topup_settings").select(SETTINGS_COLS).maybeSingle(),
    sb.from("prices").select(PRICE_COLS),
  ]);
  if (my !== gen || !billingRoute()) return;
  const failed = cards.error ?? settings.error ?? prices.error;
  if (failed) {
    setHtml(
      $("#topup"),
      `<div class="banner danger" role="alert">We could not load your billing settings ` +
        `(${esc(failed.message)}). Please reload the page.</div>`,
    );
    return;
  }
  const list = (cards.data ?? []) as Card[];
  setHtml($("#cards"), cardsHtml(list));
  setHtml(
    $("#topup"),
    topupHtml(settings.data as unknown as Settings | null, (prices.data ?? []) as unknown as Price[], list),
  );
  $("#topup-form")?.addEventListener("submit", (e) => void save(e));
  for (const b of document.querySelectorAll<HTMLButtonElement>("[data-remove-card]")) {
    b.addEventListener("click", () => void removeCard(Number(b.dataset.removeCard)));
  }
}

const two = (n: number | null) => String(n ?? "").padStart(2, "0");

function cardsHtml(cards: Card[]): string {
  const head = `<h2 id="cards-h">Saved card</h2>`;
  if (!cards.length) {
    return `${head}<p class="muted" data-test="no-card">No saved card. Pay for a pack by card and it is kept for ` +
      `auto top-up; mobile money and bank payments cannot be charged again without you.</p>`;
  }
  return head +
    cards.map((c) =>
      `<p data-test="saved-card"><strong>${esc((c.brand ?? "card").toUpperCase())}</strong> ending in ` +
      `<span data-test="card-last4">${esc(c.last4 ?? "????")}</span>, expires ${two(c.exp_month)}/${esc(c.exp_year)}` +
      `${
        c.bank ? ` · ${esc(c.bank)}` : ""
      } <button type="button" class="small" data-remove-card="${c.id}">Remove</button></p>`
    ).join("");
}

function topupHtml(s: Settings | null, prices: Price[], cards: Card[]): string {
  const plans = [...new Map(prices.map((p) => [p.plan, p.name])).entries()];
  const currencies = [...new Set(prices.map((p) => p.currency))];
  const opt = (v: string, label: string, on: boolean) =>
    `<option value="${esc(v)}"${on ? " selected" : ""}>${esc(label)}</option>`;
  const off = s && !s.enabled && s.disabled_reason
    ? `<div class="banner warn" role="status" data-test="topup-disabled">Auto top-up switched itself off: ` +
      `${esc(sentence(s.disabled_reason))}</div>`
    : "";
  const noCard = cards.length ? "" : `<p class="muted">Without a saved card we send you a low-balance ` +
    `notification with a link to buy the same pack instead.</p>`;
  return `<h2 id="topup-h">Auto top-up</h2>${off}${noCard}
<form id="topup-form" class="stack">
  <label><input type="checkbox" name="enabled"${s?.enabled ?? true ? " checked" : ""}> Top up automatically</label>
  <label>When my credit falls below (USD) <input name="threshold_usd" type="number" min="0.01" step="0.01" required
    value="${esc(s?.threshold_usd ?? "1.00")}"></label>
  <label>Buy the pack <select name="plan_code">${
    plans.map(([code, name]) => opt(code, name, code === (s?.plan_code ?? plans[0]?.[0]))).join("")
  }</select></label>
  <label>Paying in <select name="currency">${
    currencies.map((c) => opt(c, c, c === (s?.currency ?? state.currency ?? currencies[0]))).join("")
  }</select></label>
  <label>At most this many top-ups a month <input name="monthly_max_count" type="number" min="1" max="100" step="1"
    value="${esc(s ? s.monthly_max_count ?? "" : 2)}"></label>
  <label>At most this amount a month (USD, optional) <input name="monthly_max_usd" type="number" min="0.01" step="0.01"
    value="${esc(s?.monthly_max_usd ?? "")}"></label>
  <button type="submit" class="primary">Save</button>
  <p id="topup-status" aria-live="polite"></p>
</form>`;
}

async function save(e: SubmitEvent) {
  e.preventDefault();
  const my = gen;
  const f = new FormData(e.target as HTMLFormElement);
  const text = (k: string) => String(f.get(k) ?? "").trim();
  // No user_id: its default is auth.uid(), and an upsert may only set the columns the user can update.
  const row = {
    enabled: f.get("enabled") === "on",
    threshold_usd: text("threshold_usd"), // a decimal string: PostgREST hands it to numeric as it is
    plan_code: text("plan_code"),
    currency: text("currency"),
    monthly_max_count: text("monthly_max_count") ? Number(text("monthly_max_count")) : null,
    monthly_max_usd: text("monthly_max_usd") || null,
  };
  const { error } = await sb.from("auto_topup_settings").upsert(row, { onConflict: "user_id" });
  if (my !== gen) return;
  if (!error) await showBilling();
  setHtml(
    $("#topup-status"),
    error
      ? `<span class="error" role="alert">Not saved: ${esc(sentence(error.message))}</span>`
      : `<span data-test="topup-saved">Saved.</span>`,
  );
}

async function removeCard(id: number) {
  const { error } = await sb.from("payment_methods").delete().eq("id", id);
  if (error) {
    setHtml($("#cards"), `<div class="banner danger" role="alert">${esc(error.message)}</div>`);
    return;
  }
  await showBilling();
}
