// Hosted checkout: GET /checkout/:access_code (an accessible HTML card form) and POST
// /checkout/:access_code/pay (the form's post, or JSON {card, cvv?, expiry?} for API-driven tests).

import type { EmulatorContext } from "./context.ts";
import { escapeHtml, json, PaystackError, readBody } from "./http.ts";
import { TEST_CARDS, type Transaction } from "./store.ts";

const STYLE = `body { font-family: system-ui, sans-serif; background: #f4f6f8; color: #1b1f23; margin: 0; }
  main { max-width: 26rem; margin: 3rem auto; background: #fff; padding: 1.5rem 2rem; border-radius: 8px; }
  dl { display: grid; grid-template-columns: auto 1fr; gap: .25rem 1rem; } dd { margin: 0; }
  label { display: block; font-weight: 600; margin-top: 1rem; }
  input { width: 100%; box-sizing: border-box; font-size: 1rem; padding: .5rem; border: 1px solid #6a737d; }
  input:focus, button:focus { outline: 3px solid #0366d6; outline-offset: 1px; }
  button { margin-top: 1.5rem; width: 100%; font-size: 1.05rem; padding: .75rem; border: 0; background: #0a6e31;
    color: #fff; } .error { color: #b31d28; font-weight: 600; } .ok { color: #0a6e31; font-weight: 600; }`;

function page(title: string, body: string, status = 200): Response {
  const html = `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title><style>${STYLE}</style></head>
<body><main>
${body}
</main></body>
</html>`;
  return new Response(html, { status, headers: { "content-type": "text/html; charset=utf-8" } });
}

const amountText = (tx: Transaction) =>
  `${tx.currency} ${Math.floor(tx.amount / 100)}.${String(tx.amount % 100).padStart(2, "0")}`;

function summary(tx: Transaction): string {
  return `<dl>
  <dt>Amount</dt><dd data-testid="amount">${escapeHtml(amountText(tx))}</dd>
  <dt>Email</dt><dd data-testid="email">${escapeHtml(tx.email)}</dd>
  <dt>Reference</dt><dd data-testid="reference">${escapeHtml(tx.reference)}</dd>
</dl>`;
}

function formPage(tx: Transaction, error: string | null, status = 200): Response {
  const cards = Object.entries(TEST_CARDS).map(([number, c]) =>
    `<li><code>${number.replace(/(\d{4})(?=\d)/g, "$1 ")}</code>, CVV <code>${c.cvv}</code>: ${c.response}</li>`
  );
  const pay = escapeHtml(amountText(tx));
  return page(
    `Pay ${amountText(tx)}`,
    `<h1>Pay ${pay}</h1>
${summary(tx)}
${error ? `<p id="pay-error" class="error" role="alert">${escapeHtml(error)}</p>` : ""}
<form method="post" action="/checkout/${encodeURIComponent(tx.access_code)}/pay"${
      error ? ` aria-describedby="pay-error"` : ""
    }>
  <label for="card">Card number</label>
  <input id="card" name="card" type="text" inputmode="numeric" autocomplete="cc-number" required>
  <label for="expiry">Expiry (MM/YY)</label>
  <input id="expiry" name="expiry" type="text" inputmode="numeric" autocomplete="cc-exp" placeholder="12/30" required>
  <label for="cvv">CVV</label>
  <input id="cvv" name="cvv" type="password" inputmode="numeric" autocomplete="cc-csc" maxlength="4" required>
  <button type="submit">Pay ${pay}</button>
</form>
<details><summary>Test cards</summary><ul>${cards.join("")}</ul><p>Any future expiry date.</p></details>`,
    status,
  );
}

function resultPage(tx: Transaction, heading: string): Response {
  return page(
    heading,
    `<h1>${escapeHtml(heading)}</h1>\n${summary(tx)}\n<p class="ok" role="status">${tx.gateway_response}</p>`,
  );
}

/** Where the customer returns to: callback_url with trxref and reference, as Paystack redirects. */
function callbackRedirect(tx: Transaction): string | null {
  if (!tx.callback_url) return null;
  const u = new URL(tx.callback_url);
  u.searchParams.set("trxref", tx.reference);
  u.searchParams.set("reference", tx.reference);
  return u.toString();
}

const paid = (tx: Transaction) => tx.status === "success" || tx.status === "reversed";

export function checkoutPage(ctx: EmulatorContext, accessCode: string): Response {
  const tx = ctx.store.byAccessCode.get(accessCode);
  if (!tx) return page("Checkout not found", `<h1>Checkout not found</h1><p>This payment link is invalid.</p>`, 404);
  if (paid(tx)) return resultPage(tx, "This transaction has already been paid");
  return formPage(tx, tx.status === "failed" ? `Last attempt failed: ${tx.gateway_response}` : null);
}

export async function checkoutPay(ctx: EmulatorContext, accessCode: string, req: Request): Promise<Response> {
  const wantsJson = (req.headers.get("content-type") ?? "").includes("application/json");
  const tx = ctx.store.byAccessCode.get(accessCode);
  if (!tx) return json(404, { status: "error", reference: null, message: "Checkout not found" });
  try {
    const body = await readBody(req);
    const field = (name: string) => body[name] === undefined ? undefined : String(body[name]);
    ctx.store.charge(tx, field("card") ?? "", field("cvv"), field("expiry"));
  } catch (e) {
    if (!(e instanceof PaystackError)) throw e;
    if (wantsJson) return json(e.httpStatus, { status: "error", reference: tx.reference, message: e.message });
    return paid(tx) ? resultPage(tx, "This transaction has already been paid") : formPage(tx, e.message, 400);
  }
  // Sent in the background, as Paystack does: the redirect may reach the merchant first.
  if (tx.status === "success") ctx.chargeSuccess(tx).catch((e) => console.error(`paystack emulator: ${e}`));
  const { status, reference, gateway_response } = tx;
  if (wantsJson) return json(200, { status, reference, message: gateway_response, gateway_response });
  if (status !== "success") return formPage(tx, `Payment failed: ${gateway_response}`); // the customer may retry
  const next = callbackRedirect(tx);
  return next ? new Response(null, { status: 303, headers: { location: next } }) : resultPage(tx, "Payment successful");
}
