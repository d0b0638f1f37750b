// What the dashboard's browser tests share: Debian's Chromium started the way this machine allows (headless,
// no sandbox, no GPU, no background networking: the network is closed and Chromium would keep retrying),
// numbered screenshots in test-results/, the page's test ids as text, the emulator's success card, and one
// reconcile run on demand.
import { existsSync, mkdirSync } from "node:fs";
import { type Browser, type BrowserContextOptions, chromium, type Page } from "playwright-core";
import { env, invoke, waitFor } from "../../supabase/tests/integration/helpers.ts";

export const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
export const SHOTS = "test-results";
export const WEB_URL = `http://127.0.0.1:${process.env.STACK_WEB_PORT ?? 54423}/`;
export const PASSWORD = "correct-horse-battery"; // what helpers.signUp gives every user
// The Paystack emulator's card that succeeds (stack/emulators/paystack/README.md).
export const SUCCESS_CARD = { number: "4084 0840 8408 4081", expiry: "12/30", cvv: "408" };
export const DESKTOP = { width: 1280, height: 900 };

export async function launchChromium(): Promise<Browser> {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: run npm run setup (it installs Debian's chromium)`);
  }
  mkdirSync(SHOTS, { recursive: true });
  return await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--disable-quic",
      "--no-first-run",
    ],
  });
}

/** A new page in a new context (desktop size unless told), with a 10 s default timeout. */
export async function newPage(browser: Browser, options: BrowserContextOptions = {}): Promise<Page> {
  const page = await (await browser.newContext({ viewport: DESKTOP, ...options })).newPage();
  page.setDefaultTimeout(10_000);
  return page;
}

/** shot(name) saves test-results/<prefix>-NN-<name>.png of the page (numbered in call order). */
export function screenshots(prefix: string, current: () => Page) {
  let step = 0;
  return async (name: string, p: Page = current()) => {
    step++;
    await p.screenshot({ path: `${SHOTS}/${prefix}-${String(step).padStart(2, "0")}-${name}.png`, fullPage: true });
  };
}

/** The trimmed text of the element with this data-testid. */
export async function testIdText(page: Page, testId: string): Promise<string> {
  return ((await page.getByTestId(testId).textContent()) ?? "").trim();
}

/** Pays on the Paystack emulator's hosted page with the success card (the page is already open). */
export async function payWithSuccessCard(page: Page) {
  await page.getByLabel("Card number").fill(SUCCESS_CARD.number);
  await page.getByLabel("Expiry (MM/YY)").fill(SUCCESS_CARD.expiry);
  await page.getByLabel("CVV").fill(SUCCESS_CARD.cvv);
}

/** One reconcile run that processed chunks (a cron-started run may hold the lease for a moment). */
export async function reconcileNow() {
  return await waitFor(
    async () => {
      const r = await invoke("reconcile-spend", { force: true, max_chunks: 100 }, env("CRON_SECRET"));
      return r.status === 200 && r.body?.claimed > 0 ? r.body : null;
    },
    "a reconcile run that claims chunks",
    15_000,
    300,
  );
}
