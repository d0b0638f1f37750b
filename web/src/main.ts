// The dashboard: sign-in, then the user's credit, key, usage, plans and payments. It reads the my_* views
// and public.plans / public.checkouts through supabase-js (RLS limits every row to the signed-in user)
// and calls the checkout and rotate-key functions; nothing else. State lives here; views.ts renders it.
//
// Payments use Paystack's redirect flow: checkout returns authorization_url (Paystack's hosted page),
// Paystack sends the user back to PAYSTACK_CALLBACK_URL (this page) with ?reference=..., and we wait for
// the webhook's result in public.checkouts / my_payments. (@paystack/inline-js's resumeTransaction(access_code)
// could open a popup instead, but it loads Paystack's script from the internet; the redirect needs nothing.)
import "./style.css";
import { createClient, FunctionsFetchError, FunctionsHttpError, type Session, type SupabaseClient } from "@supabase/supabase-js";
import { Captcha } from "./captcha.ts";
import { usageChart, lastDays, type DayRow } from "./chart.ts";
import { type Config, loadConfig } from "./config.ts";
import { $, esc, setHtml } from "./html.ts";
import { money } from "./money.ts";
import {
  type Account,
  account,
  ACCOUNT_COLS,
  banners,
  buyCard,
  type Key,
  KEY_COLS,
  keyCard,
  LOT_COLS,
  type Lot,
  type Payment,
  PAYMENT_COLS,
  paymentResult,
  paymentsCard,
  type Plan,
  PLAN_COLS,
  lotsCard,
  rotateDialog,
  type Rotation,
  rotationBusy,
  rotationText,
  sentence,
  snippet,
  type SnippetLang,
  updatedText,
} from "./views.ts";

const root = document.getElementById("app")!;
const RETURN_KEY = "litellm-credits.return-reference";
const REFRESH_MS = 15_000;
const PENDING_KEY_REFRESH_MS = 1_000;

let cfg: Config;
let sb: SupabaseClient;
let userId: string | null = null;
let gen = 0; // bumped on every sign-in/out: answers for a previous user are dropped
let refreshTimer: ReturnType<typeof setTimeout> | undefined;
let loadSeq = 0; // loads overlap (timer, Refresh, a rotation finishing): an older answer never overwrites a newer one
let appliedSeq = 0;
let captcha: Captcha | null = null; // the sign-in/sign-up form's widget, when config.json turns CAPTCHA on
type Notice = { kind: "ok" | "danger"; text: string };
let authNotice: Notice | null = null; // shown once on the next sign-in form (e.g. a confirmation link that failed)

interface State {
  email: string;
  account: Account | null;
  lots: Lot[];
  key: Key | null;
  payments: Payment[];
  usage: DayRow[];
  plans: Plan[];
  revealed: boolean;
  lang: SnippetLang;
  buying: string | null;
  rotation: Rotation | null;
  loadError: string | null;
  loaded: boolean;
}
const fresh = (email = ""): State => ({
  email, account: null, lots: [], key: null, payments: [], usage: [], plans: [], revealed: false, lang: "curl", buying: null, rotation: null, loadError: null, loaded: false,
});
let state = fresh();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ---------------------------------------------------------------- start

function captureReturnReference() {
  const q = new URLSearchParams(location.search);
  const ref = q.get("reference") ?? q.get("trxref");
  if (ref) {
    sessionStorage.setItem(RETURN_KEY, ref);
    history.replaceState(null, "", location.pathname + location.hash);
  }
}

/**
 * Back from the emailed confirmation link: Auth redirects here with a session, or an error, in the URL
 * fragment (GoTrue's implicit flow). Read once and removed from the address bar.
 */
function takeAuthRedirect(): { session?: { access_token: string; refresh_token: string }; error?: string } {
  const p = new URLSearchParams(location.hash.slice(1));
  const access_token = p.get("access_token");
  const refresh_token = p.get("refresh_token");
  const error = p.get("error_code") ?? p.get("error");
  if (!access_token && !error) return {};
  history.replaceState(null, "", location.pathname + location.search);
  if (access_token && refresh_token) return { session: { access_token, refresh_token } };
  return { error: error ?? "unknown" };
}

