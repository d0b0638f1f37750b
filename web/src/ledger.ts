// "Download CSV": the user's ledger statement (public.my_ledger: every grant, purchase, refund, reversal,
// promo, promo expiry, adjustment and day of spend, with the running balance), built here from the view's
// rows in the format of csv.ts (README, "Ledger CSV") and saved as ledger-YYYY-MM-DD.csv.
import { sb } from "./app.ts";
import { csvLine, LEDGER_COLUMNS, type LedgerRow } from "./csv.ts";
import { $, esc, setHtml } from "./html.ts";

const PAGE = 1000; // PostgREST answers at most its max-rows per request: read page by page
const COLS = "date,entry_type,description,reference,amount_usd::text,currency,amount_paid::text,balance_usd::text";

export function ledgerCard(): string {
  return `<h2 id="ledger-h">Statement</h2>
  <p class="hint">Every grant, purchase, refund, promo credit and day of spend, with the running balance, as a CSV file.</p>
  <button type="button" data-action="download-ledger">Download CSV</button>
  <p id="ledger-status" aria-live="polite"></p>`;
}

async function allRows(): Promise<LedgerRow[]> {
  const rows: LedgerRow[] = [];
  for (let from = 0;; from += PAGE) {
    const { data, error } = await sb.from("my_ledger").select(COLS).order("seq").range(from, from + PAGE - 1);
    if (error) throw new Error(error.message);
    rows.push(...(data as unknown as LedgerRow[]));
    if (data.length < PAGE) return rows;
  }
}

export async function downloadLedger(button: HTMLButtonElement) {
  if (button.disabled) return;
  button.disabled = true;
  setHtml($("#ledger-status"), "Preparing…");
  try {
    const rows = await allRows();
    const csv = csvLine([...LEDGER_COLUMNS]) + rows.map((r) => csvLine(LEDGER_COLUMNS.map((c) => r[c]))).join("");
    const url = URL.createObjectURL(new Blob([csv], { type: "text/csv;charset=utf-8" }));
    const a = Object.assign(document.createElement("a"), {
      href: url,
      download: `ledger-${new Date().toISOString().slice(0, 10)}.csv`,
    });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
    setHtml($("#ledger-status"), esc(`${rows.length} entries.`));
  } catch (e) {
    setHtml(
      $("#ledger-status"),
      `<span class="error">${esc(`The statement could not be loaded: ${(e as Error).message}`)}</span>`,
    );
  } finally {
    button.disabled = false;
  }
}
