// Pure renderers of the account, key and lots: data from the views in, HTML out (every value escaped). State and
// events live in the module of each concern (dashboard.ts, key.ts, ...).
import { ago, esc, fmtDate } from "./html.ts";
import { isPositive, isZero, money, ratio } from "./money.ts";

// Numerics are selected ::text, so they arrive as exact decimal strings.
export interface Account {
  email: string | null;
  granted: string;
  purchased: string;
  paid: string;
  spent: string;
  remaining: string;
  cost_of_spend: string;
  savings: string;
  remaining_percent: string;
  last_synced_at: string | null;
  stale: boolean;
  /** 20 or 5 while the remaining credit is at or below that % of what was granted, else null (the alerts' rule). */
  low_balance_level: 20 | 5 | null;
}
export interface Lot {
  lot_id: number;
  kind: "signup_grant" | "purchase" | "adjustment" | string;
  plan_code: string | null;
  created_at: string;
  credit: string;
  cost: string;
  used: string;
  remaining: string;
  /** Promo lots: when what is left of them lapses (null: never, and for every other lot). */
  expires_at: string | null;
  /** 1 = spent first: promo lots (soonest expiry first), then the others oldest first. */
  spend_order: number;
}
export interface Key {
  key_id: string;
  key_value: string;
  key_masked: string;
  status: "pending" | "active" | "failed" | string;
  sync_status: string;
  blocked: boolean;
  created_at: string;
  activated_at: string | null;
  last_sync_error: string | null;
  /** An unfinished rotation involves this key (kept by the database, so it survives a reload). */
  rotating?: boolean;
}
export const ACCOUNT_COLS =
  "email,granted::text,purchased::text,paid::text,spent::text,remaining::text,cost_of_spend::text,savings::text,remaining_percent::text,last_synced_at,stale,low_balance_level";
export const LOT_COLS =
  "lot_id,kind,plan_code,created_at,credit::text,cost::text,used::text,remaining::text,expires_at,spend_order";
export const KEY_COLS =
  "key_id,key_value,key_masked,status,sync_status,blocked,created_at,activated_at,last_sync_error,rotating";

/** A server's reason as a sentence: capitalised, ending in a full stop ("" for none). */
export function sentence(s: string | null | undefined): string {
  const t = (s ?? "").trim();
  if (!t) return "";
  return `${t.charAt(0).toUpperCase()}${t.slice(1)}${/[.!?]$/.test(t) ? "" : "."}`;
}

/** The signed-in pages' top bar: brand, who is signed in, sign out. */
export function topbar(email: string): string {
  return `<a class="skip" href="#main">Skip to content</a>
<header class="topbar"><div class="wrap topbar-inner">
  <span class="brand">LLM credit</span>
  <span class="who" data-testid="user-email">${esc(email)}</span>
  <a class="small" href="#/billing" data-test="billing-link">Billing</a>
  <a class="notes-link" href="#/notifications">Notifications <span class="count" data-test="unread-count" hidden>0</span></a>
  <button type="button" class="small" data-action="signout">Sign out</button>
</div></header>`;
}

// ---------- account ----------

/** "Updated 12 s ago": main.ts writes it into [data-ago] every second (kept out of the HTML so a re-render is rare). */
export function updatedText(a: Account, key: Key | null, now = Date.now()): string {
  if (a.last_synced_at) return `Updated ${ago(a.last_synced_at, now)}`;
  if (key?.status === "active") return "Waiting for the first usage sync (within a minute)";
  return "";
}

/** The stale warning applies once the key has had time for a first sync (the view flags a never-synced key at once). */
export function isStale(a: Account, key: Key | null, now = Date.now()): boolean {
  if (!a.stale) return false;
  if (a.last_synced_at || !key?.activated_at) return true;
  return now - new Date(key.activated_at).getTime() > 3 * 60_000;
}