async function start() {
  captureReturnReference();
  const landing = takeAuthRedirect();
  try {
    cfg = await loadConfig();
  } catch (e) {
    root.innerHTML = `<main class="auth-page"><div class="banner danger" role="alert">${esc((e as Error).message)}</div></main>`;
    return;
  }
  sb = createClient(cfg.SUPABASE_URL, cfg.SUPABASE_PUBLISHABLE_KEY, { auth: { detectSessionInUrl: false } });
  // Before listening, so the first event already carries the session the link brought.
  if (landing.session && (await sb.auth.setSession(landing.session)).error) landing.error = "session_refused";
  if (landing.error) {
    authNotice = {
      kind: "danger",
      text: landing.error === "otp_expired"
        ? "That confirmation link is invalid or has expired (each link works once). If you confirmed already, sign in; otherwise create the account again with the same address to get a new link."
        : "That link could not sign you in. Please sign in with your email and password.",
    };
  }
  // Supabase advises against awaiting other supabase calls inside this callback: hand off to a task.
  sb.auth.onAuthStateChange((_event, session) => setTimeout(() => onSession(session), 0));
  document.addEventListener("click", onClick);
  document.addEventListener("change", onChange);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && userId) void load();
  });
  // Back from Paystack through the browser's back button restores this page from the bfcache.
  globalThis.addEventListener("pageshow", (e: PageTransitionEvent) => {
    if (e.persisted && state.buying) {
      state.buying = null;
      renderBuy();
    }
  });
  setInterval(tick, 1000);
}

function onSession(session: Session | null) {
  const id = session?.user.id ?? null;
  if (id === userId && root.dataset.view) return; // token refresh or the same user: nothing to redraw
  userId = id;
  gen++;
  clearTimeout(refreshTimer);
  state = fresh(session?.user.email ?? "");
  if (session) showDashboard();
  else showAuth("signin");
}

// ---------------------------------------------------------------- sign in / sign up

const brand = `<h1 class="brand-big">LLM credit</h1>
  <p class="tagline">Prepaid credit for the LiteLLM proxy. Sign up, confirm your email and get $2.00 free; every pack gives you twice what you pay.</p>`;

function showAuth(mode: "signin" | "signup", notice: Notice | null = authNotice) {
  authNotice = null;
  root.dataset.view = "auth";
  const signup = mode === "signup";
  document.title = `${signup ? "Create an account" : "Sign in"} · LLM credit`;
  root.innerHTML = `<main id="main" class="auth-page">
  ${brand}
  <form id="auth-form" class="card auth-card" novalidate data-mode="${mode}" aria-labelledby="auth-h">
    <h2 id="auth-h">${signup ? "Create your account" : "Sign in"}</h2>
    ${notice ? `<p class="banner ${notice.kind}" role="${notice.kind === "ok" ? "status" : "alert"}" data-testid="auth-notice">${esc(notice.text)}</p>` : ""}
    <label for="email">Email</label>
    <input id="email" name="email" type="email" autocomplete="email" required>
    <label for="password">Password</label>
    <input id="password" name="password" type="password" autocomplete="${signup ? "new-password" : "current-password"}" required minlength="6"
      ${signup ? 'aria-describedby="password-hint"' : ""}>
    ${signup ? `<p id="password-hint" class="hint">At least 6 characters.</p>` : ""}
    ${cfg.captcha ? `<div id="captcha" class="captcha" data-testid="captcha" data-provider="${esc(cfg.captcha.provider)}"></div>` : ""}
    <p id="auth-error" class="error" role="alert"></p>
    <button type="submit" class="primary wide">${signup ? "Create account" : "Sign in"}</button>
    <p class="switch">${signup ? "Already have an account?" : "New here?"}
      <button type="button" class="link" data-action="auth-mode" data-mode="${signup ? "signin" : "signup"}">${signup ? "Sign in" : "Create an account"}</button></p>
  </form>
</main>`;
  const form = $<HTMLFormElement>("#auth-form")!;
  form.addEventListener("submit", (e) => {
    e.preventDefault();
    void submitAuth(form, signup);
  });
  captcha = cfg.captcha ? new Captcha(cfg.captcha.provider, cfg.captcha.siteKey) : null;
  captcha?.mount($("#captcha")!).catch((e: Error) => ($("#auth-error")!.textContent = e.message));
  $<HTMLInputElement>("#email")?.focus();
}

