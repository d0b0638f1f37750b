// Selling in naira, in Chromium against the local stack: the operator enables NGN and derives its prices from
// the USD ones at an exchange rate (the admin CLI, as the README tells an operator), and names the merchant.
// A user picks NGN in the buy panel, sees the packs priced in naira (₦, grouping, kobo), buys Starter on the
// Paystack emulator's hosted page, and sees the credit rise in US dollars, the payment in naira with its
// channel, and a printable receipt at #/receipt/<reference>: merchant, reference, amount, channel, USD credit,
// the exchange rate. The next visit defaults to NGN (the last checkout's currency); another user cannot open
// the receipt. What the test changed (NGN, its prices, the merchant name) is put back afterwards.
// Screenshots go to test-results/currency-*.png.
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { activeUser, adminCli, closeSql, sql, type TestUser } from "../../supabase/tests/integration/helpers.ts";
import { launchChromium, newPage, PASSWORD, payWithSuccessCard, screenshots, testIdText, WEB_URL } from "./browser.ts";

// 5, 15 and 20 USD at 1,537.25 NGN per USD, rounded up to whole 100 NGN: 7,686.25 -> 7,700; 23,058.75 -> 23,100.
const RATE = "1537.25";
const MERCHANT = `Ada & Co's "LLM" shop`; // escaped on the page, never markup

let browser: Browser;
let page: Page;
let buyer: TestUser;
let reference = "";
const restore: (() => Promise<unknown>)[] = [];

const shot = screenshots("currency", () => page);
const text = (testId: string) => testIdText(page, testId);

function admin(...args: string[]) {
  const r = adminCli(...args);
  expect(r.code, `admin ${args.join(" ")}: ${r.stderr}${r.stdout}`).toBe(0);
  return r;
}

async function signIn(email: string) {
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByTestId("user-email").filter({ hasText: email }).waitFor();
}

async function signOut() {
  await page.getByRole("button", { name: "Sign out" }).click();
  await page.getByRole("heading", { name: "Sign in" }).waitFor();
}

beforeAll(async () => {
  // What this test changes, to put back afterwards (an operator may have set up NGN on this stack already).
  const [ngn] = await sql()`select enabled, channels from public.currencies where code = 'NGN'`;
  const prices = await sql()`select plan, amount_subunits, active, fx_rate from public.plan_prices
                              where currency = 'NGN'`;
  const [merchant] = await sql()`select value from private.settings where key = 'merchant_name'`;
  restore.push(async () => {
    await sql()`update private.settings set value = ${JSON.stringify(merchant.value)}::jsonb
                 where key = 'merchant_name'`;
    await sql()`delete from public.plan_prices where currency = 'NGN'`;
    for (const p of prices) {
      await sql()`insert into public.plan_prices (plan, currency, amount_subunits, active, fx_rate)
                  values (${p.plan}, 'NGN', ${p.amount_subunits}, ${p.active}, ${p.fx_rate})`;
    }
    await sql()`update public.currencies set enabled = ${ngn.enabled}, channels = ${sql().array(ngn.channels)}
                 where code = 'NGN'`;
  });
  buyer = await activeUser("web-ngn");
  browser = await launchChromium();
  // A reader in Nigeria: the page formats with the browser's locale.
  page = await newPage(browser, { locale: "en-NG" });
});

afterAll(async () => {
  await browser?.close();
  for (const undo of restore.reverse()) await undo();
  await closeSql();
});

