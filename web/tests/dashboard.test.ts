// The dashboard in a real browser (Debian's Chromium driven by playwright-core) against the local stack
// that `npm start` starts: sign up -> "check your email" -> the emailed confirmation link (the stack's
// outbox) -> key active -> buy the starter plan on the Paystack emulator's hosted checkout -> $12.00 -> chat
// calls with the key -> reconcile -> balance down, savings shown -> sign out; then a second user sees only
// their own key and numbers; CAPTCHA only when config.json asks for it. Screenshots of each step go to
// test-results/.
import { readdirSync, readFileSync, statSync } from "node:fs";
import { gzipSync } from "node:zlib";
import OpenAI from "openai";
import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { DEMO } from "../../stack/demo.ts";
import {
  anonClient,
  confirmationLink,
  env,
  invoke,
  keyOnLiteLLM,
  waitFor,
} from "../../supabase/tests/integration/helpers.ts";
import {
  launchChromium,
  PASSWORD,
  payWithSuccessCard,
  reconcileNow,
  screenshots,
  testIdText,
  WEB_URL,
} from "./browser.ts";

const JS_BUDGET_BYTES = 150 * 1024;

let browser: Browser;
let context: BrowserContext;
let page: Page;
const shot = screenshots("dashboard", () => page);

const email = (tag: string) =>
  `web-${tag}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}@example.com`;
const text = (testId: string) => testIdText(page, testId);
/** "$12.00" -> 1200 (cents). */
const centsOf = (s: string) => Math.round(Number(s.replace(/[^0-9.-]/g, "")) * 100);

/** Signs up in the form, then opens the emailed link as the user would; returns the link. */
async function signUp(address: string, screenshot?: string): Promise<string> {
  await page.getByRole("button", { name: "Create an account" }).click();
  await page.getByLabel("Email").fill(address);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByRole("heading", { name: "Check your email" }).waitFor();
  expect(await text("check-email-address")).toBe(address);
  if (screenshot) await shot(screenshot);
  const link = await confirmationLink(address);
  await page.goto(link); // Auth confirms and redirects back here with the session in the URL fragment
  await page.getByRole("button", { name: "Sign out" }).waitFor({ timeout: 10_000 });
  expect(page.url()).not.toContain("access_token"); // the dashboard tidies the return URL
  return link;
}

const first = { email: "", key: "", reference: "", spend: 0, link: "" };

beforeAll(async () => {
  browser = await launchChromium();
  context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: new URL(WEB_URL).origin });
  page = await context.newPage();
  page.setDefaultTimeout(10_000);
});

afterAll(async () => {
  await browser?.close();
});