/** After sign-up: the account exists, but it (and its free credit) waits for the emailed link. */
function showCheckEmail(email: string) {
  root.dataset.view = "auth";
  document.title = "Check your email · LLM credit";
  root.innerHTML = `<main id="main" class="auth-page">
  ${brand}
  <section class="card auth-card" aria-labelledby="check-h">
    <h2 id="check-h" tabindex="-1">Check your email</h2>
    <p>We sent a confirmation link to <strong data-testid="check-email-address">${esc(email)}</strong>. Open it to finish signing up:
      your $2.00 of free credit is added when you do.</p>
    <p class="hint">Nothing after a few minutes? Look in your spam folder, or create the account again with the same address to get a new link.</p>
    <button type="button" class="link" data-action="auth-mode" data-mode="signin">Back to sign in</button>
  </section>
</main>`;
  $<HTMLElement>("#check-h")?.focus();
}

function authMessage(msg: string, signup: boolean): string {
  if (/invalid login credentials/i.test(msg)) return "That email and password do not match an account. Check them, or create an account.";
  if (/already registered|already exists/i.test(msg)) return "An account with this email already exists: sign in instead.";
  if (/email not confirmed/i.test(msg)) return "Please confirm your email address first: open the link we sent you.";
  if (/captcha/i.test(msg)) return "The CAPTCHA check failed. Please complete it again.";
  if (/only request this after/i.test(msg)) return `We just sent you a link. ${msg}`;
  if (/failed to fetch|network|load failed/i.test(msg)) return "We could not reach the server. Check your connection and try again.";
  if (/password/i.test(msg) && signup) return `${msg.replace(/\.$/, "")}.`;
  return msg || "Something went wrong. Please try again.";
}

async function submitAuth(form: HTMLFormElement, signup: boolean) {
  const email = ($<HTMLInputElement>("#email", form)!.value || "").trim();
  const password = $<HTMLInputElement>("#password", form)!.value;
  const err = $("#auth-error", form)!;
  const button = $<HTMLButtonElement>("button[type=submit]", form)!;
  if (!email || !/^[^\s@]+@[^\s@]+$/.test(email)) return showFieldError(err, "#email", "Enter your email address, like name@example.com.");
  if (password.length < 6) return showFieldError(err, "#password", "Enter a password of at least 6 characters.");
  if (captcha && !captcha.token) {
    err.textContent = "Please complete the CAPTCHA check.";
    return;
  }
  err.textContent = "";
  button.disabled = true;
  button.textContent = signup ? "Creating account…" : "Signing in…";
  const captchaToken = captcha?.token || undefined;
  // The emailed link brings the user back to this page (Auth accepts it if it is the site URL or allowed).
  const { data, error } = signup
    ? await sb.auth.signUp({ email, password, options: { captchaToken, emailRedirectTo: location.origin + location.pathname } })
    : await sb.auth.signInWithPassword({ email, password, options: { captchaToken } });
  captcha?.reset(); // a token is good for one request
  if (error) {
    button.disabled = false;
    button.textContent = signup ? "Create account" : "Sign in";
    err.textContent = authMessage(error.message, signup);
    return;
  }
  if (signup && !data.session) showCheckEmail(email);
  // Otherwise onAuthStateChange(SIGNED_IN) shows the dashboard.
}

function showFieldError(err: HTMLElement, field: string, msg: string) {
  err.textContent = msg;
  const input = $<HTMLInputElement>(field)!;
  input.setAttribute("aria-invalid", "true");
  input.setAttribute("aria-describedby", "auth-error");
  input.focus();
}

// ---------------------------------------------------------------- dashboard

