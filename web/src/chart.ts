// Daily spend for the last 30 UTC days as CSS bars (HTML text scales at any width; no chart library).
import { esc, fmtDay } from "./html.ts";
import { money, units } from "./money.ts";

export interface DayRow {
  day: string; // YYYY-MM-DD (UTC)
  spend: string | number;
}

export const CHART_DAYS = 30;

/** The last `n` UTC days, oldest first, ending today. */
export function lastDays(n = CHART_DAYS, now = new Date()): string[] {
  const today = Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate());
  return Array.from({ length: n }, (_, i) => new Date(today - (n - 1 - i) * 86_400_000).toISOString().slice(0, 10));
}

/** A round axis maximum at or above the largest day (in cents): 1, 2, 5 x 10^k. */
function axisMaxCents(maxCents: bigint): bigint {
  if (maxCents <= 1n) return 1n;
  let step = 1n;
  for (;;) {
    for (const m of [1n, 2n, 5n]) if (m * step >= maxCents) return m * step;
    step *= 10n;
  }
}

export function usageChart(rows: DayRow[], now = new Date()): string {
  const days = lastDays(CHART_DAYS, now);
  const byDay = new Map(rows.map((r) => [String(r.day).slice(0, 10), r.spend]));
  const values = days.map((d) => byDay.get(d) ?? "0");
  const total = values.reduce<bigint>((s, v) => s + units(v), 0n);
  const totalStr = decimal(total);
  let maxIdx = 0;
  values.forEach((v, i) => {
    if (units(v) > units(values[maxIdx])) maxIdx = i;
  });
  const used = values.filter((v) => units(v) > 0n).length;
  // Scale on exact units; sub-cent days still get a visible sliver.
  const top = used === 0 ? 100n : axisMaxCents((units(values[maxIdx]) + 10n ** 10n - 1n) / 10n ** 10n); // ceiling, in cents
  const topUnits = top * 10n ** 10n;
  const bars = values.map((v, i) => {
    const u = units(v);
    const pct = u <= 0n ? 0 : Math.max(1.5, Number((u * 10000n) / topUnits) / 100);
    return `<li class="${u > 0n ? "bar" : "bar zero"}" style="--h:${pct}%" title="${
      esc(`${fmtDay(days[i])}: ${money(v, { tiny: true })}`)
    }"></li>`;
  }).join("");
  const summary = used === 0
    ? "No usage in the last 30 days yet."
    : `${money(totalStr, { tiny: true })} spent in the last 30 days on ${used} ${
      used === 1 ? "day" : "days"
    }; highest ${money(values[maxIdx], { tiny: true })} on ${fmtDay(days[maxIdx])}.`;
  const topLabel = money(centsStr(top));
  const table = used === 0 ? "" : `<details class="chart-table"><summary>Show the numbers</summary>
    <table><caption class="sr-only">Spend per day</caption><thead><tr><th scope="col">Day (UTC)</th><th scope="col" class="num">Spend</th></tr></thead><tbody>
    ${
    days.map((d, i) => (units(values[i]) > 0n
      ? `<tr><td>${esc(fmtDay(d))}</td><td class="num">${esc(money(values[i], { tiny: true }))}</td></tr>`
      : "")
    ).join("")
  }
    </tbody></table></details>`;
  return `<figure class="chart">
  <div class="chart-plot" role="img" aria-label="${esc(`Bar chart of daily spend. ${summary}`)}">
    <div class="y-axis" aria-hidden="true"><span>${esc(topLabel)}</span><span>${
    esc(money(centsStr(top / 2n)))
  }</span><span>$0.00</span></div>
    <ol class="bars" aria-hidden="true">${bars}</ol>
    ${
    used === 0
      ? `<p class="chart-empty" aria-hidden="true">No usage in the last 30 days yet. Calls you make with your key show up here.</p>`
      : ""
  }
  </div>
  <div class="x-axis" aria-hidden="true"><span>${esc(fmtDay(days[0]))}</span><span>${
    esc(fmtDay(days[14]))
  }</span><span>Today</span></div>
  ${used === 0 ? "" : `<figcaption>${esc(summary)}</figcaption>`}
  ${table}
</figure>`;
}

const centsStr = (c: bigint) => `${c / 100n}.${(c % 100n).toString().padStart(2, "0")}`;

/** Integer units back to a decimal string (for money()). */
function decimal(u: bigint): string {
  const neg = u < 0n;
  const a = neg ? -u : u;
  const s = a.toString().padStart(13, "0");
  return `${neg ? "-" : ""}${s.slice(0, -12)}.${s.slice(-12)}`;
}
