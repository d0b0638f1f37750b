// The local stack's outbox: what hosted Auth would email (the sign-up confirmation link) and what the
// notification emails send through the email API (send-notifications, _shared/email.ts, pointed at this
// stack's Resend-compatible capture, stack/platform/email-api.ts) are written to <stack dir>/mail/ as one
// JSON file per message and shown at /_stack/mail (a page with clickable links, printed by `npm start`) and
// /_stack/mail.json?to=<address> (for tests and scripts). Local only: the folder is emptied when the gateway
// starts, since the database is fresh on every start.
import { LOCAL_DIR } from "../local-env.ts";
import { json } from "./http.ts";

const DIR = `${LOCAL_DIR}/mail`;

export interface Mail {
  id: string;
  to: string;
  subject: string;
  type: "signup" | "notification";
  link: string; // the message's link (the confirmation link; a notification's dashboard link, or "")
  text: string;
  sent_at: string;
  from?: string; // notification emails: the sender and the Idempotency-Key they were sent with
  idempotency_key?: string;
}

export function resetOutbox() {
  try {
    Deno.removeSync(DIR, { recursive: true });
  } catch { /* none yet */ }
  Deno.mkdirSync(DIR, { recursive: true });
}

export function sendMail(m: Omit<Mail, "id" | "sent_at">): Mail {
  const mail = { id: crypto.randomUUID(), sent_at: new Date().toISOString(), ...m };
  Deno.mkdirSync(DIR, { recursive: true });
  Deno.writeTextFileSync(`${DIR}/${Date.now()}-${mail.id}.json`, JSON.stringify(mail, null, 2), { mode: 0o600 });
  return mail;
}

/** Newest first; only those to `to` (any case) when given. */
function outbox(to: string | null): Mail[] {
  let names: string[] = [];
  try {
    names = [...Deno.readDirSync(DIR)].filter((e) => e.isFile && e.name.endsWith(".json")).map((e) => e.name).sort()
      .reverse();
  } catch { /* empty */ }
  const all = names.map((n) => JSON.parse(Deno.readTextFileSync(`${DIR}/${n}`)) as Mail);
  return to ? all.filter((m) => m.to === to.trim().toLowerCase()) : all;
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(mails: Mail[]): string {
  const rows = mails.map((m) =>
    `<li data-type="${m.type}"><p><b>${esc(m.subject)}</b> to ${esc(m.to)}${m.from ? ` from ${esc(m.from)}` : ""}
<small>${esc(m.sent_at)} · ${m.type === "signup" ? "Auth" : "notification"}</small></p>
<p class="text">${esc(m.text)}</p>${m.link ? `<p><a href="${esc(m.link)}">${esc(m.link)}</a></p>` : ""}</li>`
  ).join("\n");
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Local outbox</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}li{margin-bottom:1.5rem}a{word-break:break-all}.text{white-space:pre-wrap}</style></head>
<body><h1>Local outbox</h1><p>What this stack would have emailed, newest first: Auth's confirmation links and
the notification emails (receipts, low balance, disputes, key rotations).</p>
${mails.length ? `<ol>${rows}</ol>` : "<p>No mail yet.</p>"}</body></html>`;
}

/** GET /_stack/mail (HTML) and /_stack/mail.json[?to=address]. */
export function mailRoute(req: Request, path: string): Response {
  if (req.method !== "GET") return json({ message: "use GET" }, 405);
  const to = new URL(req.url).searchParams.get("to");
  if (path === "/_stack/mail.json") return json(outbox(to));
  if (path === "/_stack/mail" || path === "/_stack/mail/") {
    return new Response(page(outbox(to)), {
      headers: { "content-type": "text/html; charset=utf-8", "cache-control": "no-store" },
    });
  }
  return json({ message: "not found" }, 404);
}
