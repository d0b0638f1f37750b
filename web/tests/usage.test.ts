// The usage page (#/usage) in Chromium against the local stack: a user calls three models through the LiteLLM
// emulator with the official openai client; the spend callback records each request; the page then shows a
// stacked SVG chart with one series per model and a table per model (spend, requests, tokens) whose spend
// adds up to what the user spent, for the range picked (7/30/90 days or from/to). Screenshots go to
// test-results/usage-*.png.
import { existsSync, mkdirSync } from "node:fs";
import OpenAI from "openai";
import { type Browser, chromium, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { activeUser, closeSql, env, sql, type TestUser, waitFor } from "../../supabase/tests/integration/helpers.ts";
import { money } from "../src/money.ts";

const CHROMIUM = process.env.CHROMIUM_PATH ?? "/usr/bin/chromium";
const SHOTS = "test-results";
const WEB_URL = `http://127.0.0.1:${process.env.STACK_WEB_PORT ?? 54423}/`;
const PASSWORD = "correct-horse-battery"; // what helpers.ts signs users up with
const MODELS = ["gpt-4o-mini", "claude-3-5-haiku", "test-expensive"];

let browser: Browser;
let page: Page;
let user: TestUser & { key: string; keyId: string };

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} is missing: run npm run setup (it installs Debian's chromium)`);
  }
  mkdirSync(SHOTS, { recursive: true });
  user = await activeUser("usage-web");
  const llm = new OpenAI({ apiKey: user.key, baseURL: env("LITELLM_PUBLIC_URL"), maxRetries: 0 });
  for (const model of MODELS) {
    await llm.chat.completions.create({
      model,
      messages: [{ role: "user", content: `hello ${model}` }],
      max_tokens: 4,
    });
  }
  await waitFor(
    async () => {
      const [r] =
        await sql()`select count(distinct model)::int as n from public.usage_by_model where key_id = ${user.keyId}`;
      return r.n === MODELS.length;
    },
    "the callback's usage rows for the three models",
    15_000,
  );
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--no-first-run",
    ],
  });
  page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
  page.setDefaultTimeout(10_000);
});

afterAll(async () => {
  await browser?.close();
  await closeSql();
});

const series = () => page.locator('[data-testid="usage-chart"] svg g.series');

describe("usage page", () => {
  it("shows a stacked chart with a series per model and a table per model", async () => {
    await page.goto(WEB_URL);
    await page.getByLabel("Email").fill(user.email);
    await page.getByLabel("Password").fill(PASSWORD);
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByTestId("key-status").filter({ hasText: "Active" }).waitFor({ timeout: 15_000 });
    await page.getByRole("link", { name: "Usage by model" }).click();
    await page.getByRole("heading", { name: "Usage by model" }).waitFor();
    await page.getByTestId("usage-table").waitFor();

    const models = await series().evaluateAll((gs) => gs.map((g) => g.getAttribute("data-model")));
    expect(models.filter((m) => m !== "other").sort()).toEqual([...MODELS].sort());
    for (const m of MODELS) {
      expect(await page.locator(`g.series[data-model="${m}"] rect`).count()).toBe(1); // today's bar segment
    }
    const rows = await page.locator('[data-testid="usage-table"] tbody tr').evaluateAll((trs) =>
      trs.map((tr) => [tr.getAttribute("data-model"), ...[...tr.querySelectorAll("td")].map((td) => td.textContent)])
    );
    const spendOf = await sql()<{ model: string; spend: string }[]>`
      select model, sum(spend)::text as spend from public.usage_by_model where key_id = ${user.keyId} group by model`;
    for (const { model, spend } of spendOf) {
      expect(rows).toContainEqual([model, money(spend, { tiny: true }), "1", expect.any(String), "4"]);
    }
    await page.screenshot({ path: `${SHOTS}/usage-01-by-model.png`, fullPage: true });
  });

  it("keeps the models for another range (7 days, from/to) and shows none for a range without usage", async () => {
    await page.getByRole("link", { name: "7 days" }).click();
    await page.waitForURL(/#\/usage\?days=7$/);
    await page.getByTestId("usage-table").waitFor();
    expect(await series().count()).toBeGreaterThanOrEqual(MODELS.length);

    await page.getByLabel("From", { exact: true }).fill("2026-01-01");
    await page.getByLabel("To", { exact: true }).fill("2026-01-31");
    await page.getByRole("button", { name: "Show", exact: true }).click();
    await page.waitForURL(/from=2026-01-01&to=2026-01-31/);
    await page.getByText("No usage in this range yet.").waitFor();
    expect(await page.locator('[data-testid="usage-chart"] svg rect').count()).toBe(0);
    await page.screenshot({ path: `${SHOTS}/usage-02-empty-range.png`, fullPage: true });
  });
});
