// The usage page, #/usage: spend by model over a chosen range of UTC days (7, 30 or 90 days, or from/to),
// as a stacked chart (chart.ts) and a table per model (spend, requests, input and output tokens), from
// public.my_usage_by_model (RLS: the signed-in user's own rows). 'other' is spend LiteLLM reported for the
// key that no model explains (docs/architecture.md, "Usage by model"); it is shown, never hidden.
import { gen, root, sb, state } from "./app.ts";
import { daysBetween, decimal, lastDays, type ModelDayRow, OTHER, seriesColor, stackedChart } from "./chart.ts";
import { $, esc, fmtDay, setHtml } from "./html.ts";
import { money, units } from "./money.ts";
import { topbar } from "./views.ts";

export interface UsageRow extends ModelDayRow {
  requests: number;
  input_tokens: number;
  output_tokens: number;
}
export const USAGE_COLS = "day,model,spend::text,requests,input_tokens,output_tokens";
export const RANGES = [7, 30, 90];
const DAY = /^\d{4}-\d{2}-\d{2}$/;
const MAX_DAYS = 366;

export const usageRoute = () => /^#\/usage(\?|$)/.test(location.hash);

/** The range the address asks for (#/usage?days=7, #/usage?from=…&to=…), else the last 30 days. */
export function rangeOf(hash: string, now = new Date()): { from: string; to: string; days: number | null } {
  const q = new URLSearchParams(hash.split("?")[1] ?? "");
  const from = q.get("from") ?? "", to = q.get("to") ?? "";
  if (DAY.test(from) && DAY.test(to) && from <= to && daysBetween(from, to).length <= MAX_DAYS) {
    return { from, to, days: null };
  }
  const n = RANGES.includes(Number(q.get("days"))) ? Number(q.get("days")) : 30;
  const days = lastDays(n, now);
  return { from: days[0], to: days[days.length - 1], days: n };
}

/** Per model over the range: exact sums (integer units), biggest spend first, 'other' last. */
export function byModel(rows: UsageRow[]) {
  const m = new Map<string, { spend: bigint; requests: number; input: number; output: number }>();
  for (const r of rows) {
    const t = m.get(r.model) ?? { spend: 0n, requests: 0, input: 0, output: 0 };
    t.spend += units(r.spend);
    t.requests += Number(r.requests);
    t.input += Number(r.input_tokens);
    t.output += Number(r.output_tokens);
    m.set(r.model, t);
  }
  return [...m.entries()].map(([model, t]) => ({ model, ...t }))
    .sort((
      a,
      b,
    ) => (a.model === OTHER ? 1 : b.model === OTHER ? -1 : b.spend > a.spend ? 1 : b.spend < a.spend ? -1 : 0));
}

const count = new Intl.NumberFormat();

export function usageTable(rows: UsageRow[]): string {
  const models = byModel(rows);
  if (models.length === 0) {
    return `<p class="muted">No usage in this range yet. Calls you make with your key show up here.</p>`;
  }
  const line = (m: ReturnType<typeof byModel>[number], i: number) =>
    `<tr data-model="${esc(m.model)}"><th scope="row"><span class="swatch" style="background:${
      seriesColor(m.model, i)
    }"></span>${esc(m.model)}${
      m.model === OTHER ? ` <span class="muted">(spend no model accounts for yet)</span>` : ""
    }</th><td class="num">${esc(money(decimal(m.spend), { tiny: true }))}</td><td class="num">${
      count.format(m.requests)
    }</td><td class="num">${count.format(m.input)}</td><td class="num">${count.format(m.output)}</td></tr>`;
  const total = models.reduce((s, m) => s + m.spend, 0n);
  return `<table class="usage-table" data-testid="usage-table"><caption class="sr-only">Spend by model</caption>
<thead><tr><th scope="col">Model</th><th scope="col" class="num">Spend</th><th scope="col" class="num">Requests</th><th scope="col" class="num">Input tokens</th><th scope="col" class="num">Output tokens</th></tr></thead>
<tbody>${models.map(line).join("")}</tbody>
<tfoot><tr><th scope="row">Total</th><td class="num">${
    esc(money(decimal(total), { tiny: true }))
  }</td><td colspan="3"></td></tr></tfoot></table>`;
}

function rangePicker(r: ReturnType<typeof rangeOf>): string {
  const links = RANGES.map((n) =>
    `<a href="#/usage?days=${n}" class="range-link${r.days === n ? " current" : ""}"${
      r.days === n ? ' aria-current="page"' : ""
    }>${n} days</a>`
  ).join("");
  return `<nav class="range" aria-label="Range">${links}
<form id="usage-range" class="range-form"><label>From <input type="date" name="from" value="${
    esc(r.from)
  }" required></label>
<label>To <input type="date" name="to" value="${
    esc(r.to)
  }" required></label><button type="submit" class="small">Show</button></form></nav>`;
}

export async function showUsage() {
  const my = gen;
  const hash = location.hash;
  const r = rangeOf(hash);
  root.dataset.view = "usage";
  document.title = "Usage by model · LLM credit";
  root.innerHTML = `${topbar(state.email)}
<main id="main" class="wrap usage-page" tabindex="-1">
  <p><a href="#/">Back to your dashboard</a></p>
  <h1>Usage by model</h1>
  ${rangePicker(r)}
  <p class="muted">${esc(fmtDay(r.from))} to ${esc(fmtDay(r.to))} (UTC days)</p>
  <section class="card" aria-labelledby="usage-chart-h"><h2 id="usage-chart-h">Spend by model per day</h2><div id="usage-chart"><p class="muted">Loading…</p></div></section>
  <section class="card" aria-labelledby="usage-table-h"><h2 id="usage-table-h">By model</h2><div id="usage-models"></div></section>
</main>`;
  $<HTMLFormElement>("#usage-range")?.addEventListener("submit", (e) => {
    e.preventDefault();
    const f = new FormData(e.target as HTMLFormElement);
    location.hash = `#/usage?from=${f.get("from")}&to=${f.get("to")}`;
  });
  const { data, error } = await sb.from("my_usage_by_model").select(USAGE_COLS).gte("day", r.from).lte("day", r.to)
    .order("day");
  if (my !== gen || location.hash !== hash) return;
  if (error) {
    setHtml(
      $("#usage-chart"),
      `<div class="banner danger" role="alert">We could not load your usage (${
        esc(error.message)
      }). Please reload the page.</div>`,
    );
    return;
  }
  const rows = (data ?? []) as unknown as UsageRow[];
  const models = byModel(rows).map((m) => m.model);
  setHtml($("#usage-chart"), stackedChart(daysBetween(r.from, r.to), models, rows));
  setHtml($("#usage-models"), usageTable(rows));
}
