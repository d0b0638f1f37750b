// Key rotation from the dashboard, in Chromium against the local stack: a signed-in user with an active key
// (and a low balance, so the low-balance banner from my_account.low_balance_level shows) rotates it through
// the "Rotate key" button and its confirmation dialog. The masked key on the page changes, the old key is
// refused by LiteLLM (401), the new one works, and the remaining credit on screen is unchanged to the cent.
// A second user goes through the slower answers: LiteLLM down (503, "saved"), then the 202 "waiting" loop.
// rotation_settle_seconds (and, for the 202 case, rotation_max_inline_wait_seconds) are lowered through SQL
// and restored afterwards. Screenshots go to test-results/rotation-*.png.
import OpenAI from "openai";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  closeSql,
  confirmationLink,
  env,
  invoke,
  keyInSync,
  keyOnLiteLLM,
  litellmAdmin,
  sql,
  waitFor,
} from "../../supabase/tests/integration/helpers.ts";
import {
  DESKTOP,
  launchChromium,
  newPage,
  PASSWORD,
  reconcileNow,
  screenshots,
  testIdText,
  WEB_URL,
} from "./browser.ts";

const PHONE = { width: 390, height: 844 };

let browser: Browser;
let page: Page;
const saved = new Map<string, unknown>(); // private.settings values to restore

const shot = screenshots("rotation", () => page);
/** The same page at phone width (then back to desktop). */
async function phoneShot(name: string) {
  await page.setViewportSize(PHONE);
  await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
  await shot(name);
  await page.setViewportSize(DESKTOP);
}
const text = (testId: string) => testIdText(page, testId);
const email = (tag: string) =>
  `web-${tag}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 6)}@example.com`;
const rotateButton = () => page.locator('[data-action="rotate"]');
const status = () => page.getByTestId("rotation-status");
const phase = async () => await status().getAttribute("data-phase");

async function setting(key: string, value: string) {
  if (!saved.has(key)) {
    const [row] = await sql()`select value from private.settings where key = ${key}`;
    expect(row, `private.settings has ${key}`).toBeTruthy();
    saved.set(key, row.value);
  }
  await sql()`update private.settings set value = ${value}::jsonb where key = ${key}`;
}

async function signUp(address: string) {
  await page.goto(WEB_URL);
  await page.getByRole("button", { name: "Create an account" }).click();
  await page.getByLabel("Email").fill(address);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create account" }).click();
  await page.getByRole("heading", { name: "Check your email" }).waitFor();
  await page.goto(await confirmationLink(address)); // the emailed link signs the user in
  await page.getByTestId("key-status").filter({ hasText: "Active" }).waitFor({ timeout: 15_000 });
  // The confirmation's grant reaches LiteLLM through push-budget: wait for it before spending.
  const [{ id }] = await sql()`select id from auth.users where email = ${address}`;
  await waitFor(() => keyInSync(id), "the key at the ledger's budget on LiteLLM", 15_000);
}

/** The full key, through Reveal (then hidden again). */
async function revealedKey(): Promise<string> {
  await page.getByRole("button", { name: "Reveal" }).click();
  const key = await text("key-value");
  await page.getByRole("button", { name: "Hide" }).click();
  expect(key).toMatch(/^sk-[A-Za-z0-9_-]{20,}$/);
  return key;
}

const llm = (key: string) => new OpenAI({ apiKey: key, baseURL: env("LITELLM_PUBLIC_URL"), maxRetries: 0 });
async function chatStatus(key: string, model = "test-free", chars = 5): Promise<number> {
  try {
    await llm(key).chat.completions.create({ model, messages: [{ role: "user", content: "x".repeat(chars) }] });
    return 200;
  } catch (e) {
    return (e as { status?: number }).status ?? -1;
  }
}

async function remainingInDb(address: string): Promise<string> {
  const [a] =
    await sql()`select a.remaining::text from public.my_account a join auth.users u on u.id = a.user_id where u.email = ${address}`;
  return a.remaining as string;
}

beforeAll(async () => {
  browser = await launchChromium();
  page = await newPage(browser);
  await setting("rotation_settle_seconds", "1");
});

