// Auto top-up in Chromium against the local stack: a user who paid by card opens Billing (#/billing), sees
// the saved card as brand, last4 and expiry (the authorization code is nowhere in the page), sets auto
// top-up (threshold, pack, currency, monthly cap) and finds it stored; removing the card removes it. Then the
// notifications list (#/notifications, the notifications part of issue 15) shows an auto top-up result with
// the unread count. Screenshots go to test-results/auto-topup-*.png.
import type { Browser, Page } from "playwright-core";
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
import { launchChromium, newPage, screenshots, signIn, WEB_URL } from "./browser.ts";

let browser: Browser;
let page: Page;
let user: TestUser;
const shot = screenshots("auto-topup", () => page);

beforeAll(async () => {
  user = await activeUser("web-topup");
  // A card payment (the emulator's success card): the card is saved by the webhook.
  const c = await invoke("checkout", { plan: "starter", currency: "USD" }, user.token);
  await paystackAdmin("/admin/pay", { reference: c.body.reference, card: "4084084084084081" });
  await waitFor(
    async () => (await sql()`select 1 from public.payment_methods where user_id = ${user.id}`).length === 1,
    "the card to be saved",
  );
  browser = await launchChromium();
  page = await newPage(browser);
  await signIn(page, user.email);
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

  it("shows the auto top-up result in notifications", async () => {
    await sql()`select private.notify(${user.id}, 'auto_topup_failed', 'web-test', 'Auto top-up failed',
                                      'We could not charge your saved card: Declined.', '#/billing')`;
    await page.goto(`${WEB_URL}#/notifications`);
    await page.locator("[data-test=notification]").filter({ hasText: "Auto top-up failed" }).waitFor();
    expect(Number(await page.locator("[data-test=unread-count]").textContent())).toBeGreaterThanOrEqual(1);
    await shot("notifications");
  });
});
