// The receipt page of one payment, #/receipt/<reference>, from public.my_receipts (RLS: the signed-in user's
// own; payments.ts renders it). Printable: a Print button, and print CSS drops everything but the receipt.
import { gen, root, sb, state } from "./app.ts";
import { $, esc, setHtml } from "./html.ts";
import { type Receipt, RECEIPT_COLS, receiptHtml } from "./payments.ts";
import { topbar } from "./views.ts";

const reference = () => /^#\/receipt\/(.+)$/.exec(location.hash)?.[1];

/** The reference in the address (#/receipt/<reference>), or null on any other page. */
export function receiptReference(): string | null {
  const ref = reference();
  if (!ref) return null;
  try {
    return decodeURIComponent(ref);
  } catch {
    return ref;
  }
}

export async function showReceipt(ref: string) {
  const my = gen;
  root.dataset.view = "receipt";
  document.title = `Receipt ${ref} · LLM credit`;
  root.innerHTML = `${topbar(state.email)}
<main id="main" class="wrap receipt-page" tabindex="-1">
  <nav class="receipt-actions no-print" aria-label="Receipt">
    <a href="#/">Back to your dashboard</a>
    <button type="button" class="small" data-action="print">Print</button>
  </nav>
  <div id="receipt" aria-live="polite"><p class="muted">Loading the receipt…</p></div>
</main>`;
  const { data, error } = await sb.from("my_receipts").select(RECEIPT_COLS).eq("reference", ref).maybeSingle();
  if (my !== gen || receiptReference() !== ref) return;
  const r = data as unknown as Receipt | null;
  if (error) {
    setHtml(
      $("#receipt"),
      `<div class="banner danger" role="alert">We could not load this receipt ` +
        `(${esc(error.message)}). Please reload the page.</div>`,
    );
  } else if (!r) {
    setHtml(
      $("#receipt"),
      `<div class="banner warn" role="alert" data-testid="receipt-missing">` +
        `We could not find a payment with reference <code>${esc(ref)}</code> on this account.</div>`,
    );
  } else {
    document.title = `Receipt ${ref} · ${r.merchant_name}`;
    setHtml($("#receipt"), receiptHtml(r));
  }
  $<HTMLElement>("#main")?.focus();
}