afterAll(async () => {
  await litellmAdmin("/admin/down", { down: false }).catch(() => {});
  for (const [key, value] of saved) {
    await sql()`update private.settings set value = ${JSON.stringify(value)}::jsonb where key = ${key}`;
  }
  await closeSql();
  await browser?.close();
});

describe("key rotation from the dashboard", () => {
  const user = { email: "", key: "" };

  it(
    "a user with an active key and a low balance rotates it: new masked key, old key refused, credit unchanged",
    async () => {
      user.email = email("rotate");
      await signUp(user.email);
      user.key = await revealedKey();
      // Spend most of the free $2.00 with real calls (test-expensive: $1 per 1k tokens, 4 characters a token).
      expect(await chatStatus(user.key, "test-expensive", 3936)).toBe(200);
      expect(await chatStatus(user.key, "test-expensive", 2800)).toBe(200);
      const spend = (await keyOnLiteLLM(user.key)).spend as number;
      expect(spend).toBeGreaterThan(1.6);
      expect(spend).toBeLessThan(1.9);
      await reconcileNow();
      await page.getByRole("button", { name: "Refresh" }).click();
      const remaining = `$${(2 - spend).toFixed(2)}`;
      await page.getByTestId("remaining").filter({ hasText: remaining }).waitFor();
      // 5 % < remaining <= 20 % of what was granted: my_account.low_balance_level = 20.
      const banner = page.getByTestId("low-balance");
      expect(await banner.getAttribute("data-level")).toBe("20");
      expect(await banner.textContent()).toContain(`Low balance: ${remaining} left`);
      const maskedBefore = await text("key-value");
      expect(maskedBefore).toBe(`sk-...${user.key.slice(-4)}`);
      const remainingBefore = await remainingInDb(user.email);
      await shot("before");

      // The confirmation, by keyboard: Enter opens it with focus on Cancel; Escape closes it and gives focus back.
      await rotateButton().focus();
      await page.keyboard.press("Enter");
      const dialog = page.getByRole("dialog", { name: "Rotate your API key?" });
      await dialog.waitFor();
      expect(await dialog.textContent()).toContain(
        `Your current key stops working now; a new key carries your remaining credit (${remaining})`,
      );
      expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Cancel");
      await shot("confirm");
      await phoneShot("confirm-phone");
      await page.keyboard.press("Escape");
      await dialog.waitFor({ state: "hidden" });
      expect(await page.evaluate(() => (document.activeElement as HTMLElement | null)?.dataset.action)).toBe("rotate");
      expect(await text("key-value")).toBe(maskedBefore); // nothing happened
      await page.keyboard.press("Enter");
      await dialog.waitFor();
      await page.keyboard.press("Tab"); // Cancel -> Rotate key now
      expect(await page.evaluate(() => document.activeElement?.textContent)).toBe("Rotate key now");
      await page.keyboard.press("Enter");

      // While it runs: the button is disabled and the progress is in words.
      await page.locator('[data-action="rotate"]:disabled').waitFor({ timeout: 2_000 });
      expect(await status().textContent()).toMatch(/Rotating your key \(\d+ s\)/);
      expect(await text("key-status")).toBe("Being replaced by a new key");
      await shot("rotating");
      await waitFor(async () => (await phase()) === "done", "the rotation to finish on the page", 30_000, 100);

      // The new key: masked on the page, the same one my_key holds, the credit unchanged to the cent.
      const [live] = await sql()`select k.key_value from public.api_keys k join auth.users u on u.id = k.user_id
                                where u.email = ${user.email} and k.status = 'active'`;
      const newKey = live.key_value as string;
      expect(newKey).not.toBe(user.key);
      const maskedAfter = await text("key-value");
      expect(maskedAfter).not.toBe(maskedBefore);
      expect(maskedAfter).toBe(`sk-...${newKey.slice(-4)}`);
      expect(await status().textContent()).toContain(
        `Key rotated. Your new key is ${maskedAfter} and carries your remaining credit, ${remaining}.`,
      );
      expect(await text("remaining")).toBe(remaining);
      // In the database too: to the cent, and exactly but for the retired spend's rounding up to 1e-8 USD.
      const remainingAfter = await remainingInDb(user.email);
      expect(Math.round(Number(remainingAfter) * 100)).toBe(Math.round(Number(remainingBefore) * 100));
      expect(Math.abs(Number(remainingAfter) - Number(remainingBefore))).toBeLessThanOrEqual(1e-8);
      expect(Math.round((await keyOnLiteLLM(newKey)).max_budget * 100)).toBe(Math.round(Number(remainingBefore) * 100));
      expect(await page.getByTestId("low-balance").getAttribute("data-level")).toBe("20");
      expect(await rotateButton().isDisabled()).toBe(false);
      expect(await revealedKey()).toBe(newKey);
      await shot("done");
      await phoneShot("done-phone");

      // LiteLLM: the old key is refused, the new one works.
      expect(await chatStatus(user.key)).toBe(401);
      expect(await chatStatus(newKey)).toBe(200);
      await expect(
        llm(user.key).chat.completions.create({ model: "test-free", messages: [{ role: "user", content: "hi" }] }),
      )
        .rejects.toMatchObject({ status: 401 });
      user.key = newKey;

      // A second rotation within a minute is refused (429 too_soon), in words; the key stays.
      await page.getByRole("button", { name: "Dismiss" }).click();
      await rotateButton().click();
      await page.getByRole("button", { name: "Rotate key now" }).click();
      await waitFor(async () => (await phase()) === "error", "the too-soon answer", 10_000, 100);
      expect(await status().textContent()).toContain("less than a minute ago");
      expect(await text("key-value")).toBe(maskedAfter);
      expect(await chatStatus(newKey)).toBe(200);
      await shot("too-soon");
    },
    90_000,
  );

  it(
    "LiteLLM down: the rotation is saved (503); once it is back, Finish rotating goes through the 202 wait",
    async () => {
      await page.getByRole("button", { name: "Sign out" }).click();
      await page.getByRole("heading", { name: "Sign in" }).waitFor();
      const address = email("rotate-wait");
      await signUp(address);
      const oldKey = await revealedKey();
      const masked = await text("key-value");

      await litellmAdmin("/admin/down", { down: true });
      try {
        await rotateButton().click();
        await page.getByRole("button", { name: "Rotate key now" }).click();
        await waitFor(async () => (await phase()) === "saved", "the LiteLLM-down answer", 20_000, 100);
      } finally {
        await litellmAdmin("/admin/down", { down: false });
      }
      expect(await status().textContent()).toContain(
        "LiteLLM is not answering right now. Your rotation is saved; it will finish automatically, or try again in a minute.",
      );
      expect(await page.getByText("paused while a payment dispute").count()).toBe(0); // the block is the rotation's
      expect(await text("key-status")).toBe("Being replaced by a new key");
      await shot("litellm-down");

      // The function may wait inline 0 s and the settle time is 4 s: it answers 202 and the page calls again.
      await setting("rotation_max_inline_wait_seconds", "0");
      await setting("rotation_settle_seconds", "4");
      // Confirmed before, so no dialog. The functions' LiteLLM circuit breaker may still be open for a moment
      // (LITELLM_BREAKER_COOLDOWN_MS: 1.5 s under npm test, 30 s by default): until then the answer is 503 again.
      const deadline = Date.now() + 45_000;
      for (;;) {
        await page.waitForTimeout(2_000);
        await page.getByRole("button", { name: "Finish rotating" }).click();
        await page.locator('[data-testid="rotation-status"]:not([data-phase="running"])').waitFor({ timeout: 20_000 });
        if ((await phase()) !== "saved" || Date.now() > deadline) break;
      }
      await status().filter({ hasText: /Rotating: waiting for LiteLLM to settle the old key's spend \(\d+ s\)/ })
        .waitFor({ timeout: 15_000 });
      expect(await rotateButton().isDisabled()).toBe(true);
      await shot("waiting");
      await phoneShot("waiting-phone");
      await waitFor(async () => (await phase()) === "done", "the rotation to finish after the wait", 30_000, 100);
      expect(await text("key-value")).not.toBe(masked);
      expect(await text("remaining")).toBe("$2.00");
      expect(await chatStatus(oldKey)).toBe(401);
      expect(await chatStatus(await revealedKey())).toBe(200);
      await phoneShot("waiting-done-phone");
    },
    120_000,
  );
});
