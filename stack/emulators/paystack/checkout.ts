// Hosted checkout: GET /checkout/:access_code (an accessible HTML card form) and
// POST /checkout/:access_code/pay (form post from that page, or JSON for API-driven tests).

import type { EmulatorContext } from "./context.ts";
import { BadBody, escapeHtml, json, readBody } from "./http.ts";
import { PaystackError, TEST_CARDS, type Transaction } from "./store.ts";

export function formatAmount(subunits: number, currency: string): string {
  const sign = subunits < 0 ? "-" : "";
  const a = Math.abs(subunits);
  return `${currency} ${sign}${Math.floor(a / 100)}.${
    String(a % 100).padStart(2, "0")
  }`;
}

export function callbackRedirect(tx: Transaction): string | null {
  if (!tx.callback_url) return null;
  const u = new URL(tx.callback_url);
  u.searchParams.set("trxref", tx.reference);
  u.searchParams.set("reference", tx.reference);
  return u.toString();
}

function page(title: string, body: string, status = 200): Response {
  const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)}</title>
<style>
  body { font-family: system-ui, sans-serif; background: #f4f6f8; color: #1b1f23; margin: 0; }
  main { max-width: 26rem; margin: 3rem auto; background: #fff; padding: 1.5rem 2rem; border-radius: 8px;
         box-shadow: 0 1px 4px rgba(0,0,0,.12); }
  h1 { font-size: 1.25rem; margin-top: 0; }
  dl { display: grid; grid-template-columns: auto 1fr; gap: .25rem 1rem; }
  dt { font-weight: 600; }
  dd { margin: 0; }
  label { display: block; font-weight: 600; margin-top: 1rem; }
  input { width: 100%; box-sizing: border-box; font-size: 1rem; padding: .5rem; border: 1px solid #6a737d;
          border-radius: 4px; }
  input:focus, button:focus { outline: 3px solid #0366d6; outline-offset: 1px; }
  .row { display: flex; gap: 1rem; } .row > div { flex: 1; }
  button { margin-top: 1.5rem; width: 100%; font-size: 1.05rem; padding: .75rem; border: 0; border-radius: 4px;
           background: #0a6e31; color: #fff; cursor: pointer; }
  .error { color: #b31d28; font-weight: 600; }
  .ok { color: #0a6e31; font-weight: 600; }
  .hint { margin-top: 1.5rem; font-size: .9rem; color: #444; }
</style>
</head>
<body>
<main>
${body}
</main>
</body>
</html>`;
  return new Response(html, {
    status,
    headers: { "content-type": "text/html; charset=utf-8" },
  });
}

function summary(tx: Transaction): string {
  return `<dl>
  <dt>Amount</dt><dd data-testid="amount">${
    escapeHtml(formatAmount(tx.amount, tx.currency))
  }</dd>
  <dt>Email</dt><dd data-testid="email">${escapeHtml(tx.email)}</dd>
  <dt>Reference</dt><dd data-testid="reference">${escapeHtml(tx.reference)}</dd>
</dl>`;
}

function formPage(
  ctx: EmulatorContext,
  tx: Transaction,
  error: string | null,
  status = 200,
): Response {
  const errorBlock = error
    ? `<p id="pay-error" class="error" role="alert">${escapeHtml(error)}</p>`
    : "";
  const described = error ? ` aria-describedby="pay-error"` : "";
  const hint = ctx.domain === "test"
    ? `<details class="hint"><summary>Test cards</summary><ul>
${
      Object.values(TEST_CARDS).map((c) =>
        `<li><code>${
          c.number.replace(/(\d{4})(?=\d)/g, "$1 ")
        }</code>, CVV <code>${c.cvv}</code>: ${
          escapeHtml(
            c.refund_fails ? "success (refunds fail)" : c.gateway_response,
          )
        }</li>`
      ).join("\n")
    }
</ul><p>Any future expiry date.</p></details>`
    : "";
  return page(
    "Pay " + formatAmount(tx.amount, tx.currency),
    `<h1>Pay ${escapeHtml(formatAmount(tx.amount, tx.currency))}</h1>
${summary(tx)}
${errorBlock}
<form method="post" action="/checkout/${
      encodeURIComponent(tx.access_code)
    }/pay"${described}>
  <label for="card">Card number</label>
  <input id="card" name="card" type="text" inputmode="numeric" autocomplete="cc-number"
         placeholder="4084 0840 8408 4081" required>
  <div class="row">
    <div>
      <label for="expiry">Expiry (MM/YY)</label>
      <input id="expiry" name="expiry" type="text" inputmode="numeric" autocomplete="cc-exp"
             placeholder="12/30" required>
    </div>
    <div>
      <label for="cvv">CVV</label>
      <input id="cvv" name="cvv" type="password" inputmode="numeric" autocomplete="cc-csc"
             maxlength="4" required>
    </div>
  </div>
  <button type="submit">Pay ${
      escapeHtml(formatAmount(tx.amount, tx.currency))
    }</button>
</form>
${hint}`,
    status,
  );
}

function resultPage(tx: Transaction, heading: string, ok: boolean): Response {
  const next = callbackRedirect(tx);
  return page(
    heading,
    `<h1>${escapeHtml(heading)}</h1>
${summary(tx)}
<p class="${ok ? "ok" : "error"}" role="status">${
      escapeHtml(tx.gateway_response ?? "")
    }</p>
${
      next
        ? `<p><a href="${escapeHtml(next)}">Return to the merchant</a></p>`
        : ""
    }`,
  );
}

export function handleCheckoutPage(
  ctx: EmulatorContext,
  accessCode: string,
): Response {
  const tx = ctx.store.byAccessCode.get(accessCode);
  if (!tx) {
    return page(
      "Checkout not found",
      `<h1>Checkout not found</h1><p>This payment link is invalid or has expired.</p>`,
      404,
    );
  }
  if (tx.status === "success" || tx.status === "reversed") {
    return resultPage(tx, "This transaction has already been paid", true);
  }
  return formPage(
    ctx,
    tx,
    tx.status === "failed"
      ? `Last attempt failed: ${tx.gateway_response}`
      : null,
  );
}

export async function handleCheckoutPay(
  ctx: EmulatorContext,
  accessCode: string,
  req: Request,
): Promise<Response> {
  const wantsJson = (req.headers.get("content-type") ?? "").toLowerCase()
    .includes("application/json");
  const tx = ctx.store.byAccessCode.get(accessCode);
  if (!tx) {
    return wantsJson
      ? json(404, {
        status: "error",
        reference: null,
        message: "Checkout not found",
      })
      : page("Checkout not found", `<h1>Checkout not found</h1>`, 404);
  }
  let body: Record<string, unknown>;
  try {
    body = await readBody(req);
  } catch (e) {
    if (!(e instanceof BadBody)) throw e;
    return wantsJson
      ? json(400, {
        status: "error",
        reference: tx.reference,
        message: e.message,
      })
      : formPage(ctx, tx, e.message, 400);
  }

  let result;
  try {
    result = ctx.store.charge(tx, {
      card: String(body.card ?? ""),
      cvv: body.cvv === undefined ? undefined : String(body.cvv),
      expiry: body.expiry === undefined ? undefined : String(body.expiry),
    });
  } catch (e) {
    if (!(e instanceof PaystackError)) throw e;
    if (wantsJson) {
      return json(e.httpStatus, {
        status: "error",
        reference: tx.reference,
        message: e.message,
      });
    }
    if (tx.status === "success" || tx.status === "reversed") {
      return resultPage(tx, "This transaction has already been paid", true);
    }
    return formPage(ctx, tx, e.message, 400);
  }

  if (result.status === "success") {
    // Delivered asynchronously, as Paystack does: the redirect may reach the merchant first.
    ctx.sendChargeSuccess(tx).catch((e) =>
      console.error(`paystack emulator: charge.success dispatch failed: ${e}`)
    );
  }
  if (wantsJson) {
    return json(200, {
      status: result.status,
      reference: tx.reference,
      message: result.gateway_response,
      gateway_response: result.gateway_response,
    });
  }
  if (result.status === "success") {
    const next = callbackRedirect(tx);
    if (next) {
      return new Response(null, { status: 303, headers: { location: next } });
    }
    return resultPage(tx, "Payment successful", true);
  }
  // Like Paystack's checkout: a failed card shows the reason and lets the customer try again.
  return formPage(ctx, tx, `Payment failed: ${result.gateway_response}`);
}
