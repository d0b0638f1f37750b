// The buy panel, payment history and receipt renderers (pure: rows in, HTML out): which amount shows where,
// in which currency, and what is escaped. How an amount is formatted is money.test.ts's subject, so expected
// amounts here come from price() in this process's locale.
import { describe, expect, it } from "vitest";
import { price } from "../src/money.ts";
import { type Payment, paymentsCard, type Receipt, receiptHtml } from "../src/payments.ts";
import { buyCard, chooseCurrency, currenciesOf, type Price } from "../src/prices.ts";

const row = (plan: string, currency: string, amount: number, credit: string, extra: Partial<Price> = {}): Price => ({
  plan,
  name: plan[0].toUpperCase() + plan.slice(1),
  currency,
  amount_subunits: amount,
  exponent: 2,
  credit,
  channels: [],
  is_default: currency === "USD",
  sort_order: { starter: 1, pro: 2, max: 3 }[plan] ?? 9,
  ...extra,
});
const PRICES = [
  row("pro", "NGN", 2250000, "30"),
  row("starter", "NGN", 750000, "10"),
  row("starter", "USD", 500, "10"),
  row("pro", "USD", 1500, "30"),
  row("starter", "GHS", 7500, "10"),
];
const text = (html: string) => html.replace(/<[^>]+>/g, " ").replace(/\s+/g, " ").trim();

describe("buy panel", () => {
  it("lists the currencies on sale, the default first, and picks the wanted one that is on sale", () => {
    expect(currenciesOf(PRICES)).toEqual(["USD", "GHS", "NGN"]);
    expect(chooseCurrency(PRICES, null, "NGN")).toBe("NGN");
    expect(chooseCurrency(PRICES, "KES", "GHS")).toBe("GHS"); // KES is not on sale
    expect(chooseCurrency(PRICES, undefined, "EUR")).toBe("USD");
    expect(chooseCurrency([], "USD")).toBeNull();
  });

  it("shows the plans of the chosen currency in plan order, with the USD credit, and a picker", () => {
    const html = buyCard(PRICES, "NGN", null);
    const starter = price(750000, "NGN", 2);
    const pro = price(2250000, "NGN", 2);
    expect(text(html)).toContain(`Starter Pay ${starter} $10.00 of credit Buy Starter for ${starter}`);
    expect(html.indexOf(starter)).toBeLessThan(html.indexOf(pro));
    expect(html).not.toContain(price(500, "USD", 2));
    expect(html).toContain('<option value="NGN" selected>');
    expect(html).toContain('data-plan="starter"');
  });

  it("has no picker with one currency on sale, and says when nothing is", () => {
    const usd = PRICES.filter((p) => p.currency === "USD");
    expect(buyCard(usd, "USD", null)).not.toContain("<select");
    expect(text(buyCard([], null, null))).toContain("No plans are on sale right now.");
  });

  it("disables every button and the picker while a checkout opens", () => {
    const html = buyCard(PRICES, "USD", "starter");
    expect(html).toContain("Opening checkout…");
    expect(html.match(/ disabled/g)?.length).toBe(3); // two plans, the picker
  });
});

const payment: Payment = {
  reference: "lc-<x>",
  plan_code: "starter",
  plan_name: "Starter",
  amount_subunits: 750000,
  currency: "NGN",
  exponent: 2,
  channel: "mobile_money",
  fx_rate: "1500",
  credit: "10.00",
  refunded_subunits: 375000,
  status: "partially_refunded",
  paid_at: "2026-12-02T10:00:00Z",
  created_at: "2026-12-02T09:59:00Z",
};

describe("payment history", () => {
  it("shows each payment in its currency, how it was paid, the USD credit, refunds, and its receipt link", () => {
    const html = paymentsCard([payment]);
    const t = text(html);
    expect(t).toContain(`Starter ${price(750000, "NGN", 2)} Mobile money $10.00`);
    expect(t).toContain(`Partly refunded (${price(375000, "NGN", 2)} back)`);
    expect(html).toContain('href="#/receipt/lc-%3Cx%3E"'); // the reference is encoded in the link ...
    expect(html).toContain('<code class="ref">lc-&lt;x&gt;</code>'); // ... and escaped on the page
  });

  it("shows a dash when Paystack did not say the channel", () => {
    expect(text(paymentsCard([{ ...payment, channel: null }]))).toContain(`${price(750000, "NGN", 2)} – $10.00`);
  });
});

const receipt: Receipt = {
  reference: "lc-1",
  paid_at: "2026-12-02T10:00:00Z",
  plan_name: "Starter",
  currency: "NGN",
  exponent: 2,
  amount_subunits: 750000,
  charged_subunits: 750000,
  channel: "card",
  credit: "10.00",
  refunded_subunits: 0,
  credit_reversed: "0",
  fx_rate: "1500",
  status: "credited",
  merchant_name: "<b>Shop</b>",
};
/** The text of one line of the receipt. */
const line = (html: string, id: string) =>
  text(new RegExp(`data-testid="receipt-${id}">([\\s\\S]*?)</dd>`).exec(html)?.[1] ?? "");

describe("receipt", () => {
  it("shows what was paid, how, the USD credit and the exchange rate; the merchant's name is text", () => {
    const html = receiptHtml(receipt);
    expect(html).toContain("&lt;b&gt;Shop&lt;/b&gt;");
    expect(line(html, "amount")).toBe(`${price(750000, "NGN", 2)} NGN`);
    expect(line(html, "channel")).toBe("Card");
    expect(line(html, "credit")).toBe("$10.00 USD, LLM credit");
    expect(line(html, "rate")).toMatch(/^1 USD = 1.?500 NGN$/);
    expect(line(html, "status")).toBe("Credited");
    for (const absent of ["refunded", "reversed", "charged"]) expect(html).not.toContain(`receipt-${absent}`);
  });

  it("shows refunds in the charged currency and the USD credit taken back; no rate for a price set by hand", () => {
    const refund = { refunded_subunits: 375000, credit_reversed: "5.00", status: "partially_refunded" };
    const html = receiptHtml({ ...receipt, ...refund, fx_rate: null });
    expect(line(html, "refunded")).toBe(price(375000, "NGN", 2));
    expect(line(html, "reversed")).toBe("$5.00 USD");
    expect(line(html, "status")).toBe("Partly refunded");
    expect(html).not.toContain("receipt-rate");
  });

  it("shows what was charged when Paystack's fees were passed on, and leaves out an unknown channel", () => {
    const html = receiptHtml({ ...receipt, charged_subunits: 765000, channel: null });
    expect(line(html, "charged")).toBe(price(765000, "NGN", 2));
    expect(html).not.toContain("receipt-channel");
  });
});