describe("web dashboard in Chromium", () => {
  it("the build is current and within the JS budget", () => {
    const dist = "web/dist";
    const js = readdirSync(`${dist}/assets`).filter((f) => f.endsWith(".js"));
    const gz = js.reduce((n, f) => n + gzipSync(readFileSync(`${dist}/assets/${f}`), { level: 9 }).length, 0);
    console.log(
      `web bundle: ${(gz / 1024).toFixed(1)} KB of gzipped JS in ${js.length} file(s) (budget ${
        JS_BUDGET_BYTES / 1024
      } KB)`,
    );
    expect(gz).toBeLessThanOrEqual(JS_BUDGET_BYTES);
    const newestSource = Math.max(
      ...readdirSync("web/src").map((f) => statSync(`web/src/${f}`).mtimeMs),
      statSync("web/index.html").mtimeMs,
    );
    expect(statSync(`${dist}/index.html`).mtimeMs, "web/dist is older than web/src: the stack should have rebuilt it")
      .toBeGreaterThanOrEqual(newestSource);
  });

  it("first load is fast and shows the sign-in form", async () => {
    const res = await page.goto(WEB_URL, { waitUntil: "load" });
    expect(res?.status()).toBe(200);
    const nav = await page.evaluate(() => {
      const n = performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming;
      return { load: n.loadEventEnd - n.startTime, dcl: n.domContentLoadedEventEnd - n.startTime };
    });
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    const ready = await page.evaluate(() => performance.now());
    console.log(
      `first load on the local stack: load event ${nav.load.toFixed(0)} ms, DOMContentLoaded ${
        nav.dcl.toFixed(0)
      } ms, sign-in form shown at ${ready.toFixed(0)} ms`,
    );
    await shot("sign-in");
  });

  it(
    "signs up, confirms through the emailed link, and the key turns active within seconds, with $2.00 free",
    async () => {
      first.email = email("first");
      first.link = await signUp(first.email, "check-your-email");
      expect(await text("user-email")).toBe(first.email);
      await shot("signed-up");
      const t0 = Date.now();
      await page.getByTestId("key-status").filter({ hasText: "Active" }).waitFor({ timeout: 15_000 });
      console.log(`key active ${Date.now() - t0} ms after the dashboard showed`);
      expect(await text("remaining")).toBe("$2.00");
      expect(await text("base-url")).toBe(env("LITELLM_PUBLIC_URL"));
      // Masked until revealed; reveal shows the full key and copy puts it on the clipboard.
      expect(await text("key-value")).toMatch(/^sk-\.\.\.[A-Za-z0-9_-]{4}$/);
      await page.getByRole("button", { name: "Reveal" }).click();
      first.key = await text("key-value");
      expect(first.key).toMatch(/^sk-[A-Za-z0-9_-]{20,}$/);
      expect(await text("snippet")).toContain(first.key);
      await page.getByRole("button", { name: "Copy the key" }).click();
      expect(await page.evaluate(() => navigator.clipboard.readText())).toBe(first.key);
      await page.getByLabel("Example call").selectOption("python");
      expect(await text("snippet")).toContain(`base_url="${env("LITELLM_PUBLIC_URL")}"`);
      await shot("key-active");
      await page.getByRole("button", { name: "Hide" }).click();
    },
    30_000,
  );

  it("buys the $5 plan through the emulator's hosted checkout and shows $12.00", async () => {
    await page.getByRole("button", { name: "Buy Starter for $5.00" }).click();
    await page.waitForURL((u) => u.href.startsWith(`${env("PAYSTACK_BASE_URL")}/checkout/`));
    await payWithSuccessCard(page);
    first.reference = ((await page.getByTestId("reference").textContent()) ?? "").trim();
    await shot("paystack-checkout");
    await page.getByRole("button", { name: /^Pay / }).click();
    await page.waitForURL((u) => u.href.startsWith(WEB_URL));
    expect(page.url()).not.toContain("reference="); // the dashboard tidies the return URL
    await page.getByTestId("payment-result").filter({ hasText: "Payment received" }).waitFor({ timeout: 20_000 });
    expect(await text("payment-result")).toContain("$10.00 of credit was added");
    await page.getByTestId("remaining").filter({ hasText: "$12.00" }).waitFor();
    expect(await text("paid")).toBe("$5.00");
    expect(await text("granted")).toBe("$12.00");
    const payments = page.getByTestId("payments");
    await expect.poll(() => payments.textContent()).toContain(first.reference);
    expect(await payments.textContent()).toContain("Starter");
    const lots = (await page.getByTestId("lots").textContent()) ?? "";
    expect(lots).toContain("Sign-up credit");
    expect(lots).toContain("Starter pack");
    await shot("paid");
    // The same page at phone width.
    await page.setViewportSize({ width: 390, height: 844 });
    await shot("paid-phone");
    await page.setViewportSize({ width: 1280, height: 900 });
  }, 30_000);

  it("chat calls with the key lower the balance after a reconcile, and savings appear", async () => {
    const client = new OpenAI({ apiKey: first.key, baseURL: env("LITELLM_PUBLIC_URL"), maxRetries: 0 });
    // test-expensive costs $1 per 1k tokens: 984 prompt tokens (3,936 characters) + 16 completion = $1.00 a call.
    for (let i = 0; i < 3; i++) {
      const r = await client.chat.completions.create({
        model: "test-expensive",
        messages: [{ role: "user", content: "x".repeat(3936) }],
      });
      expect(r.choices[0].message.content).toBeTruthy();
    }
    await client.chat.completions.create({ model: "gpt-4o-mini", messages: [{ role: "user", content: "Hello" }] });
    first.spend = (await keyOnLiteLLM(first.key)).spend;
    expect(first.spend).toBeGreaterThan(3);
    await reconcileNow();
    await page.getByRole("button", { name: "Refresh" }).click();
    const expectRemaining = `$${(12 - first.spend).toFixed(2)}`;
    await page.getByTestId("remaining").filter({ hasText: expectRemaining }).waitFor();
    // 2.00 free + the rest from the pack at 0.50 per credit dollar.
    const spentCents = Math.round(first.spend * 100);
    const costCents = Math.round((first.spend - 2) * 0.5 * 100);
    expect(centsOf(await text("spent"))).toBe(spentCents);
    expect(centsOf(await text("savings"))).toBe(spentCents - costCents);
    const line = await text("savings-line");
    expect(line).toMatch(/^You paid \$\d+\.\d\d for \$\d+\.\d\d of usage: you saved \$\d+\.\d\d\.$/);
    expect(line).toContain(`You paid $${(costCents / 100).toFixed(2)} for $${(spentCents / 100).toFixed(2)} of usage`);
    expect(await page.locator("#chart figcaption").textContent()).toContain("spent in the last 30 days on 1 day");
    await expect.poll(async () => (await page.locator("[data-ago]").textContent()) ?? "").toMatch(
      /^Updated \d+ s ago$/,
    );
    await shot("after-usage");

    // A returning, signed-in visit: page load and the time until the balance is on screen.
    await page.reload({ waitUntil: "load" });
    await page.getByTestId("remaining").filter({ hasText: expectRemaining }).waitFor();
    const t = await page.evaluate(() => ({
      load: (performance.getEntriesByType("navigation")[0] as PerformanceNavigationTiming).loadEventEnd,
      shown: performance.now(),
    }));
    console.log(`signed-in reload: load event ${t.load.toFixed(0)} ms, balance on screen at ${t.shown.toFixed(0)} ms`);
  }, 30_000);

  it("signs out", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    const stored = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.includes("auth-token")));
    expect(stored).toEqual([]);
    expect(await page.content()).not.toContain(first.key);
    await shot("signed-out");
  });

  it("the confirmation link opened a second time says it is used up, and signs nobody in", async () => {
    await page.goto(first.link);
    await page.getByTestId("auth-notice").filter({ hasText: "invalid or has expired" }).waitFor();
    expect(page.url()).not.toContain("#");
    await page.getByRole("heading", { name: "Sign in" }).waitFor();
    await shot("used-link");
  });

  it("a second user sees only their own key and numbers", async () => {
    const second = email("second");
    await signUp(second);
    await page.getByTestId("key-status").filter({ hasText: "Active" }).waitFor({ timeout: 15_000 });
    expect(await text("user-email")).toBe(second);
    expect(await text("remaining")).toBe("$2.00");
    expect(await text("paid")).toBe("$0.00");
    expect(await text("spent")).toBe("$0.00");
    await page.getByRole("button", { name: "Reveal" }).click();
    const key = await text("key-value");
    expect(key).toMatch(/^sk-/);
    expect(key).not.toBe(first.key);
    expect(await page.locator("#payments").textContent()).toContain("No payments yet");
    expect(await page.locator("#chart").textContent()).toContain("No usage in the last 30 days");
    const html = await page.content();
    for (const leak of [first.key, first.email, first.reference, "$12.00"]) expect(html).not.toContain(leak);
    await shot("second-user");
    await page.setViewportSize({ width: 390, height: 844 });
    await shot("second-user-phone");

    // And through the API with the second user's session: none of the first user's rows.
    const client = anonClient();
    await client.auth.signInWithPassword({ email: second, password: PASSWORD });
    const keys = await client.from("my_key").select("key_value");
    expect(keys.data?.map((k) => k.key_value)).toEqual([key]);
    const theirs = await client.from("checkouts").select("reference").eq("reference", first.reference);
    expect(theirs.data).toEqual([]);
    await page.setViewportSize({ width: 1280, height: 900 });
  }, 30_000);

  it("the demo user that the stack creates can sign in", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("Email").fill(DEMO.email);
    await page.getByLabel("Password").fill("not-the-password");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").filter({ hasText: "do not match an account" }).waitFor();
    await page.getByLabel("Password").fill(DEMO.password);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByTestId("user-email").filter({ hasText: DEMO.email }).waitFor();
    await page.getByTestId("key-status").filter({ hasText: "Active" }).waitFor({ timeout: 15_000 });
    expect(await text("remaining")).toMatch(/^\$\d+\.\d\d$/);
    await shot("demo-user");
  }, 30_000);
});