function showDashboard() {
  root.dataset.view = "dashboard";
  document.title = "Your credit · LLM credit";
  root.innerHTML = `<a class="skip" href="#main">Skip to content</a>
<header class="topbar"><div class="wrap topbar-inner">
  <span class="brand">LLM credit</span>
  <span class="who" data-testid="user-email">${esc(state.email)}</span>
  <button type="button" class="small" data-action="signout">Sign out</button>
</div></header>
<main id="main" class="wrap" tabindex="-1">
  <h1 class="sr-only">Your LLM credit</h1>
  <div id="payment-status" aria-live="polite"></div>
  <div id="load-error" aria-live="polite"></div>
  <div id="banners"></div>
  <div class="grid">
    <section id="account" class="card account" aria-labelledby="account-h"><h2 id="account-h">Your credit</h2><p class="muted">Loading…</p></section>
    <section id="key" class="card" aria-labelledby="key-h"><h2 id="key-h">Your API key</h2><p class="muted">Loading…</p></section>
    <section id="usage" class="card" aria-labelledby="usage-h"><h2 id="usage-h">Daily spend, last 30 days</h2><div id="chart"></div></section>
    <section id="buy" class="card" aria-labelledby="buy-h" tabindex="-1"><h2 id="buy-h">Buy credit</h2></section>
    <section id="lots" class="card" aria-labelledby="lots-h"><h2 id="lots-h">Where your credit comes from</h2></section>
    <section id="payments" class="card" aria-labelledby="payments-h"><h2 id="payments-h">Payment history</h2></section>
  </div>
</main>
<p id="announce" class="sr-only" role="status" aria-live="polite"></p>
${rotateDialog()}`;
  const dialog = $<HTMLDialogElement>("#rotate-dialog")!;
  dialog.addEventListener("close", () => {
    if (dialog.returnValue === "rotate") return void rotate();
    $<HTMLElement>('[data-action="rotate"]')?.focus();
  });
  void load();
  const ref = sessionStorage.getItem(RETURN_KEY);
  if (ref) void watchPayment(ref, gen);
}

async function load() {
  const my = gen;
  const seq = ++loadSeq;
  clearTimeout(refreshTimer);
  const since = lastDays()[0];
  const [acc, lots, key, pays, usage, plans] = await Promise.all([
    sb.from("my_account").select(ACCOUNT_COLS).maybeSingle(),
    sb.from("my_lots").select(LOT_COLS).order("created_at").order("lot_id"),
    sb.from("my_key").select(KEY_COLS).maybeSingle(),
    sb.from("my_payments").select(PAYMENT_COLS).order("created_at", { ascending: false }).limit(50),
    sb.from("my_daily_usage").select("day,spend::text").gte("day", since).order("day"),
    state.plans.length ? Promise.resolve({ data: state.plans, error: null }) : sb.from("plans").select(PLAN_COLS).order("sort_order"),
  ]);
  if (my !== gen || seq < appliedSeq) return;
  appliedSeq = seq;
  const failed = [acc, lots, key, pays, usage, plans].find((r) => r.error)?.error;
  state.loadError = failed ? failed.message : null;
  if (!failed) {
    state.account = acc.data as unknown as Account | null;
    state.lots = (lots.data ?? []) as unknown as Lot[];
    state.key = key.data as unknown as Key | null;
    state.payments = (pays.data ?? []) as unknown as Payment[];
    state.usage = (usage.data ?? []) as unknown as DayRow[];
    state.plans = (plans.data ?? []) as unknown as Plan[];
    state.loaded = true;
    // A rotation that stopped here (LiteLLM down, connection lost) and was finished by ops-sweep meanwhile.
    const r = state.rotation;
    if (r && (r.phase === "saved" || r.phase === "error") && rotatedAway(state.key, r.oldKeyId)) void rotationDone();
  }
  render();
  const waitingForKey = !state.key || state.key.status === "pending";
  refreshTimer = setTimeout(() => void load(), failed ? 5_000 : waitingForKey ? PENDING_KEY_REFRESH_MS : REFRESH_MS);
}

function render() {
  setHtml($("#load-error"), state.loadError
    ? `<div class="banner danger" role="alert">We could not load your account (${esc(state.loadError)}). Retrying in a few seconds…</div>`
    : "");
  if (!state.loaded) return;
  setHtml($("#banners"), banners(state.account, state.key));
  setHtml($("#account"), account(state.account, state.key));
  tick();
  renderKey();
  setHtml($("#chart"), usageChart(state.usage));
  renderBuy();
  setHtml($("#lots"), lotsCard(state.lots, state.plans));
  setHtml($("#payments"), paymentsCard(state.payments));
}

