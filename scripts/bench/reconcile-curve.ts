// The reconcile cost curve: each bench:reconcile run stores its point (one per key count, the newest wins) in
// docs/charts/reconcile-cost.json and redraws docs/charts/reconcile-cost.svg from every stored point, with
// the machine, date, commit and load each point was measured at.
import { loadAvg, machine } from "./common.ts";
import { lineChart } from "./svg.ts";

const DIR = new URL("../../docs/charts/", import.meta.url);

export interface CurvePoint {
  keys: number;
  chunks: number;
  mode: string;
  first: { wallMs: number; requests: number; sqlRoundTrips: number | null; pgCpuMs: number | null };
  changed: {
    wallMs: number;
    requests: number;
    sqlRoundTrips: number | null;
    pgCpuMs: number | null;
    rowsWritten: number;
  };
  worstCpuMs: number;
  worstRssMb: number;
  snapshotBytesPerRow: number;
  measured?: { date: string; commit: string; machine: string; load: string };
}

/** commit: the code the stack was started with (taken before the run: its migrations are what ran). */
export async function recordCurvePoint(p: CurvePoint, commit: string) {
  const m = machine();
  p.measured = { date: m.date, commit, machine: `${m.cores} cores, ${m.mem}`, load: loadAvg() };
  const file = new URL("reconcile-cost.json", DIR);
  let points: CurvePoint[] = [];
  try {
    points = JSON.parse(await Deno.readTextFile(file));
  } catch { /* first point */ }
  points = [...points.filter((q) => q.keys !== p.keys), p].sort((a, b) => a.keys - b.keys);
  await Deno.mkdir(DIR, { recursive: true });
  await Deno.writeTextFile(file, JSON.stringify(points, null, 2) + "\n");
  const s = (ms: number | null) => (ms ?? NaN) / 1000;
  const svg = lineChart({
    title: "reconcile-spend: cost of one cycle vs keys (bench:reconcile)",
    x: { label: "keys (log scale)", log: true },
    y: { label: "seconds (log scale)", log: true },
    series: [
      { name: "first cycle, wall", points: points.map((q) => [q.keys, s(q.first.wallMs)]) },
      { name: "1%-changed cycle, wall", points: points.map((q) => [q.keys, s(q.changed.wallMs)]) },
      { name: "first cycle, Postgres CPU", points: points.map((q) => [q.keys, s(q.first.pgCpuMs)]), dashed: true },
      { name: "1% cycle, Postgres CPU", points: points.map((q) => [q.keys, s(q.changed.pgCpuMs)]), dashed: true },
      {
        name: "targets at 1M: 120 s / 30 s",
        points: [[points[0].keys, 120], [1_000_000, 120], [1_000_000, 30], [points[0].keys, 30]],
        dashed: true,
      },
      {
        name: "linear (x10 keys = x10 s)",
        points: [[points[0].keys, s(points[0].first.wallMs)], [
          points[points.length - 1].keys,
          s(points[0].first.wallMs) * points[points.length - 1].keys / points[0].keys,
        ]],
        dashed: true,
      },
    ],
    caption: points.map((q) =>
      `${
        q.keys.toLocaleString("en-US")
      } keys: ${q.measured?.date} commit ${q.measured?.commit}, ${q.measured?.machine}, load ${q.measured?.load}, via ${q.mode}`
    ),
  });
  await Deno.writeTextFile(new URL("reconcile-cost.svg", DIR), svg);
  console.log("chart: docs/charts/reconcile-cost.svg (points in docs/charts/reconcile-cost.json)");
}
