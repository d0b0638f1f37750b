// The ledger CSV (README, "Ledger CSV"): one format for the user's "Download CSV" (ledger.ts) and the
// operator's export (scripts/admin-export.ts). RFC 4180 (https://www.rfc-editor.org/rfc/rfc4180): comma
// separated, CRLF line ends, a field quoted when it holds a comma, quote or line break. Amounts are the
// database's exact decimal text, written as they came (never through a float).

/** The user's columns, in order (stable: add new ones at the end). The operator's export adds user_id and email first. */
export const LEDGER_COLUMNS = [
  "date",
  "entry_type",
  "description",
  "reference",
  "amount_usd",
  "currency",
  "amount_paid",
  "balance_usd",
] as const;

export type LedgerRow = Record<(typeof LEDGER_COLUMNS)[number], string | null>;

function field(v: string | null | undefined): string {
  const s = v ?? "";
  return /[",\r\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s;
}

/** One CSV line (CRLF-terminated). */
export function csvLine(values: (string | null | undefined)[]): string {
  return values.map(field).join(",") + "\r\n";
}