function renderKey() {
  setHtml($("#key"), keyCard(state.key, cfg.LITELLM_PUBLIC_URL, state.revealed, state.lang, state.rotation));
  tickRotation();
}
function renderBuy() {
  const status = $("#buy-status")?.innerHTML ?? "";
  setHtml($("#buy"), buyCard(state.plans, state.buying));
  const el = $("#buy-status");
  if (el && status && !el.innerHTML) el.innerHTML = status;
}

function tick() {
  tickRotation();
  if (!state.account) return;
  const el = $("[data-ago]");
  const text = updatedText(state.account, state.key);
  if (el && el.textContent !== text) el.textContent = text;
}

// ---------------------------------------------------------------- events

function onClick(e: MouseEvent) {
  const target = (e.target as HTMLElement).closest<HTMLElement>("[data-action]");
  if (!target || target.tagName === "SELECT") return;
  const action = target.dataset.action;
  if (action === "auth-mode") return showAuth(target.dataset.mode as "signin" | "signup");
  if (action === "signout") return void signOut(target as HTMLButtonElement);
  if (action === "refresh") return void load();
  if (action === "reveal") {
    state.revealed = !state.revealed;
    renderKey();
    return;
  }
  if (action === "copy") return void copy(target as HTMLButtonElement, target.dataset.copy!);
  if (action === "buy") return void buy(target.dataset.plan!);
  if (action === "rotate") return confirmRotation();
  if (action === "dismiss-rotation") {
    state.rotation = null;
    renderKey();
    $<HTMLElement>('[data-action="rotate"]')?.focus();
    return;
  }
  if (action === "dismiss-payment") {
    setHtml($("#payment-status"), "");
    $<HTMLElement>("#main")?.focus();
  }
}

function onChange(e: Event) {
  const t = e.target as HTMLSelectElement;
  if (t.dataset.action === "lang") {
    state.lang = t.value as SnippetLang;
    renderKey();
  }
}

async function signOut(button: HTMLButtonElement) {
  button.disabled = true;
  sessionStorage.removeItem(RETURN_KEY);
  // Local scope: this browser only. A failure (server down) still clears the local session.
  const { error } = await sb.auth.signOut({ scope: "local" });
  if (error) onSession(null);
}

async function copy(button: HTMLButtonElement, what: string) {
  const key = state.key?.key_value ?? "";
  const text = what === "base" ? cfg.LITELLM_PUBLIC_URL : what === "key" ? key : snippet(state.lang, cfg.LITELLM_PUBLIC_URL, key);
  let ok = true;
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // No clipboard API (insecure context, permission): copy through a hidden selection.
    const ta = document.createElement("textarea");
    ta.value = text;
    ta.setAttribute("readonly", "");
    ta.style.position = "fixed";
    ta.style.opacity = "0";
    document.body.append(ta);
    ta.select();
    ok = document.execCommand("copy");
    ta.remove();
  }
  const label = button.textContent;
  button.textContent = ok ? "Copied" : "Copy failed";
  $("#announce")!.textContent = ok ? `${what === "base" ? "Proxy URL" : what === "key" ? "Key" : "Example"} copied to the clipboard.` : "Copying failed: select the text and copy it by hand.";
  setTimeout(() => {
    if (button.isConnected) button.textContent = label;
  }, 2000);
}

// ---------------------------------------------------------------- key rotation
//
// rotate-key answers 200 {state: "done", key_masked}, 202 {state: "waiting", resume_in_seconds} (call again
// then), 409 no_active_key | rotation_in_progress, 429 too_soon, 503 (LiteLLM down: the rotation is saved
// and ops-sweep finishes it). The state machine is in SQL, so calling again always continues the same
// rotation; the only care here is never to call again once it is done (that would start a second one), so
// before every repeat call my_key is read: a new active key means someone (ops-sweep) finished it.

interface RotateAnswer {
  state: "done" | "waiting";
  key_masked?: string;
  max_budget?: string; // decimal, as LiteLLM confirmed it
  resume_in_seconds?: number;
}
const WATCH_MS = 3 * 60_000;
const WATCH_EVERY_MS = 2_000;

const rotatedAway = (key: Key | null, oldKeyId: string | null) => !!key && key.key_id !== oldKeyId && key.status === "active";

