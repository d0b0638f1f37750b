// `npm run admin -- export ledger --from YYYY-MM-DD --to YYYY-MM-DD [--user <email|id>] [--format csv|jsonl]`:
// public.my_ledger (migration 20261202000910; the same statement the user downloads) for every user, or one,
// to stdout. Streamed: a server-side cursor (postgres.js `cursor`) reads CURSOR_ROWS rows at a time and
// each batch is written before the next is fetched, so memory stays bounded whatever the row count
// (bench:export measures it at 1,000,000 rows). One repeatable-read, read-only transaction: the totals on
// stderr (per entry type, per currency; summed in SQL, exact) describe exactly the rows written.
import type postgres from "postgres";
import { csvLine, LEDGER_COLUMNS } from "../web/src/csv.ts";

const CURSOR_ROWS = 2000;
export const EXPORT_COLUMNS = ["user_id", "email", ...LEDGER_COLUMNS] as const;
type Row = Record<(typeof EXPORT_COLUMNS)[number], string | null>;

export interface ExportOptions {
  from: string;
  to: string;
  userId: string | null;
  format: "csv" | "jsonl";
}

/** Checks --from, --to and --format; `usage` throws the CLI's usage error. */
export function exportOptions(
  flags: Record<string, string | boolean>,
  usage: (message: string) => never,
): Omit<ExportOptions, "userId"> {
  const date = (name: string) => {
    const v = flags[name];
    if (typeof v !== "string" || !/^\d{4}-\d{2}-\d{2}$/.test(v) || Number.isNaN(Date.parse(`${v}T00:00:00Z`))) {
      usage(`--${name} must be a date, YYYY-MM-DD`);
    }
    return v;
  };
  const from = date("from"), to = date("to");
  if (from > to) usage("--from is after --to");
  const format = flags.format ?? "csv";
  if (format !== "csv" && format !== "jsonl") usage("--format is csv or jsonl");
  return { from, to, format };
}

async function writeAll(text: string) {
  const bytes = new TextEncoder().encode(text);
  for (let off = 0; off < bytes.length;) off += await Deno.stdout.write(bytes.subarray(off));
}

/** Writes the rows to stdout, the totals to stderr; returns the number of rows. */
export async function exportLedger(sql: postgres.Sql, o: ExportOptions): Promise<number> {
  let rows = 0;
  await sql.begin("isolation level repeatable read read only", async (tx) => {
    // The user filter is a plain predicate on the window's partition column, so Postgres applies it
    // before computing the running balance; the dates filter after it (the balance keeps earlier history).
    const where = tx`l.date between ${o.from}::date and ${o.to}::date ${
      o.userId ? tx`and l.user_id = ${o.userId}::uuid` : tx``
    }`;
    if (o.format === "csv") await writeAll(csvLine([...EXPORT_COLUMNS]));
    await tx<Row[]>`
      select l.user_id::text, p.email, l.date::text, l.entry_type, l.description, l.reference, l.amount_usd::text,
             l.currency, l.amount_paid::text, l.balance_usd::text
        from public.my_ledger l left join public.profiles p on p.id = l.user_id
       where ${where}
       order by l.user_id, l.seq`.cursor(CURSOR_ROWS, async (batch: Row[]) => {
      rows += batch.length;
      await writeAll(
        batch.map((r) =>
          o.format === "csv"
            ? csvLine(EXPORT_COLUMNS.map((c) => r[c]))
            : JSON.stringify(Object.fromEntries(EXPORT_COLUMNS.map((c) => [c, r[c]]))) + "\n"
        ).join(""),
      );
    });
    // Both totals in one pass over the statement (grouping sets): per entry type, and per currency paid in.
    const totals = await tx<
      { entry_type: string | null; currency: string | null; n: number; payments: number; usd: string; paid: string }[]
    >`
      select l.entry_type, l.currency, count(*)::int as n, count(l.amount_paid)::int as payments,
             sum(l.amount_usd)::text as usd, sum(l.amount_paid)::text as paid
        from public.my_ledger l where ${where}
       group by grouping sets ((l.entry_type), (l.currency)) order by 1, 2`;
    const byType = totals.filter((t) => t.entry_type !== null);
    const byCurrency = totals.filter((t) => t.entry_type === null && t.currency !== null && t.paid !== null);
    console.error(`exported ${rows} ledger entries (${o.from} to ${o.to}${o.userId ? `, user ${o.userId}` : ""})`);
    console.error("totals per entry type (USD):");
    for (const t of byType) console.error(`  ${t.entry_type}\t${t.n}\t${t.usd}`);
    console.error("totals per currency (paid):");
    for (const t of byCurrency) console.error(`  ${t.currency}\t${t.payments}\t${t.paid}`);
  });
  return rows;
}