export function banners(a: Account | null, key: Key | null): string {
  if (!a) return "";
  const out: string[] = [];
  if (isPositive(a.granted) && !isPositive(a.remaining)) {
    out.push(
      `<div class="banner danger" role="alert"><strong>You are out of credit.</strong> LiteLLM rejects calls with your key until you add more. <a href="#buy">Buy credit</a></div>`,
    );
  } else if (a.low_balance_level === 20 || a.low_balance_level === 5) {
    // The level comes from my_account (the same exact rule as the operator alerts: 20 % and 5 % of what was granted).
    const title = a.low_balance_level === 5 ? "Almost out of credit:" : "Low balance:";
    out.push(
      `<div class="banner warn" role="status" data-testid="low-balance" data-level="${a.low_balance_level}"><strong>${title}</strong> ${
        esc(money(a.remaining))
      } left (${
        esc(a.remaining_percent)
      }% of your credit). When it runs out, LiteLLM rejects calls with your key. <a href="#buy">Buy credit</a></div>`,
    );
  }
  if (isStale(a, key)) {
    const when = a.last_synced_at ? `last synced ${ago(a.last_synced_at)}` : "not synced yet";
    out.push(
      `<div class="banner warn" role="status" data-testid="stale"><strong>Usage figures may be behind</strong> (${
        esc(when)
      }). Your key keeps working and LiteLLM still enforces your budget; these numbers catch up when the sync resumes.</div>`,
    );
  }
  return out.join("");
}

export function account(a: Account | null, key: Key | null): string {
  if (!a) return `<h2 id="account-h">Your credit</h2><p>Your account is being set up…</p>`;
  const usedShare = ratio(a.spent, a.granted);
  const usedPct = (usedShare * 100).toFixed(1);
  const remainingPct = Number(a.remaining_percent);
  const savingsLine = isPositive(a.spent)
    ? `You paid <strong>${esc(money(a.cost_of_spend, { tiny: true }))}</strong> for <strong>${
      esc(money(a.spent, { tiny: true }))
    }</strong> of usage${
      isPositive(a.savings) ? `: you saved <strong>${esc(money(a.savings, { tiny: true }))}</strong>` : ""
    }.`
    : "No usage yet. Your first $2.00 is free, and every pack gives you twice what you pay.";
  return `<div class="card-head"><h2 id="account-h">Your credit</h2>
  <p class="updated"><span data-ago></span> <button type="button" class="small" data-action="refresh">Refresh</button></p></div>
  <p class="headline"><span class="amount" data-testid="remaining">${
    esc(money(a.remaining))
  }</span> <span class="headline-label">remaining</span></p>
  <div class="meter" role="progressbar" aria-label="Credit remaining" aria-valuemin="0" aria-valuemax="100" aria-valuenow="${
    esc(remainingPct)
  }"
       aria-valuetext="${
    esc(`${money(a.remaining)} of ${money(a.granted)} remaining`)
  }"><div class="meter-used" style="width:${usedPct}%"></div></div>
  <p class="meter-legend"><span><span class="swatch used" aria-hidden="true"></span>Used ${
    esc(money(a.spent, { tiny: true }))
  }</span>
     <span><span class="swatch left" aria-hidden="true"></span>Remaining ${esc(money(a.remaining))} of ${
    esc(money(a.granted))
  } (${esc(a.remaining_percent)}%)</span></p>
  <dl class="stats">
    <div><dt>Granted</dt><dd data-testid="granted">${esc(money(a.granted))}</dd></div>
    <div><dt>You paid</dt><dd data-testid="paid">${esc(money(a.paid))}</dd></div>
    <div><dt>Spent</dt><dd data-testid="spent">${esc(money(a.spent, { tiny: true }))}</dd></div>
    <div><dt>Saved</dt><dd data-testid="savings">${esc(money(a.savings, { tiny: true }))}</dd></div>
  </dl>
  <p class="savings" data-testid="savings-line">${savingsLine}</p>`;
}

// ---------- key ----------

export type SnippetLang = "curl" | "python" | "javascript";