function setRotation(r: Rotation | null, say = "") {
  state.rotation = r;
  renderKey();
  if (say) $("#announce")!.textContent = say;
}

function tickRotation() {
  const el = $("[data-rotation-text]");
  const text = rotationText(state.rotation);
  if (el && el.textContent !== text) el.textContent = text;
}

function confirmRotation() {
  if (rotationBusy(state.rotation) || !state.key) return;
  // After a stop (LiteLLM down) the user already confirmed: "Finish rotating" continues at once.
  if (state.rotation?.phase === "saved") return void rotate();
  const dialog = $<HTMLDialogElement>("#rotate-dialog")!;
  const remaining = state.account ? ` (${money(state.account.remaining)})` : "";
  $("[data-rotate-remaining]", dialog)!.textContent = remaining;
  dialog.returnValue = "";
  dialog.showModal();
}

/** A function's error answer: HTTP status and the JSON body's error code and message (0 = no answer). */
async function functionError(error: unknown): Promise<{ status: number; code: string; message: string }> {
  if (error instanceof FunctionsHttpError) {
    const res = error.context as Response;
    const body = await res.json().catch(() => null) as { error?: string; message?: string } | null;
    return { status: res.status, code: body?.error ?? "", message: body?.message ?? "" };
  }
  return { status: 0, code: "", message: error instanceof Error ? error.message : "" };
}

async function rotate() {
  if (rotationBusy(state.rotation) || !state.key) return;
  const my = gen;
  const oldKeyId = state.rotation?.phase === "saved" ? state.rotation.oldKeyId : state.key.key_id;
  state.revealed = false; // the key on screen is about to stop working
  const running = () => setRotation({ phase: "running", since: Date.now(), oldKeyId }, "Rotating your key. This usually takes under a minute.");
  running();
  $<HTMLElement>("#rotation-status")?.focus();
  /** Done by someone else meanwhile? (my_key shows a new active key.) */
  const finishedElsewhere = async () => {
    const { data } = await sb.from("my_key").select(KEY_COLS).maybeSingle();
    return my === gen && rotatedAway(data as unknown as Key | null, oldKeyId);
  };
  for (let call = 0; ; call++) {
    const { data, error } = await sb.functions.invoke<RotateAnswer>("rotate-key", { body: {} });
    if (my !== gen) return;
    if (!error && data?.state === "done") return void rotationDone(my);
    if (!error && data?.state === "waiting") {
      const seconds = Math.min(600, Math.max(1, Math.ceil(Number(data.resume_in_seconds) || 5)));
      setRotation({ phase: "waiting", since: Date.now(), until: Date.now() + seconds * 1000, oldKeyId },
        `Rotating: waiting for LiteLLM to settle the old key's spend (${seconds} s).`);
      await sleep(seconds * 1000);
      if (my !== gen) return;
      if (await finishedElsewhere()) return void rotationDone(my);
      if (my !== gen) return;
      running();
      continue;
    }
    const e = await functionError(error);
    if (my !== gen) return;
    // A repeat call refused: the rotation we were waiting for most likely finished elsewhere.
    if (call > 0 && (e.status === 429 || e.code === "no_active_key") && await finishedElsewhere()) return void rotationDone(my);
    if (my !== gen) return;
    if (e.code === "rotation_in_progress" || (call > 0 && e.status === 429)) return void watchRotation(my, oldKeyId);
    const fail = (message: string, phase: "saved" | "error" = "error") => setRotation({ phase, since: Date.now(), oldKeyId, message });
    if (e.status === 401) return fail("Your session has expired. Please sign out and sign in again, then rotate your key.");
    if (e.status === 429) return fail("Your key was rotated less than a minute ago. Please try again in a minute.");
    if (e.code === "no_active_key") return fail("Your key cannot be rotated right now: it is not active yet. Please try again once it shows as active.");
    if (e.status === 503) {
      return fail("LiteLLM is not answering right now. Your rotation is saved; it will finish automatically, or try again in a minute.", "saved");
    }
    if (e.status === 0) {
      return fail("We lost the connection to the server. If the rotation started, it is saved and finishes automatically within a few minutes; this page shows the new key when it does. Otherwise try again.", "saved");
    }
    return fail(`The rotation stopped (${e.message ? sentence(e.message) : `error ${e.status}`}) It is saved and finishes automatically within a few minutes, or try again in a minute.`, "saved");
  }
}

