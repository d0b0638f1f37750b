// The statement and promo codes in the dashboard, in a real browser against the stack: a user redeems a
// promo code (the lot shows apart, with its expiry), spends through LiteLLM, and downloads the CSV
// (playwright's download event): its header is README's, its last balance is the remaining credit the
// dashboard shows and my_account holds.
import { readFileSync } from "node:fs";
import OpenAI from "openai";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { closeSql, confirmationLink, env, keyInSync, sql, waitFor } from "../../supabase/tests/integration/helpers.ts";
import { money } from "../src/money.ts";
import { launchChromium, newPage, PASSWORD, reconcileNow, screenshots, WEB_URL } from "./browser.ts";

let browser: Browser;
let page: Page;
const shot = screenshots("ledger", () => page);

beforeAll(async () => {
  browser = await launchChromium();
  page = await newPage(browser, { acceptDownloads: true });
});

afterAll(async () => {
  await closeSql();
  await browser?.close();
});

describe("statement and promo codes in the dashboard", () => {
  it("redeems a promo code (shown apart), then downloads a CSV whose last balance is the remaining credit", async () => {
    const address = `web-ledger-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}@example.com`;
    await page.goto(WEB_URL);
    await page.getByRole("button", { name: "Create an account" }).click();
    await page.getByLabel("Email").fill(address);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Create account" }).click();
    await page.getByRole("heading", { name: "Check your email" }).waitFor();
    await page.goto(await confirmationLink(address));
    await page.getByTestId("key-status").filter({ hasText: "Active" }).waitFor({ timeout: 15_000 });
    const [{ id }] = await sql()`select id from auth.users where email = ${address}`;
    const k = await waitFor(() => keyInSync(id), "the key at the ledger's budget on LiteLLM", 15_000);

    // A promo code, redeemed through the form (Enter submits it).
    const code = `WEB${Date.now().toString(36).toUpperCase()}`;
    await sql()`select private.create_promo_code(${code}, 3.00, null, 30, null, 'browser test', 'vitest')`;
    await page.getByRole("textbox", { name: "Code", exact: true }).fill(code.toLowerCase());
    await page.getByRole("textbox", { name: "Code", exact: true }).press("Enter");
    await page.getByTestId("promo-status").filter({ hasText: "Added $3.00 of promo credit" }).waitFor();
    const promoLot = page.locator('[data-testid="lots"] tr[data-kind="promo"]');
    await promoLot.waitFor();
    expect(await promoLot.textContent()).toMatch(/Promo credit.*expires/s);
    // Spent first: the promo lot is the first row.
    expect(await page.locator('[data-testid="lots"] tbody tr').first().getAttribute("data-kind")).toBe("promo");
    await page.getByTestId("remaining").filter({ hasText: "$5.00" }).waitFor();
    // Redeeming twice is refused with the function's reason.
    await page.getByRole("textbox", { name: "Code", exact: true }).fill(code);
    await page.getByTestId("redeem").click();
    await page.getByTestId("promo-status").filter({ hasText: "You have already redeemed this promo code." }).waitFor();

    // Some spend, pulled by reconcile: a day of usage in the statement.
    const llm = new OpenAI({ apiKey: k.key_value, baseURL: env("LITELLM_PUBLIC_URL"), maxRetries: 0 });
    await llm.chat.completions.create({
      model: "test-expensive",
      messages: [{ role: "user", content: "x".repeat(2000) }],
    });
    await reconcileNow();
    const [{ remaining }] = await sql()`select remaining::text from public.my_account where user_id = ${id}`;
    await page.getByRole("button", { name: "Refresh" }).click();
    await page.getByTestId("remaining").filter({ hasText: money(remaining) }).waitFor();

    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("button", { name: "Download CSV" }).click(),
    ]);
    expect(download.suggestedFilename()).toBe(`ledger-${new Date().toISOString().slice(0, 10)}.csv`);
    const csv = readFileSync((await download.path())!, "utf8");
    const lines = csv.split("\r\n").filter(Boolean);
    expect(lines[0]).toBe("date,entry_type,description,reference,amount_usd,currency,amount_paid,balance_usd");
    expect(lines.slice(1).map((l) => l.split(",")[1])).toEqual(
      expect.arrayContaining(["signup_grant", "promo", "spend"]),
    );
    const last = lines.at(-1)!.split(",").at(-1)!;
    expect(last).toBe(remaining); // exact: the same decimal text as my_account.remaining
    expect(money(last)).toBe((await page.getByTestId("remaining").textContent())?.trim());
    await shot("promo-and-statement");
  });
});