export function snippet(lang: SnippetLang, base: string, key: string): string {
  if (lang === "python") {
    return `from openai import OpenAI

client = OpenAI(base_url="${base}", api_key="${key}")
reply = client.chat.completions.create(
    model="gpt-4o-mini",
    messages=[{"role": "user", "content": "Hello"}],
)
print(reply.choices[0].message.content)`;
  }
  if (lang === "javascript") {
    return `import OpenAI from "openai";

const client = new OpenAI({ baseURL: "${base}", apiKey: "${key}" });
const reply = await client.chat.completions.create({
  model: "gpt-4o-mini",
  messages: [{ role: "user", content: "Hello" }],
});
console.log(reply.choices[0].message.content);`;
  }
  return `curl ${base}/v1/chat/completions \\
  -H "Authorization: Bearer ${key}" \\
  -H "Content-Type: application/json" \\
  -d '{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hello"}]}'`;
}

// ---------- key rotation ----------

/**
 * A rotation the user started on this page (main.ts drives it; see supabase/functions/rotate-key):
 *   running   the rotate-key call is in flight (it blocks the old key, waits for its spend to settle, creates the new one)
 *   waiting   the function answered 202: call again at `until`
 *   watching  another run owns the rotation (or the answer was lost): watch my_key until the new key is active
 *   done      the new key is active (masked, remaining: what to tell the user)
 *   saved     LiteLLM was down: the rotation is saved; ops-sweep finishes it, or the user tries again
 *   error     nothing happened (too soon, no active key, ...): `message` says why
 */
export interface Rotation {
  phase: "running" | "waiting" | "watching" | "done" | "saved" | "error";
  since: number;
  until?: number;
  oldKeyId: string | null;
  message?: string;
  masked?: string;
  remaining?: string;
}

export const rotationBusy = (r: Rotation | null): boolean =>
  !!r && (r.phase === "running" || r.phase === "waiting" || r.phase === "watching");

/** The progress line of a running rotation, in words; main.ts rewrites it into [data-rotation-text] every second. */
export function rotationText(r: Rotation | null, now = Date.now()): string {
  if (!r) return "";
  const elapsed = Math.max(0, Math.floor((now - r.since) / 1000));
  if (r.phase === "running") {
    return `Rotating your key (${elapsed} s): the old key is blocked, LiteLLM settles its spend, then the new key is created. This usually takes under a minute.`;
  }
  if (r.phase === "waiting") {
    return `Rotating: waiting for LiteLLM to settle the old key's spend (${
      Math.max(0, Math.ceil(((r.until ?? now) - now) / 1000))
    } s)`;
  }
  if (r.phase === "watching") {
    return `Rotating: your key is being rotated and finishes by itself; waiting for the new key (${elapsed} s).`;
  }
  return "";
}

function rotationStatus(r: Rotation | null): string {
  const attrs = `id="rotation-status" tabindex="-1" data-testid="rotation-status" data-phase="${r?.phase ?? "idle"}"`;
  if (!r) return `<div ${attrs}></div>`;
  const dismiss = `<button type="button" class="small" data-action="dismiss-rotation">Dismiss</button>`;
  if (rotationBusy(r)) {
    return `<div ${attrs} class="banner info"><span class="spinner" aria-hidden="true"></span><span data-rotation-text></span></div>`;
  }
  if (r.phase === "done") {
    return `<div ${attrs} class="banner ok"><strong>Key rotated.</strong> Your new key is <code>${
      esc(r.masked)
    }</code>${
      r.remaining === undefined ? "" : ` and carries your remaining credit, ${esc(money(r.remaining))}`
    }. The old key no longer works: put the new one in every app that used it. ${dismiss}</div>`;
  }
  if (r.phase === "saved") return `<div ${attrs} class="banner warn" role="alert">${esc(r.message)} ${dismiss}</div>`;
  return `<div ${attrs} class="banner danger" role="alert">${esc(r.message)} ${dismiss}</div>`;
}

