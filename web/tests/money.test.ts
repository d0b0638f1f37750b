// Money on the dashboard is formatted from exact decimals (no float drift), and the chart fills 30 UTC days.
import { describe, expect, it } from "vitest";
import { lastDays, usageChart } from "../src/chart.ts";
import { money, ratio, subunits } from "../src/money.ts";

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

  it("formats Paystack subunits and ratios exactly", () => {
    expect(subunits(500)).toBe("$5.00");
    expect(subunits(1505)).toBe("$15.05");
    expect(ratio("3.5", "12")).toBeCloseTo(0.291666, 6);
    expect(ratio("13", "12")).toBe(1);
    expect(ratio("1", "0")).toBe(0);
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
