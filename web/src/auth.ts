// Sign-in, sign-up and the emailed confirmation link (Supabase Auth through supabase-js), and sign-out.
import { $, esc } from "./html.ts";
import { Captcha } from "./captcha.ts";
import { cfg, root, sb } from "./app.ts";
import { forgetReturn } from "./buy.ts";
import { onSession } from "./router.ts";

type Notice = { kind: "ok" | "danger"; text: string };
let authNotice: Notice | null = null; // shown once on the next sign-in form (e.g. a confirmation link that failed)
let captcha: Captcha | null = null; // the sign-in/sign-up form's widget, when config.json turns CAPTCHA on

/**
 * Back from the emailed confirmation link: Auth redirects here with a session, or an error, in the URL
 * fragment (GoTrue's implicit flow). Read once and removed from the address bar.
 */
export function takeAuthRedirect(): { session?: { access_token: string; refresh_token: string }; error?: string } {
  const p = new URLSearchParams(location.hash.slice(1));
  const access_token = p.get("access_token");
  const refresh_token = p.get("refresh_token");
  const error = p.get("error_code") ?? p.get("error");
  if (!access_token && !error) return {};
  history.replaceState(null, "", location.pathname + location.search);
  if (access_token && refresh_token) return { session: { access_token, refresh_token } };
  return { error: error ?? "unknown" };
}

/** Signs in with the session the link brought, or keeps a notice for the sign-in form when it failed. */
export async function land(landing: ReturnType<typeof takeAuthRedirect>) {
  if (landing.session && (await sb.auth.setSession(landing.session)).error) landing.error = "session_refused";
  if (landing.error) {
    authNotice = {
      kind: "danger",
      text: landing.error === "otp_expired"
        ? "That confirmation link is invalid or has expired (each link works once). If you confirmed already, sign in; otherwise create the account again with the same address to get a new link."
        : "That link could not sign you in. Please sign in with your email and password.",
    };
  }
}

const brand = `<h1 class="brand-big">LLM credit</h1>
  <p class="tagline">Prepaid credit for the LiteLLM proxy. Sign up, confirm your email and get $2.00 free; every pack gives you twice what you pay.</p>`;

export function showAuth(mode: "signin" | "signup", notice: Notice | null = authNotice) {
  authNotice = null;
  root.dataset.view = "auth";
  const signup = mode === "signup";
  document.title = `${signup ? "Create an account" : "Sign in"} · LLM credit`;
  root.innerHTML = `<main id="main" class="auth-page">
  ${brand}
  <form id="auth-form" class="card auth-card" novalidate data-mode="${mode}" aria-labelledby="auth-h">
    <h2 id="auth-h">${signup ? "Create your account" : "Sign in"}</h2>
    ${
    notice
      ? `<p class="banner ${notice.kind}" role="${
        notice.kind === "ok" ? "status" : "alert"
      }" data-testid="auth-notice">${esc(notice.text)}</p>`
      : ""
  }
    <label for="email">Email</label>
    <input id="email" name="email" type="email" autocomplete="email" required>
    <label for="password">Password</label>
    <input id="password" name="password" type="password" autocomplete="${
    signup ? "new-password" : "current-password"
  }" required minlength="6"
      ${signup ? 'aria-describedby="password-hint"' : ""}>
    ${signup ? `<p id="password-hint" class="hint">At least 6 characters.</p>` : ""}
    ${
    cfg.captcha
      ? `<div id="captcha" class="captcha" data-testid="captcha" data-provider="${esc(cfg.captcha.provider)}"></div>`
      : ""
  }
    <p id="auth-error" class="error" role="alert"></p>
    <button type="submit" class="primary wide">${signup ? "Create account" : "Sign in"}</button>
    <p class="switch">${signup ? "Already have an account?" : "New here?"}
      <button type="button" class="link" data-action="auth-mode" data-mode="${signup ? "signin" : "signup"}">${
    signup ? "Sign in" : "Create an account"
  }</button></p>
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
    <p>We sent a confirmation link to <strong data-testid="check-email-address">${
    esc(email)
  }</strong>. Open it to finish signing up:
      your $2.00 of free credit is added when you do.</p>
    <p class="hint">Nothing after a few minutes? Look in your spam folder, or create the account again with the same address to get a new link.</p>
    <button type="button" class="link" data-action="auth-mode" data-mode="signin">Back to sign in</button>
  </section>
</main>`;
  $<HTMLElement>("#check-h")?.focus();
}

function authMessage(msg: string, signup: boolean): string {
  if (/invalid login credentials/i.test(msg)) {
    return "That email and password do not match an account. Check them, or create an account.";
  }
  if (/already registered|already exists/i.test(msg)) {
    return "An account with this email already exists: sign in instead.";
  }
  if (/email not confirmed/i.test(msg)) return "Please confirm your email address first: open the link we sent you.";
  if (/captcha/i.test(msg)) return "The CAPTCHA check failed. Please complete it again.";
  if (/only request this after/i.test(msg)) return `We just sent you a link. ${msg}`;
  if (/failed to fetch|network|load failed/i.test(msg)) {
    return "We could not reach the server. Check your connection and try again.";
  }
  if (/password/i.test(msg) && signup) return `${msg.replace(/\.$/, "")}.`;
  return msg || "Something went wrong. Please try again.";
}

async function submitAuth(form: HTMLFormElement, signup: boolean) {
  const email = ($<HTMLInputElement>("#email", form)!.value || "").trim();
  const password = $<HTMLInputElement>("#password", form)!.value;
  const err = $("#auth-error", form)!;
  const button = $<HTMLButtonElement>("button[type=submit]", form)!;
  if (!email || !/^[^\s@]+@[^\s@]+$/.test(email)) {
    return showFieldError(err, "#email", "Enter your email address, like name@example.com.");
  }
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
    ? await sb.auth.signUp({
      email,
      password,
      options: { captchaToken, emailRedirectTo: location.origin + location.pathname },
    })
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

export async function signOut(button: HTMLButtonElement) {
  button.disabled = true;
  forgetReturn();
  // Local scope: this browser only. A failure (server down) still clears the local session.
  const { error } = await sb.auth.signOut({ scope: "local" });
  if (error) onSession(null);
}