function rotateSection(r: Rotation | null): string {
  const busy = rotationBusy(r);
  const label = busy ? "Rotating…" : r?.phase === "saved" ? "Finish rotating" : "Rotate key";
  return `<div class="rotate">
    <h3 class="field-label">Key leaked?</h3>
    <p class="hint" id="rotate-hint">Rotate it: the current key stops working at once and a new key takes over your remaining credit.</p>
    <button type="button" class="danger-outline" data-action="rotate" aria-haspopup="dialog" aria-describedby="rotate-hint"${
    busy ? " disabled" : ""
  }>${label}</button>
    ${rotationStatus(r)}
  </div>`;
}

export function keyCard(
  key: Key | null,
  base: string,
  revealed: boolean,
  lang: SnippetLang,
  rotation: Rotation | null = null,
): string {
  const head = `<h2 id="key-h">Your API key</h2>`;
  const rotating = rotationBusy(rotation) || !!key?.rotating;
  if (!key || key.status === "pending") {
    // Mid-rotation the new key's row is pending for a moment: show the rotation, not "creating your key".
    if (rotating) return `${head}${rotationStatus(rotation)}`;
    if (rotation?.phase === "saved") {
      return `${head}${
        rotationStatus(rotation)
      }<button type="button" class="danger-outline" data-action="rotate">Finish rotating</button>`;
    }
    const retrying = key?.last_sync_error
      ? `The last attempt did not succeed (${esc(key.last_sync_error)}); we keep retrying automatically.`
      : "";
    return `${head}<div class="key-state pending" role="status" data-testid="key-status"><p><span class="spinner" aria-hidden="true"></span><strong>Creating your key…</strong> This usually takes a few seconds.</p>${
      retrying ? `<p>${retrying}</p>` : ""
    }</div>`;
  }
  if (key.status === "failed") {
    return `${head}<div class="key-state failed" role="alert" data-testid="key-status"><p><strong>We could not create your key.</strong>${
      key.last_sync_error ? ` The last error was: ${esc(sentence(key.last_sync_error))}` : ""
    }</p>
      <p>Your credit is safe. Please contact support and quote the email you signed up with: we can retry it in one step, and your key appears here when it is ready.</p></div>`;
  }
  const shown = revealed ? key.key_value : key.key_masked;
  // A rotation blocks the old key first: that is not the dispute pause.
  const blocked = key.blocked && !rotating && rotation?.phase !== "saved"
    ? `<p class="key-state failed" role="status">Your key is paused while a payment dispute is open. It works again once the dispute is resolved.</p>`
    : "";
  const replacing = rotating || rotation?.phase === "saved";
  const keyState = replacing
    ? `<p class="key-state replacing" data-testid="key-status"><span class="dot" aria-hidden="true"></span>Being replaced by a new key</p>`
    : `<p class="key-state active" data-testid="key-status"><span class="dot" aria-hidden="true"></span>Active${
      key.activated_at ? ` since ${esc(fmtDate(key.activated_at))}` : ""
    }</p>`;
  return `${head}
  ${keyState}
  ${blocked}
  <div class="field"><span class="field-label" id="base-label">Proxy base URL</span>
    <div class="copyrow"><code aria-labelledby="base-label" data-testid="base-url">${esc(base)}</code>
    <button type="button" class="small" data-action="copy" data-copy="base" aria-label="Copy the proxy base URL">Copy</button></div></div>
  <div class="field"><span class="field-label" id="key-label">Key</span>
    <div class="copyrow"><code aria-labelledby="key-label" data-testid="key-value">${esc(shown)}</code>
    <button type="button" class="small" data-action="reveal" aria-pressed="${revealed}">${
    revealed ? "Hide" : "Reveal"
  }</button>
    <button type="button" class="small" data-action="copy" data-copy="key" aria-label="Copy the key">Copy</button></div></div>
  <div class="field snippet"><label class="field-label" for="snippet-lang">Example call</label>
    <select id="snippet-lang" data-action="lang">
      ${
    (["curl", "python", "javascript"] as const).map((l) =>
      `<option value="${l}"${l === lang ? " selected" : ""}>${
        { curl: "curl", python: "Python (OpenAI SDK)", javascript: "JavaScript (OpenAI SDK)" }[l]
      }</option>`
    ).join("")
  }
    </select>
    <pre tabindex="0" aria-label="Example code"><code data-testid="snippet">${
    esc(snippet(lang, base, shown))
  }</code></pre>
    <button type="button" class="small" data-action="copy" data-copy="snippet">Copy example${
    revealed ? "" : " (with your key)"
  }</button></div>
  <p class="hint">Call the proxy directly with this key from any OpenAI-compatible client. Keep it secret: anyone with it can spend your credit.</p>
  ${rotateSection(rotation)}`;
}

