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
export function decimal(u: bigint): string {
  const neg = u < 0n;
  const a = neg ? -u : u;
  const s = a.toString().padStart(13, "0");
  return `${neg ? "-" : ""}${s.slice(0, -12)}.${s.slice(-12)}`;
}

// ---------- spend by model per day: a stacked SVG bar chart (the usage page) ----------

export interface ModelDayRow {
  day: string; // YYYY-MM-DD (UTC)
  model: string;
  spend: string | number;
}

/** Series colours (contrast >= 3:1 on white); 'other' is always grey. */
const PALETTE = ["#1f6feb", "#d97706", "#059669", "#b42318", "#7c3aed", "#0e7490", "#a16207", "#be185d"];
export const OTHER = "other";
export const seriesColor = (model: string, i: number) => (model === OTHER ? "#6b7280" : PALETTE[i % PALETTE.length]);

/** The UTC days from `from` to `to`, both included. */
export function daysBetween(from: string, to: string): string[] {
  const out: string[] = [];
  for (let t = Date.parse(`${from}T00:00:00Z`); t <= Date.parse(`${to}T00:00:00Z`); t += 86_400_000) {
    out.push(new Date(t).toISOString().slice(0, 10));
  }
  return out;
}

/**
 * One bar per day, one stacked segment per model (a <g class="series" data-model> each, in `models` order).
 * Heights are scaled on exact units; a negative amount ('other' when the models exceed the key's spend) is
 * left out of the bars and shown in the table.
 */
export function stackedChart(days: string[], models: string[], rows: ModelDayRow[]): string {
  const cell = new Map(rows.map((r) => [`${String(r.day).slice(0, 10)}|${r.model}`, units(r.spend)]));
  const at = (d: string, m: string) => {
    const u = cell.get(`${d}|${m}`) ?? 0n;
    return u > 0n ? u : 0n;
  };
  const totals = days.map((d) => models.reduce((s, m) => s + at(d, m), 0n));
  const max = totals.reduce((a, b) => (b > a ? b : a), 0n);
  const top = max === 0n ? 100n : axisMaxCents((max + 10n ** 10n - 1n) / 10n ** 10n); // ceiling, in cents
  const topUnits = top * 10n ** 10n;
  const W = 10; // viewBox units per day
  const h = (u: bigint) => Number((u * 10000n) / topUnits) / 100; // percent of the plot height
  const series = models.map((m, i) => {
    const rects = days.map((d, j) => {
      const u = at(d, m);
      if (u === 0n) return "";
      const below = models.slice(0, i).reduce((s, n) => s + at(d, n), 0n);
      return `<rect x="${j * W + 1}" y="${(100 - h(below) - h(u)).toFixed(2)}" width="${W - 2}" height="${
        Math.max(h(u), 0.4).toFixed(2)
      }"><title>${esc(`${fmtDay(d)} · ${m}: ${money(decimal(u), { tiny: true })}`)}</title></rect>`;
    }).join("");
    return `<g class="series" data-model="${esc(m)}" fill="${seriesColor(m, i)}">${rects}</g>`;
  }).join("");
  const total = totals.reduce((a, b) => a + b, 0n);
  const summary = total === 0n
    ? "No usage in this range."
    : `${money(decimal(total), { tiny: true })} spent on ${models.length} ${
      models.length === 1 ? "model" : "models"
    } from ${fmtDay(days[0])} to ${fmtDay(days[days.length - 1])}.`;
  const legend = models.map((m, i) =>
    `<li><span class="swatch" style="background:${seriesColor(m, i)}"></span>${esc(m)}</li>`
  ).join("");
  return `<figure class="chart stacked" data-testid="usage-chart">
  <div class="chart-plot">
    <div class="y-axis" aria-hidden="true"><span>${esc(money(centsStr(top)))}</span><span>${
    esc(money(centsStr(top / 2n)))
  }</span><span>$0.00</span></div>
    <svg viewBox="0 0 ${days.length * W} 100" preserveAspectRatio="none" role="img" aria-label="${
    esc(`Stacked bar chart of daily spend by model. ${summary}`)
  }">${series}</svg>
  </div>
  <div class="x-axis" aria-hidden="true"><span>${esc(fmtDay(days[0]))}</span><span>${
    esc(fmtDay(days[days.length - 1]))
  }</span></div>
  <ul class="legend">${legend}</ul>
  <figcaption>${esc(summary)}</figcaption>
</figure>`;
}