describe("CAPTCHA in the dashboard", () => {
  const PROVIDER_HOSTS = /js\.hcaptcha\.com|hcaptcha\.com|challenges\.cloudflare\.com/;
  // Stands in for Turnstile's script (no internet in tests): renders a label and "solves" at once.
  const FAKE_TURNSTILE = `window.turnstile = {
    render(el, o) { el.textContent = "CAPTCHA (test stand-in)"; setTimeout(() => o.callback("test-captcha-token"), 0); return "w1"; },
    reset() {},
  };
  window[new URL(document.currentScript.src).searchParams.get("onload")]();`;
  /** A page in a context of its own (nobody signed in). */
  const freshPage = async () => {
    const p = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
    p.setDefaultTimeout(10_000);
    return p;
  };

  it("without a CAPTCHA in config.json there is no widget container and no provider script is requested", async () => {
    const p = await freshPage();
    const requested: string[] = [];
    p.on("request", (r) => requested.push(r.url()));
    await p.goto(WEB_URL);
    await p.getByRole("heading", { name: "Sign in" }).waitFor();
    expect(await p.locator("#captcha").count()).toBe(0);
    await p.getByRole("button", { name: "Create an account" }).click();
    await p.getByRole("heading", { name: "Create your account" }).waitFor();
    expect(await p.locator("#captcha").count()).toBe(0);
    expect(requested.filter((u) => PROVIDER_HOSTS.test(u))).toEqual([]);
    await p.context().close();
  });

  it("with a provider and site key the widget container renders, and sign-up sends the widget's token to Auth", async () => {
    const p = await freshPage();
    await p.route("**/config.json", async (route) => {
      const real = await (await route.fetch()).json();
      await route.fulfill({
        json: { ...real, CAPTCHA_PROVIDER: "turnstile", CAPTCHA_SITE_KEY: "1x00000000000000000000AA" },
      });
    });
    await p.route(
      "https://challenges.cloudflare.com/**",
      (route) => route.fulfill({ contentType: "text/javascript", body: FAKE_TURNSTILE }),
    );
    const signups: Record<string, any>[] = [];
    p.on("request", (r) => {
      if (r.url().includes("/auth/v1/signup")) signups.push(r.postDataJSON());
    });
    await p.goto(WEB_URL);
    await p.getByRole("button", { name: "Create an account" }).click();
    const widget = p.getByTestId("captcha");
    await widget.filter({ hasText: "CAPTCHA (test stand-in)" }).waitFor();
    expect(await widget.getAttribute("data-provider")).toBe("turnstile");
    const address = email("captcha");
    await p.getByLabel("Email").fill(address);
    await p.getByLabel("Password").fill(PASSWORD);
    await p.getByRole("button", { name: "Create account" }).click();
    await p.getByRole("heading", { name: "Check your email" }).waitFor();
    expect(signups).toHaveLength(1);
    expect(signups[0].gotrue_meta_security).toEqual({ captcha_token: "test-captcha-token" });
    await shot("captcha-signed-up", p);
    await p.context().close();
  });
});