/** The confirmation for a rotation (a modal <dialog>: Esc or Cancel closes it; focus starts on Cancel). */
export function rotateDialog(): string {
  return `<dialog id="rotate-dialog" class="dialog" aria-labelledby="rotate-dialog-h" aria-describedby="rotate-dialog-text">
  <form method="dialog">
    <h2 id="rotate-dialog-h">Rotate your API key?</h2>
    <p id="rotate-dialog-text">Your current key stops working now; a new key carries your remaining credit<span data-rotate-remaining></span>.
      Every app that uses the old key needs the new one. It takes about half a minute.</p>
    <div class="dialog-actions">
      <button type="submit" value="cancel" autofocus>Cancel</button>
      <button type="submit" value="rotate" class="danger">Rotate key now</button>
    </div>
  </form>
</dialog>`;
}

// ---------- lots ----------

export function lotName(l: Lot, plans: { plan: string; name: string }[]): string {
  if (l.kind === "signup_grant") return "Sign-up credit";
  if (l.kind === "purchase") {
    return `${plans.find((p) => p.plan === l.plan_code)?.name ?? l.plan_code ?? "Credit"} pack`;
  }
  if (l.kind === "promo") return "Promo credit";
  return "Adjustment";
}

/** Under a lot's name: when it came, and for promo credit when it lapses. */
function lotWhen(l: Lot): string {
  if (!l.expires_at) return fmtDate(l.created_at);
  const lapsed = new Date(l.expires_at).getTime() <= Date.now();
  return `${fmtDate(l.created_at)} · ${lapsed ? "expired" : "expires"} ${fmtDate(l.expires_at)}`;
}

export function lotsCard(lots: Lot[], plans: { plan: string; name: string }[]): string {
  const cell = (label: string, html: string) => `<td role="cell" class="num" data-label="${label}">${html}</td>`;
  const rows = lots.map((l) =>
    `<tr role="row" data-kind="${esc(l.kind)}"><th scope="row" role="rowheader">${
      esc(lotName(l, plans))
    }<span class="sub">${esc(lotWhen(l))}</span></th>
    ${cell("Credit", esc(money(l.credit)))}${cell("Used", esc(money(l.used, { tiny: true })))}
    ${cell("Remaining", esc(money(l.remaining)))}${cell("Cost", isZero(l.cost) ? "Free" : esc(money(l.cost)))}</tr>`
  ).join("");
  const col = (label: string, cls = "") =>
    `<th scope="col" role="columnheader"${cls ? ` class="${cls}"` : ""}>${label}</th>`;
  return `<h2 id="lots-h">Where your credit comes from</h2>
  <p class="hint">Usage is taken from promo credit first (the one expiring soonest first), then from the oldest credit: the free sign-up credit, then each pack in order.</p>
  ${
    lots.length
      ? `<div class="table-wrap" tabindex="0" role="region" aria-labelledby="lots-h"><table class="stack" role="table" aria-labelledby="lots-h" data-testid="lots">
    <thead role="rowgroup"><tr role="row">${col("Credit lot")}${col("Credit", "num")}${col("Used", "num")}${
        col("Remaining", "num")
      }${col("Cost", "num")}</tr></thead>
    <tbody role="rowgroup">${rows}</tbody></table></div>`
      : "<p>No credit yet.</p>"
  }`;
}
