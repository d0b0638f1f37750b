// Money on the dashboard is formatted from exact decimals (no float drift), and the chart fills 30 UTC days.
import { describe, expect, it } from "vitest";
import { lastDays, usageChart } from "../src/chart.ts";
import { majorUnits, money, price, ratio } from "../src/money.ts";

describe("money()", () => {
  it.each([
    ["12.00", "$12.00"],
    [12, "$12.00"],
    [0.1 + 0.2, "$0.30"],
    ["8.499999999", "$8.50"],
    ["-1.255", "-$1.26"],
    ["1.5e-7", "$0.00"],
    ["1234567.891", "$1,234,567.89"],
    ["0.005", "$0.01"],
    ["0.00499999", "$0.00"],
    [null, "$0.00"],
  ])("%s -> %s", (v, want) => expect(money(v)).toBe(want));

  it("shows a non-zero amount under half a cent as < $0.01 when asked", () => {
    expect(money("0.0004", { tiny: true })).toBe("< $0.01");
    expect(money("0", { tiny: true })).toBe("$0.00");
  });

  it("formats ratios", () => {
    expect(ratio("3.5", "12")).toBeCloseTo(0.291666, 6);
    expect(ratio("13", "12")).toBe(1);
    expect(ratio("1", "0")).toBe(0);
  });
});

describe("prices in their own currency", () => {
  it.each([
    [500, 2, "5.00"],
    [1505, 2, "15.05"],
    [7, 2, "0.07"],
    [0, 2, "0.00"],
    [-250, 2, "-2.50"],
    [1500, 0, "1500"],
    ["900719925474099312", 2, "9007199254740993.12"], // beyond a double's exact integers: still exact
  ])("%s subunits at exponent %s are %s", (n, exp, want) => expect(majorUnits(n, exp)).toBe(want));

  it("formats naira with its symbol, grouping and the currency's subunit digits", () => {
    expect(price(750000, "NGN", 2, "en-NG")).toBe("₦7,500.00");
    expect(price(750000, "NGN", 2, "en-US")).toBe("₦7,500.00"); // the narrow symbol, not "NGN"
    expect(price(123456789, "NGN", 2, "en-NG")).toBe("₦1,234,567.89");
  });

  it("formats other currencies by their rules and the reader's locale", () => {
    expect(price(500, "USD", 2, "en-US")).toBe("$5.00");
    expect(price(7550, "GHS", 2, "en-GH")).toBe("GH₵75.50");
    expect(price(150000, "ZAR", 2, "en-ZA")).toBe("R 1 500,00".replace(/ /g, "\u00a0"));
    expect(price(2500, "XOF", 0, "fr-SN")).toMatch(/^2\s500\sF\sCFA$/);
    // Paystack's hundredths of a currency without a minor unit: whole amounts drop ".00", fractions stay.
    expect(price(250000, "XOF", 2, "fr-SN")).toMatch(/^2\s500\sF\sCFA$/);
    expect(price(250050, "XOF", 2, "fr-SN")).toMatch(/^2\s500,50\sF\sCFA$/);
    expect(price(150000, "RWF", 2, "en-RW")).toMatch(/^RF\s?1,500$/);
    // 0.1 + 0.2 style drift cannot happen: the digits go to Intl as an exact decimal string.
    expect(price(1000000000000000001n, "KES", 2, "en-KE")).toBe("Ksh\u00a010,000,000,000,000,000.01");
  });
});

describe("usage chart", () => {
  const now = new Date("2026-11-26T10:00:00Z");
  it("always shows 30 days ending today (UTC)", () => {
    const days = lastDays(30, now);
    expect(days).toHaveLength(30);
    expect(days[0]).toBe("2026-10-28");
    expect(days[29]).toBe("2026-11-26");
  });

  it("is readable with no data, one day, or thirty", () => {
    expect(usageChart([], now)).toContain("No usage in the last 30 days yet");
    const one = usageChart([{ day: "2026-11-26", spend: "3.0000001" }], now);
    expect(one).toContain("$3.00 spent in the last 30 days on 1 day");
    expect((one.match(/class="bar"/g) ?? []).length).toBe(1);
    const all = usageChart(lastDays(30, now).map((day, i) => ({ day, spend: `${i + 1}.10` })), now);
    expect((all.match(/class="bar"/g) ?? []).length).toBe(30);
    expect(all).toContain("on 30 days; highest $30.10 on");
  });
});
