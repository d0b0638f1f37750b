// Tiny templating: HTML strings with every interpolated value escaped by the caller through esc().

const ENTITIES: Record<string, string> = { "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" };

export function esc(v: unknown): string {
  return String(v ?? "").replace(/[&<>"']/g, (c) => ENTITIES[c]);
}

/** A selector that finds "the same" control again after a re-render (by id or its data-* identity). */
function identity(el: Element): string | null {
  if (el.id) return `#${CSS.escape(el.id)}`;
  const attrs = ["data-action", "data-plan", "data-copy", "data-mode"].filter((a) => el.hasAttribute(a));
  return attrs.length ? attrs.map((a) => `[${a}="${CSS.escape(el.getAttribute(a)!)}"]`).join("") : null;
}

/** Replaces an element's content only when it changed; keyboard focus inside it survives the re-render. */
export function setHtml(el: Element | null, html: string): void {
  if (!el) return;
  const prev = (el as HTMLElement & { _html?: string })._html;
  if (prev === html) return;
  (el as HTMLElement & { _html?: string })._html = html;
  const focused = document.activeElement && el.contains(document.activeElement)
    ? identity(document.activeElement)
    : null;
  el.innerHTML = html;
  if (focused) el.querySelector<HTMLElement>(focused)?.focus();
}

export const $ = <T extends Element = HTMLElement>(sel: string, root: ParentNode = document) =>
  root.querySelector<T>(sel);

const dateFmt = new Intl.DateTimeFormat(undefined, { year: "numeric", month: "short", day: "numeric" });
const dateTimeFmt = new Intl.DateTimeFormat(undefined, {
  year: "numeric",
  month: "short",
  day: "numeric",
  hour: "2-digit",
  minute: "2-digit",
});
const dayFmt = new Intl.DateTimeFormat(undefined, { month: "short", day: "numeric", timeZone: "UTC" });

export const fmtDate = (iso: string | null | undefined) => (iso ? dateFmt.format(new Date(iso)) : "");
export const fmtDateTime = (iso: string | null | undefined) => (iso ? dateTimeFmt.format(new Date(iso)) : "");
/** A UTC calendar day "2026-11-26" as "Nov 26". */
export const fmtDay = (day: string) => dayFmt.format(new Date(`${day}T00:00:00Z`));

/** "12 s ago", "4 min ago", "2 h ago", "3 days ago". */
export function ago(iso: string, now = Date.now()): string {
  const s = Math.max(0, Math.round((now - new Date(iso).getTime()) / 1000));
  if (s < 60) return `${s} s ago`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ago`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h} h ago`;
  return `${Math.floor(h / 24)} days ago`;
}
