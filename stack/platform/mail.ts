// The local stack's outbox: what hosted Auth would email (the sign-up confirmation link) is written to
// <stack dir>/mail/ as one JSON file per message and shown at /_stack/mail (a page with clickable links,
// printed by `npm start`) and /_stack/mail.json?to=<address> (for tests and scripts). Local only: the
// folder is emptied when the gateway starts, since the database is fresh on every start.
import { LOCAL_DIR } from "../local-env.ts";
import { json } from "./http.ts";

const DIR = `${LOCAL_DIR}/mail`;

export interface Mail {
  id: string;
  to: string;
  subject: string;
  type: "signup";
  link: string;
  text: string;
  sent_at: string;
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
    `<li><p><b>${esc(m.subject)}</b> to ${esc(m.to)} <small>${esc(m.sent_at)}</small></p>
<p>${esc(m.text)}</p><p><a href="${esc(m.link)}">${esc(m.link)}</a></p></li>`
  ).join("\n");
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Local outbox</title>
<style>body{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}li{margin-bottom:1.5rem}a{word-break:break-all}</style></head>
<body><h1>Local outbox</h1><p>What Auth would have emailed on this stack, newest first.</p>
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