describe("paying in naira from the dashboard", () => {
  it("the operator enables NGN, derives its prices at an exchange rate and names the merchant", async () => {
    admin("currencies", "enable", "NGN");
    admin("prices", "derive", "NGN", "--rate", RATE, "--round", "100");
    admin("merchant-name", "set", MERCHANT);
    const rows = await sql()`select p.plan, p.amount_subunits, pp.fx_rate::text from public.prices p
                              join public.plan_prices pp on pp.plan = p.plan and pp.currency = p.currency
                             where p.currency = 'NGN' order by p.sort_order`;
    expect(rows.map((r) => [r.plan, Number(r.amount_subunits), r.fx_rate])).toEqual([
      ["starter", 770000, RATE],
      ["pro", 2310000, RATE],
      ["max", 3080000, RATE],
    ]);
  });

  it("the buy panel starts in the default currency and shows the packs in naira when the user picks NGN", async () => {
    await page.goto(WEB_URL);
    await signIn(buyer.email);
    await page.getByTestId("remaining").filter({ hasText: "$2.00" }).waitFor();
    const picker = page.getByLabel("Pay in");
    expect(await picker.inputValue()).toBe("USD"); // nothing bought yet: the operator's default
    expect(await text("price-starter")).toBe("Pay $5.00");
    await picker.selectOption("NGN");
    await page.getByTestId("price-starter").filter({ hasText: "₦7,700.00" }).waitFor();
    expect(await text("price-pro")).toBe("Pay ₦23,100.00");
    expect(await text("price-max")).toBe("Pay ₦30,800.00");
    // The credit a pack buys stays in US dollars.
    const starter = page.locator(".plan").filter({ has: page.getByTestId("price-starter") });
    expect(await starter.locator(".plan-credit").textContent()).toBe("$10.00 of credit");
    await shot("naira-prices");
  });

  it("buys Starter in naira on Paystack's page; the checkout locked NGN and the credit rises in USD", async () => {
    await page.getByRole("button", { name: "Buy Starter for ₦7,700.00" }).click();
    await page.waitForURL((u) => !u.href.startsWith(WEB_URL));
    expect(await page.getByTestId("amount").textContent()).toMatch(/NGN\s*7,?700\.00/);
    reference = ((await page.getByTestId("reference").textContent()) ?? "").trim();
    await payWithSuccessCard(page);
    await shot("paystack-checkout");
    await page.getByRole("button", { name: /^Pay / }).click();
    await page.waitForURL((u) => u.href.startsWith(WEB_URL));
    await page.getByTestId("payment-result").filter({ hasText: "Payment received" }).waitFor({ timeout: 20_000 });
    expect(await text("payment-result")).toContain("$10.00 of credit was added");
    await page.getByTestId("remaining").filter({ hasText: "$12.00" }).waitFor();
    expect(await text("granted")).toBe("$12.00");

    const [co] = await sql()`select currency, amount_subunits::int, credit::text, fx_rate::text from public.checkouts
                              where reference = ${reference}`;
    expect(co).toEqual({ currency: "NGN", amount_subunits: 770000, credit: "10.00", fx_rate: RATE });
    const [pm] = await sql()`select currency, amount_subunits::int, channel from public.payments
                              where reference = ${reference}`;
    expect(pm).toEqual({ currency: "NGN", amount_subunits: 770000, channel: "card" });

    const row = page.getByTestId("payments").getByRole("row").filter({ hasText: reference });
    await row.waitFor();
    const cells = await row.getByRole("cell").allTextContents();
    expect(cells).toEqual(expect.arrayContaining(["Starter", "₦7,700.00", "Card", "$10.00"]));
    await shot("paid-in-naira");
  }, 40_000);

  it("the receipt: merchant, reference, naira paid, channel, USD credit, rate; it prints alone", async () => {
    await page.getByRole("link", { name: `Receipt for ${reference}` }).click();
    await page.getByTestId("receipt").waitFor();
    expect(new URL(page.url()).hash).toBe(`#/receipt/${reference}`);
    expect(await text("receipt-merchant")).toBe(MERCHANT);
    expect(await text("receipt-reference")).toBe(reference);
    expect(await text("receipt-amount")).toBe("₦7,700.00 NGN");
    expect(await text("receipt-channel")).toBe("Card");
    expect(await text("receipt-credit")).toBe("$10.00 USD, LLM credit");
    expect(await text("receipt-rate")).toBe("1 USD = 1,537.25 NGN");
    expect(await text("receipt-status")).toBe("Credited");
    expect(await text("receipt-date")).toMatch(/\d{4}/);
    expect(await page.title()).toBe(`Receipt ${reference} · ${MERCHANT}`);
    await shot("receipt");

    // The Print button opens the browser's print dialog (stubbed: headless has none) ...
    await page.evaluate(() => (window.print = () => document.body.setAttribute("data-printed", "yes")));
    await page.getByRole("button", { name: "Print" }).click();
    expect(await page.locator("body").getAttribute("data-printed")).toBe("yes");
    // ... and on paper only the receipt shows.
    await page.emulateMedia({ media: "print" });
    expect(await page.getByRole("button", { name: "Sign out" }).isVisible()).toBe(false);
    expect(await page.getByRole("button", { name: "Print" }).isVisible()).toBe(false);
    expect(await page.getByTestId("receipt").isVisible()).toBe(true);
    await shot("receipt-print");
    await page.emulateMedia({ media: "screen" });

    await page.getByRole("link", { name: "Back to your dashboard" }).click();
    await page.getByTestId("remaining").filter({ hasText: "$12.00" }).waitFor();
  }, 30_000);

  it("the next visit offers NGN first: the currency of the last checkout", async () => {
    await page.reload();
    await page.getByTestId("price-starter").filter({ hasText: "₦7,700.00" }).waitFor();
    expect(await page.getByLabel("Pay in").inputValue()).toBe("NGN");
  });

  it("another user cannot open the receipt; its link signs the buyer in straight to it", async () => {
    const other = await activeUser("web-ngn-other");
    const mine = await other.client.from("my_receipts").select("reference").eq("reference", reference);
    expect(mine.error).toBeNull();
    expect(mine.data).toEqual([]);
    await signOut();
    await signIn(other.email);
    await page.goto(`${WEB_URL}#/receipt/${reference}`);
    await page.getByTestId("receipt-missing").waitFor();
    expect(await page.content()).not.toContain("7,700");
    await shot("receipt-other-user");

    await signOut();
    expect(new URL(page.url()).hash).toBe(`#/receipt/${reference}`);
    await signIn(buyer.email);
    await page.getByTestId("receipt").waitFor();
    expect(await text("receipt-reference")).toBe(reference);
    expect(await text("receipt-merchant")).toBe(MERCHANT);
  }, 30_000);
});
