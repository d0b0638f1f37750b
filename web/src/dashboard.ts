// The signed-in page: its layout, loading the user's rows (my_* views, prices) every few seconds, and
// rendering them through views.ts. RLS limits every row to the signed-in user.
import { gen, root, sb, state, userId } from "./app.ts";
import { renderBuy, returnReference, watchPayment } from "./buy.ts";
import { type DayRow, lastDays, usageChart } from "./chart.ts";
import { $, esc, setHtml } from "./html.ts";
import { renderKey, rotate, rotatedAway, rotationDone, tickRotation } from "./key.ts";
import { ledgerCard } from "./ledger.ts";
import { type Payment, PAYMENT_COLS, paymentsCard } from "./payments.ts";
import { chooseCurrency, type Price, PRICE_COLS } from "./prices.ts";
import { promoCard } from "./promo.ts";
import {
  type Account,
  account,
  ACCOUNT_COLS,
  banners,
  type Key,
  KEY_COLS,
  type Lot,
  LOT_COLS,
  lotsCard,
  rotateDialog,
  topbar,
  updatedText,
} from "./views.ts";

const REFRESH_MS = 15_000;
const PENDING_KEY_REFRESH_MS = 1_000;

let refreshTimer: ReturnType<typeof setTimeout> | undefined;
let loadSeq = 0; // loads overlap (timer, Refresh, a rotation finishing): an older answer never overwrites a newer one
let appliedSeq = 0;

export const stopRefresh = () => clearTimeout(refreshTimer);

export function showDashboard() {
  root.dataset.view = "dashboard";
  document.title = "Your credit · LLM credit";
  root.innerHTML = `${topbar(state.email)}
<main id="main" class="wrap" tabindex="-1">
  <h1 class="sr-only">Your LLM credit</h1>
  <div id="payment-status" aria-live="polite"></div>
  <div id="load-error" aria-live="polite"></div>
  <div id="banners"></div>
  <div class="grid">
    <section id="account" class="card account" aria-labelledby="account-h"><h2 id="account-h">Your credit</h2><p class="muted">Loading…</p></section>
    <section id="key" class="card" aria-labelledby="key-h"><h2 id="key-h">Your API key</h2><p class="muted">Loading…</p></section>
    <section id="usage" class="card" aria-labelledby="usage-h"><h2 id="usage-h">Daily spend, last 30 days</h2><div id="chart"></div><p><a href="#/usage">Usage by model</a></p></section>
    <section id="buy" class="card" aria-labelledby="buy-h" tabindex="-1"><h2 id="buy-h">Buy credit</h2></section>
    <section id="lots" class="card" aria-labelledby="lots-h"><h2 id="lots-h">Where your credit comes from</h2></section>
    <section id="promo" class="card" aria-labelledby="promo-h">${promoCard()}</section>
    <section id="payments" class="card" aria-labelledby="payments-h"><h2 id="payments-h">Payment history</h2></section>
    <section id="ledger" class="card" aria-labelledby="ledger-h">${ledgerCard()}</section>
  </div>
</main>
<p id="announce" class="sr-only" role="status" aria-live="polite"></p>
${rotateDialog()}`;
  const dialog = $<HTMLDialogElement>("#rotate-dialog")!;
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "rotate") return void rotate();
    $<HTMLElement>('[data-action="rotate"]')?.focus();
  });
  render(); // what an earlier visit loaded (back from a receipt), until the fresh answer is in
  void load();
  const ref = returnReference();
  if (ref) void watchPayment(ref, gen);
}

/** A visit back to the tab reloads at once (the timer may be far off). */
export function onVisible() {
  if (document.visibilityState === "visible" && userId && root.dataset.view === "dashboard") void load();
}

export async function load() {
  const my = gen;
  const seq = ++loadSeq;
  clearTimeout(refreshTimer);
  const since = lastDays()[0];
  const [acc, lots, key, pays, usage, prices, usual] = await Promise.all([
    sb.from("my_account").select(ACCOUNT_COLS).maybeSingle(),
    sb.from("my_lots").select(LOT_COLS).order("spend_order"),
    sb.from("my_key").select(KEY_COLS).maybeSingle(),
    sb.from("my_payments").select(PAYMENT_COLS).order("created_at", { ascending: false }).limit(50),
    sb.from("my_daily_usage").select("day,spend::text").gte("day", since).order("day"),
    sb.from("prices").select(PRICE_COLS).order("sort_order"),
    sb.from("my_currency").select("currency").maybeSingle(),
  ]);
  if (my !== gen || seq < appliedSeq) return;
  appliedSeq = seq;
  const failed = [acc, lots, key, pays, usage, prices, usual].find((r) => r.error)?.error;
  state.loadError = failed ? failed.message : null;
  if (!failed) {
    state.account = acc.data as unknown as Account | null;
    state.lots = (lots.data ?? []) as unknown as Lot[];
    state.key = key.data as unknown as Key | null;
    state.payments = (pays.data ?? []) as unknown as Payment[];
    state.usage = (usage.data ?? []) as unknown as DayRow[];
    state.prices = (prices.data ?? []) as unknown as Price[];
    const usualCurrency = (usual.data as { currency: string } | null)?.currency;
    state.currency = chooseCurrency(state.prices, state.currency, usualCurrency);
    state.loaded = true;
    // A rotation that stopped here (LiteLLM down, connection lost) and was finished by ops-sweep meanwhile.
    const r = state.rotation;
    if (r && (r.phase === "saved" || r.phase === "error") && rotatedAway(state.key, r.oldKeyId)) void rotationDone();
  }
  render();
  if (root.dataset.view !== "dashboard") return; // left for a receipt meanwhile: no more refreshes
  const waitingForKey = !state.key || state.key.status === "pending";
  refreshTimer = setTimeout(() => void load(), failed ? 5_000 : waitingForKey ? PENDING_KEY_REFRESH_MS : REFRESH_MS);
}

function render() {
  setHtml(
    $("#load-error"),
    state.loadError
      ? `<div class="banner danger" role="alert">We could not load your account (${
        esc(state.loadError)
      }). Retrying in a few seconds…</div>`
      : "",
  );
  if (!state.loaded) return;
  setHtml($("#banners"), banners(state.account, state.key));
  setHtml($("#account"), account(state.account, state.key));
  tick();
  renderKey();
  setHtml($("#chart"), usageChart(state.usage));
  renderBuy();
  setHtml($("#lots"), lotsCard(state.lots, state.prices));
  setHtml($("#payments"), paymentsCard(state.payments));
}

/** Every second: the "Updated … ago" line and a running rotation's progress. */
export function tick() {
  tickRotation();
  if (!state.account) return;
  const el = $("[data-ago]");
  const text = updatedText(state.account, state.key);
  if (el && el.textContent !== text) el.textContent = text;
}

export function dismissPayment() {
  setHtml($("#payment-status"), "");
  $<HTMLElement>("#main")?.focus();
}
