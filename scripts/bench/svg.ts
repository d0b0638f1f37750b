// A line chart as SVG text, no library: the benchmarks draw docs/charts/*.svg with it, so the pictures in
// docs/benchmarks.md always come from measured numbers. Axes may be logarithmic (base 10).
export interface Series {
  name: string;
  points: [number, number][];
  dashed?: boolean;
}

export interface Chart {
  title: string;
  caption: string[]; // lines under the plot: machine, date, commit, load
  x: { label: string; log?: boolean };
  y: { label: string; log?: boolean; min?: number };
  series: Series[];
}

const W = 900;
const PLOT = { left: 70, top: 40, width: 470, height: 300 };
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];

const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const fmt = (v: number) =>
  Math.abs(v) >= 1000 ? v.toLocaleString("en-US", { maximumFractionDigits: 0 }) : String(Number(v.toPrecision(3)));

/** Tick values: powers of ten on a log axis, else about five round steps. */
function ticks(lo: number, hi: number, log: boolean): number[] {
  if (log) {
    const out: number[] = [];
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) out.push(10 ** e);
    return out;
  }
  const step = 10 ** Math.floor(Math.log10((hi - lo) / 5 || 1));
  const nice = [1, 2, 5, 10].map((m) => m * step).find((s) => (hi - lo) / s <= 6) ?? step * 10;
  const out: number[] = [];
  for (let v = Math.floor(lo / nice) * nice; v <= hi + nice / 2; v += nice) out.push(Number(v.toPrecision(12)));
  return out;
}

function scale(values: number[], log: boolean, min?: number) {
  const vs = values.filter((v) => Number.isFinite(v) && (!log || v > 0));
  let lo = min ?? Math.min(...vs);
  let hi = Math.max(...vs);
  if (log) {
    lo = 10 ** Math.floor(Math.log10(lo));
    hi = 10 ** Math.ceil(Math.log10(hi));
  } else if (hi === lo) hi = lo + 1;
  const t = ticks(lo, hi, log);
  if (!log) [lo, hi] = [Math.min(lo, t[0]), Math.max(hi, t[t.length - 1])];
  const f = (v: number) =>
    log ? (Math.log10(v) - Math.log10(lo)) / (Math.log10(hi) - Math.log10(lo)) : (v - lo) / (hi - lo);
  return { f, ticks: t.filter((v) => v >= lo && v <= hi) };
}

export function lineChart(c: Chart): string {
  const all = c.series.flatMap((s) => s.points);
  const sx = scale(all.map((p) => p[0]), !!c.x.log);
  const sy = scale(all.map((p) => p[1]), !!c.y.log, c.y.min);
  const X = (v: number) => PLOT.left + sx.f(v) * PLOT.width;
  const Y = (v: number) => PLOT.top + PLOT.height - sy.f(v) * PLOT.height;
  const H = PLOT.top + PLOT.height + 60 + c.caption.length * 16;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
    `<rect width="${W}" height="${H}" fill="#fff"/>`,
    `<text x="${PLOT.left}" y="22" font-size="15" font-weight="bold">${esc(c.title)}</text>`,
  ];
  for (const v of sx.ticks) {
    out.push(`<line x1="${X(v)}" y1="${PLOT.top}" x2="${X(v)}" y2="${PLOT.top + PLOT.height}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${X(v)}" y="${PLOT.top + PLOT.height + 16}" text-anchor="middle">${fmt(v)}</text>`);
  }
  for (const v of sy.ticks) {
    out.push(`<line x1="${PLOT.left}" y1="${Y(v)}" x2="${PLOT.left + PLOT.width}" y2="${Y(v)}" stroke="#e5e5e5"/>`);
    out.push(`<text x="${PLOT.left - 6}" y="${Y(v) + 4}" text-anchor="end">${fmt(v)}</text>`);
  }
  out.push(
    `<rect x="${PLOT.left}" y="${PLOT.top}" width="${PLOT.width}" height="${PLOT.height}" fill="none" stroke="#333"/>`,
    `<text x="${PLOT.left + PLOT.width / 2}" y="${PLOT.top + PLOT.height + 36}" text-anchor="middle">${
      esc(c.x.label)
    }</text>`,
    `<text transform="translate(18 ${PLOT.top + PLOT.height / 2}) rotate(-90)" text-anchor="middle">${
      esc(c.y.label)
    }</text>`,
  );
  c.series.forEach((s, i) => {
    const color = COLORS[i % COLORS.length];
    const pts = s.points.filter(([x, y]) =>
      Number.isFinite(x) && Number.isFinite(y) && (!c.x.log || x > 0) && (!c.y.log || y > 0)
    );
    const path = pts.map(([x, y], j) => `${j ? "L" : "M"}${X(x).toFixed(1)},${Y(y).toFixed(1)}`).join(" ");
    out.push(
      `<path d="${path}" fill="none" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ""}/>`,
    );
    if (pts.length <= 12) {
      for (const [x, y] of pts) {
        out.push(`<circle cx="${X(x).toFixed(1)}" cy="${Y(y).toFixed(1)}" r="3.5" fill="${color}"/>`);
      }
    }
    const ly = PLOT.top + 10 + i * 20;
    out.push(
      `<line x1="${PLOT.left + PLOT.width + 14}" y1="${ly}" x2="${
        PLOT.left + PLOT.width + 38
      }" y2="${ly}" stroke="${color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6 4"' : ""}/>`,
      `<text x="${PLOT.left + PLOT.width + 44}" y="${ly + 4}">${esc(s.name)}</text>`,
    );
  });
  c.caption.forEach((line, i) => {
    out.push(`<text x="${PLOT.left}" y="${PLOT.top + PLOT.height + 58 + i * 16}" fill="#555">${esc(line)}</text>`);
  });
  out.push("</svg>");
  return out.join("\n") + "\n";
}

/** The commit the numbers were measured on (short hash, "+dirty" with uncommitted changes). */
export async function commitId(): Promise<string> {
  const git = async (...args: string[]) =>
    new TextDecoder().decode((await new Deno.Command("git", { args, stdout: "piped", stderr: "null" }).output()).stdout)
      .trim();
  const head = await git("rev-parse", "--short", "HEAD");
  const dirty = (await git("status", "--porcelain", "--untracked-files=no")).length > 0;
  return (head || "unknown") + (dirty ? "+dirty" : "");
}
