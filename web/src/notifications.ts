// Notifications (public.my_notifications; RLS: the signed-in user's own): the unread count in the top bar
// and the #/notifications page, where each is marked read (an update of read_at, the only column a user may
// write). Receipts, low balance, disputes and key rotations are recorded by the database once per event.
import { gen, root, sb, state } from "./app.ts";
import { $, esc, fmtDateTime, setHtml } from "./html.ts";
import { topbar } from "./views.ts";

interface Note {
  id: number;
  kind: string;
  title: string;
  body: string;
  link: string | null;
  created_at: string;
  unread: boolean;
}

export const isNotificationsRoute = () => location.hash === "#/notifications";

/** Fills [data-test=unread-count] in the top bar (hidden at 0). */
export async function refreshUnread() {
  const my = gen;
  const { data } = await sb.from("my_notifications").select("id").eq("unread", true).limit(100);
  const el = $<HTMLElement>("[data-test=unread-count]");
  if (my !== gen || !el || !data) return;
  el.textContent = data.length >= 100 ? "99+" : String(data.length);
  el.hidden = data.length === 0;
}

function item(n: Note): string {
  const link = n.link ? ` · <a href="${esc(n.link)}">${n.kind === "low_balance" ? "Buy credit" : "Open"}</a>` : "";
  const mark = n.unread
    ? ` <button type="button" class="small" data-action="mark-read" data-id="${n.id}">Mark read</button>`
    : "";
  return `<li class="card note" data-test="notification" data-unread="${n.unread}">
  <h2>${n.unread ? `<span class="dot" aria-hidden="true"></span><span class="sr-only">Unread: </span>` : ""}${
    esc(n.title)
  }</h2>
  <p>${esc(n.body)}</p>
  <p class="muted"><time datetime="${esc(n.created_at)}">${esc(fmtDateTime(n.created_at))}</time>${link}${mark}</p>
</li>`;
}

async function loadList() {
  const my = gen;
  const { data, error } = await sb.from("my_notifications").select("id,kind,title,body,link,created_at,unread")
    .order("created_at", { ascending: false }).order("id", { ascending: false }).limit(100);
  if (my !== gen || !isNotificationsRoute()) return;
  const notes = (data ?? []) as Note[];
  setHtml(
    $("#notifications"),
    error
      ? `<div class="banner danger" role="alert">We could not load your notifications (${esc(error.message)}).</div>`
      : notes.length
      ? `<ol class="notes">${notes.map(item).join("")}</ol>`
      : `<p class="muted">Nothing yet. Receipts, low-balance warnings and key changes show up here.</p>`,
  );
  void refreshUnread();
}

export function showNotifications() {
  root.dataset.view = "notifications";
  document.title = "Notifications · LLM credit";
  root.innerHTML = `${topbar(state.email)}
<main id="main" class="wrap notes-page" tabindex="-1">
  <nav class="receipt-actions" aria-label="Notifications">
    <a href="#/">Back to your dashboard</a>
    <button type="button" class="small" data-action="mark-read">Mark all read</button>
  </nav>
  <h1>Notifications</h1>
  <div id="notifications" aria-live="polite"><p class="muted">Loading…</p></div>
</main>`;
  $<HTMLElement>("#main")?.focus();
  void loadList();
}

/** Marks one notification read (data-id), or all unread ones. */
export async function markRead(id?: string) {
  const q = sb.from("notifications").update({ read_at: new Date().toISOString() });
  await (id ? q.eq("id", Number(id)) : q.is("read_at", null));
  await loadList();
}
