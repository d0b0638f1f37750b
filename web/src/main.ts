// The dashboard's entry: reads config.json, connects supabase-js, and routes clicks to the module of their
// concern: auth.ts (sign-in), router.ts (which page), dashboard.ts (the signed-in page and its data), key.ts
// (the key and its rotation), buy.ts (checkout and the return from Paystack), receipt.ts (a payment's receipt),
// notifications.ts (the unread count and the list), promo.ts (redeeming a promo code), ledger.ts (the
// statement as CSV).
// Pure renderers: views.ts (account, key, lots), prices.ts (buy panel), payments.ts (payment history).
import "./style.css";
import { createClient } from "@supabase/supabase-js";
import { connect, root, sb } from "./app.ts";
import { land, showAuth, signOut, takeAuthRedirect } from "./auth.ts";
import { buy, captureReturnReference, onPageShow, pickCurrency } from "./buy.ts";
import { loadConfig } from "./config.ts";
import { dismissPayment, load, onVisible, tick } from "./dashboard.ts";
import { esc } from "./html.ts";
import { confirmRotation, copy, dismissRotation, setLang, toggleReveal } from "./key.ts";
import { downloadLedger } from "./ledger.ts";
import { markRead } from "./notifications.ts";
import { redeem } from "./promo.ts";
import { onRoute, onSession } from "./router.ts";
import type { SnippetLang } from "./views.ts";

async function start() {
  captureReturnReference();
  const landing = takeAuthRedirect();
  try {
    const cfg = await loadConfig();
    connect(cfg, createClient(cfg.SUPABASE_URL, cfg.SUPABASE_PUBLISHABLE_KEY, { auth: { detectSessionInUrl: false } }));
  } catch (e) {
    root.innerHTML = `<main class="auth-page"><div class="banner danger" role="alert">${
      esc((e as Error).message)
    }</div></main>`;
    return;
  }
  // Before listening, so the first event already carries the session the link brought.
  await land(landing);
  // Supabase advises against awaiting other supabase calls inside this callback: hand off to a task.
  sb.auth.onAuthStateChange((_event, session) => setTimeout(() => onSession(session), 0));
  document.addEventListener("click", onClick);
  document.addEventListener("change", onChange);
  document.addEventListener("submit", onSubmit);
  document.addEventListener("visibilitychange", onVisible);
  globalThis.addEventListener("pageshow", onPageShow);
  globalThis.addEventListener("hashchange", onRoute);
  setInterval(tick, 1000);
}

function onClick(e: MouseEvent) {
  const target = (e.target as HTMLElement).closest<HTMLElement>("[data-action]");
  if (!target || target.tagName === "SELECT") return;
  const action = target.dataset.action;
  if (action === "auth-mode") return showAuth(target.dataset.mode as "signin" | "signup");
  if (action === "signout") return void signOut(target as HTMLButtonElement);
  if (action === "refresh") return void load();
  if (action === "reveal") return toggleReveal();
  if (action === "copy") return void copy(target as HTMLButtonElement, target.dataset.copy!);
  if (action === "buy") return void buy(target.dataset.plan!);
  if (action === "rotate") return confirmRotation();
  if (action === "dismiss-rotation") return dismissRotation();
  if (action === "dismiss-payment") return dismissPayment();
  if (action === "download-ledger") return void downloadLedger(target as HTMLButtonElement);
  if (action === "print") globalThis.print();
  if (action === "mark-read") return void markRead(target.dataset.id);
}

function onSubmit(e: SubmitEvent) {
  const form = e.target as HTMLFormElement;
  if (form.dataset.form !== "promo") return;
  e.preventDefault();
  void redeem(form);
}

function onChange(e: Event) {
  const t = e.target as HTMLSelectElement;
  if (t.dataset.action === "lang") setLang(t.value as SnippetLang);
  if (t.dataset.action === "currency") pickCurrency(t.value);
}

void start();