/** Another run owns the rotation (ops-sweep, another tab): wait for the new key to show up in my_key. */
async function watchRotation(my: number, oldKeyId: string | null) {
  setRotation({ phase: "watching", since: Date.now(), oldKeyId }, "Your key is being rotated; it finishes by itself.");
  const started = Date.now();
  while (my === gen && Date.now() - started < WATCH_MS) {
    await sleep(WATCH_EVERY_MS);
    if (my !== gen) return;
    const { data } = await sb.from("my_key").select(KEY_COLS).maybeSingle();
    if (my !== gen) return;
    if (rotatedAway(data as unknown as Key | null, oldKeyId)) return void rotationDone(my);
  }
  if (my === gen) {
    setRotation({ phase: "saved", since: Date.now(), oldKeyId,
      message: "Your key is still being rotated. It finishes automatically; this page shows the new key when it does, or try again in a minute." });
  }
}

/** The new key is active: read it (my_key) and the balance, and say so. */
async function rotationDone(my = gen) {
  const oldKeyId = state.rotation?.oldKeyId ?? null;
  if (!rotatedAway(state.key, oldKeyId)) {
    await load();
    if (my !== gen) return;
  }
  const key = state.key;
  state.revealed = false;
  setRotation({ phase: "done", since: Date.now(), oldKeyId, masked: key?.key_masked ?? "", remaining: state.account?.remaining },
    `Key rotated. Your new key ends in ${key?.key_masked.slice(-4) ?? ""}; the old key no longer works.`);
  $<HTMLElement>("#rotation-status")?.focus();
}

// ---------------------------------------------------------------- buying

async function describeFunctionError(error: unknown): Promise<string> {
  if (error instanceof FunctionsHttpError) {
    const res = error.context as Response;
    const body = await res.json().catch(() => null) as { message?: string } | null;
    if (res.status === 401) return "Your session has expired. Please sign out and sign in again.";
    if (body?.message) return sentence(body.message);
    return `The checkout did not start (error ${res.status}). Please try again.`;
  }
  if (error instanceof FunctionsFetchError) return "We could not reach the payment service. Check your connection and try again.";
  return "The checkout did not start. Please try again in a minute.";
}

async function buy(plan: string) {
  if (state.buying) return;
  const my = gen;
  state.buying = plan;
  renderBuy();
  setHtml($("#buy-status"), "");
  const { data, error } = await sb.functions.invoke<{ reference: string; authorization_url: string }>("checkout", { body: { plan } });
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
async function watchPayment(reference: string, my: number) {
  const show = (s: Parameters<typeof paymentResult>[0]) => my === gen && setHtml($("#payment-status"), paymentResult(s));
  const done = () => sessionStorage.removeItem(RETURN_KEY);
  show({ kind: "waiting", reference });
  const started = Date.now();
  let slow = false;
  while (my === gen && Date.now() - started < 15 * 60_000) {
    const [co, pay] = await Promise.all([
      sb.from("checkouts").select("reference,status,status_reason,credit::text").eq("reference", reference).maybeSingle(),
      sb.from("my_payments").select(PAYMENT_COLS).eq("reference", reference).maybeSingle(),
    ]);
    if (my !== gen) return;
    const payment = pay.data as unknown as Payment | null;
    const checkout = co.data as { status: string; status_reason: string | null; credit: string } | null;
    if (payment) {
      done();
      await load();
      return show({ kind: "paid", reference, credit: payment.credit, remaining: state.account?.remaining });
    }
    if (checkout?.status === "rejected") {
      done();
      return show({ kind: "rejected", reference, reason: checkout.status_reason });
    }
    if (checkout?.status === "failed") {
      done();
      return show({ kind: "failed", reference, reason: checkout.status_reason });
    }
    if (!co.error && !checkout) {
      done();
      return show({ kind: "unknown", reference });
    }
    if (!slow && Date.now() - started > 45_000) {
      slow = true;
      show({ kind: "slow", reference });
    }
    await sleep(slow ? 5_000 : 700);
  }
}

void start();
