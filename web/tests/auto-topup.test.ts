// Auto top-up in Chromium against the local stack: a user who paid by card opens Billing (#/billing), sees
// the saved card as brand, last4 and expiry (the authorization code is nowhere in the page), sets auto
// top-up (threshold, pack, currency, monthly cap) and finds it stored; removing the card removes it. Then the
// notifications list (#/notifications, the notifications part of issue 15) shows an auto top-up result with
// the unread count. Screenshots go to test-results/auto-topup-*.png.
import { existsSync, mkdirSync } from "node:fs";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  activeUser,
  closeSql,
  invoke,
  paystackAdmin,
  sql,
  type TestUser,
  waitFor,
} from "../../supabase/tests/integration/helpers.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SHOTS = "test-results";
const WEB_URL = `http://127.0.0.1:${process.env.STACK_WEB_PORT ?? 54423}/`;
const PASSWORD = "correct-horse-battery"; // what helpers.signUp gives every user

let browser: Browser;
let page: Page;
let user: TestUser;
let step = 0;

async function shot(name: string) {
  step++;
  await page.screenshot({ path: `${SHOTS}/auto-topup-${String(step).padStart(2, "0")}-${name}.png`, fullPage: true });
}

beforeAll(async () => {
  mkdirSync(SHOTS, { recursive: true });
  user = await activeUser("web-topup");
  // A card payment (the emulator's success card): the card is saved by the webhook.
  const c = await invoke("checkout", { plan: "starter", currency: "USD" }, user.token);
  await paystackAdmin("/admin/pay", { reference: c.body.reference, card: "4084084084084081" });
  await waitFor(
    async () => (await sql()`select 1 from public.payment_methods where user_id = ${user.id}`).length === 1,
    "the card to be saved",
  );
  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ["--no-sandbox"] });
  page = await browser.newPage();
  await page.goto(WEB_URL);
  await page.getByLabel("Email").fill(user.email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByTestId("user-email").filter({ hasText: user.email }).waitFor();
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await closeSql();
});

describe("billing: saved card and auto top-up", () => {
  it("shows the saved card by last4 only and stores the auto top-up settings", async () => {
    await page.locator("[data-test=billing-link]").click();
    await page.locator("[data-test=saved-card]").waitFor();
    await shot("billing");
    expect(await page.locator("[data-test=card-last4]").textContent()).toBe("4081");
    expect(await page.locator("[data-test=saved-card]").textContent()).toContain("expires 12/2030");
    const [{ code }] = await sql()`select s.authorization_code as code from private.payment_method_secrets s
                                    where s.user_id = ${user.id}`;
    const html = await page.content();
    expect(html.includes(code)).toBe(false);
    expect(html).not.toMatch(/AUTH_/);

    await page.getByLabel("When my credit falls below (USD)").fill("1.00");
    await page.getByLabel("Buy the pack").selectOption("starter");
    await page.getByLabel("Paying in").selectOption("USD");
    await page.getByLabel("At most this many top-ups a month").fill("2");
    await page.getByRole("button", { name: "Save" }).click();
    await page.locator("[data-test=topup-saved]").waitFor();
    await shot("saved");
    const rows = await sql()`select enabled, threshold_usd::text, plan_code, currency, monthly_max_count
                               from public.auto_topup_settings where user_id = ${user.id}`;
    expect(rows).toEqual([
      { enabled: true, threshold_usd: "1.00", plan_code: "starter", currency: "USD", monthly_max_count: 2 },
    ]);
  });

  it("a one-tap link from a low-balance notification preselects the pack", async () => {
    await page.goto(`${WEB_URL}#/buy?plan=starter&currency=USD`);
    await page.locator('[data-action="buy"][data-plan="starter"].preselected').waitFor();
    expect(new URL(page.url()).hash).toBe("#/");
  });

  it("removes the card", async () => {
    await page.goto(`${WEB_URL}#/billing`);
    await page.getByRole("button", { name: "Remove" }).click();
    await page.locator("[data-test=no-card]").waitFor();
    expect(await sql()`select 1 from public.payment_methods where user_id = ${user.id}`).toEqual([]);
  });

  // The list itself is the notifications part of issue 15 (web/src/notifications.ts): checked once it is in.
  it.skipIf(!existsSync("web/src/notifications.ts"))("shows the auto top-up result in notifications", async () => {
    await sql()`select private.notify(${user.id}, 'auto_topup_failed', 'web-test', 'Auto top-up failed',
                                      'We could not charge your saved card: Declined.', '#/billing')`;
    await page.goto(`${WEB_URL}#/notifications`);
    await page.locator("[data-test=notification]").filter({ hasText: "Auto top-up failed" }).waitFor();
    expect(Number(await page.locator("[data-test=unread-count]").textContent())).toBeGreaterThanOrEqual(1);
    await shot("notifications");
  });
});
