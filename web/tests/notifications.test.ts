// Notifications in the dashboard, in Chromium against the local stack: a user with a purchase (its receipt)
// and a low-balance notification signs in, sees 2 unread in the top bar, opens #/notifications, follows
// nothing, marks one read (the count drops to 1, in the database too), then all. Another user's
// notification never shows. Screenshots go to test-results/notifications-*.png.
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { activeUser, closeSql, sql, type TestUser } from "../../supabase/tests/integration/helpers.ts";
import { launchChromium, newPage, PASSWORD, screenshots, WEB_URL } from "./browser.ts";

let browser: Browser;
let page: Page;
const shot = screenshots("notifications", () => page);

const unread = () => page.locator("[data-test=unread-count]");
const items = () => page.locator("[data-test=notification]");

async function buyStarter(userId: string): Promise<string> {
  const [c] = await sql()`select * from private.create_checkout(${userId}, 'starter')`;
  const [r] =
    await sql()`select * from private.apply_payment(${c.reference}, 'success', 500, 500, 'USD', 'test', 'test', 1, now())`;
  expect(r.outcome).toBe("credited");
  return c.reference;
}

beforeAll(async () => {
  browser = await launchChromium();
  page = await newPage(browser);
});
afterAll(async () => {
  await browser?.close();
  await closeSql();
});

describe("notifications in the dashboard", () => {
  let u: TestUser;
  let reference: string;

  it("shows the unread count in the top bar after sign-in", async () => {
    u = await activeUser("web-notes");
    const other = await activeUser("web-notes-other");
    reference = await buyStarter(u.id);
    await sql()`select private.notify(${u.id}, 'low_balance', 'web-test', 'Your credit is running low',
                                      'You have 0.50 USD of credit left.', '#/buy')`;
    await sql()`select private.notify(${other.id}, 'low_balance', 'web-test', 'Not yours', 'Not yours', '#/buy')`;
    await page.goto(WEB_URL);
    await page.getByLabel("Email").fill(u.email);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByTestId("remaining").waitFor();
    await expect.poll(() => unread().textContent()).toBe("2");
    expect(await unread().isVisible()).toBe(true);
  });

  it("lists them on #/notifications, newest first, with their links", async () => {
    await page.getByRole("link", { name: /Notifications/ }).click();
    await page.getByRole("heading", { name: "Notifications", level: 1 }).waitFor();
    await expect.poll(() => items().count()).toBe(2);
    expect(page.url()).toMatch(/#\/notifications$/);
    const first = items().nth(0), second = items().nth(1);
    expect(await first.locator("h2").textContent()).toContain("Your credit is running low");
    expect(await first.getByRole("link", { name: "Buy credit" }).getAttribute("href")).toBe("#/buy");
    expect(await second.locator("h2").textContent()).toContain("Receipt: 10.00 USD of credit added");
    expect(await second.textContent()).toContain("We received your payment of USD 5.00 for the Starter plan");
    expect(await second.getByRole("link", { name: "Open" }).getAttribute("href")).toBe(`#/receipt/${reference}`);
    expect(await second.locator("time").getAttribute("datetime")).toBeTruthy();
    expect(await page.locator("body").textContent()).not.toContain("Not yours");
    await shot("list");
  });

  it("marks one read, then all; the database agrees", async () => {
    await items().nth(1).getByRole("button", { name: "Mark read" }).click();
    await expect.poll(() => unread().textContent()).toBe("1");
    expect(await items().nth(1).getAttribute("data-unread")).toBe("false");
    const [receipt] =
      await sql()`select read_at from public.notifications where user_id = ${u.id} and kind = 'payment_receipt'`;
    expect(receipt.read_at).not.toBeNull();
    await page.getByRole("button", { name: "Mark all read" }).click();
    await expect.poll(() => unread().isHidden()).toBe(true);
    await expect.poll(async () =>
      (await sql()`select count(*)::int as n from public.notifications
                                                where user_id = ${u.id} and read_at is null`)[0].n
    ).toBe(0);
    await shot("read");
    // A receipt link opens the receipt page.
    await items().nth(1).getByRole("link", { name: "Open" }).click();
    await page.getByText(reference).first().waitFor();
  });
});
