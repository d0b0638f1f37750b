// Notification emails: what the database queued (private.notification_emails, migration
// 20261202000740: one per notification of a user with an address) is claimed with a lease, sent once
// through _shared/email.ts, and finished in SQL (sent; or back off and retry in a later run; or give up).
// A run kicked for new notifications first takes its kick (private.take_notification_kick, migration
// 20261202000740: it waits for every transaction that shared the kick, so their emails are claimed here), then
// claims batch after batch until nothing is due or its time is spent.
// One try per email per run: the back-off between tries lives in SQL, so a provider that is down for an
// hour costs a few requests, not a tight loop. Without an email provider configured, pending emails are
// marked skipped and the notifications stay in the dashboard.
import { config } from "./config.ts";
import { db } from "./db.ts";
import { type Email, emailConfigured, sendEmail } from "./email.ts";
import { log } from "./log.ts";

interface Due {
  notification_id: string;
  idempotency_key: string;
  email: string;
  kind: string;
  title: string;
  body: string;
  link: string | null;
  created_at: Date;
  attempts: number;
}

export interface EmailReport {
  configured: boolean;
  claimed: number;
  sent: number;
  retrying: number;
  failed: number;
  skipped: number;
}

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The dashboard route of a notification ('#/receipt/x') as an absolute URL, or null without DASHBOARD_URL. */
export function absoluteLink(link: string | null, dashboardUrl = config().DASHBOARD_URL): string | null {
  if (!link || !dashboardUrl) return null;
  return `${dashboardUrl.replace(/[#/]+$/, "")}/${link}`;
}

/** The email of one notification: its title as the subject, its text, and the link into the dashboard. */
export function renderEmail(n: Pick<Due, "email" | "title" | "body" | "link" | "idempotency_key">): Email {
  const url = absoluteLink(n.link);
  return {
    to: n.email,
    subject: n.title,
    text: url ? `${n.body}\n\n${url}` : n.body,
    html: `<p>${esc(n.body)}</p>` + (url ? `<p><a href="${esc(url)}">${esc(url)}</a></p>` : ""),
    idempotencyKey: n.idempotency_key,
  };
}

/**
 * Sends due notification emails until budgetMs is spent. kick: the kick this run was started for (null: the
 * cron sweep or an operator). Never throws for a send problem (it is recorded).
 */
export async function deliverNotificationEmails(
  opts: { budgetMs?: number; kick?: number | null } = {},
): Promise<EmailReport> {
  const sql = db();
  await sql`select private.take_notification_kick(${opts.kick ?? null})`;
  const report: EmailReport = {
    configured: emailConfigured(),
    claimed: 0,
    sent: 0,
    retrying: 0,
    failed: 0,
    skipped: 0,
  };
  if (!report.configured) {
    const [{ n }] = await sql<{ n: number }[]>`
      select private.skip_notification_emails('no email provider configured (EMAIL_API_KEY, EMAIL_FROM)') as n`;
    report.skipped = n;
    return report;
  }
  const started = performance.now();
  const budget = opts.budgetMs ?? 20_000;
  // The lease outlasts this run's budget plus one request, so no other run takes an email while it is sent.
  const lease = Math.ceil((budget + config().EMAIL_API_TIMEOUT_MS) / 1000) + 5;
  // Each claim takes at most notification_email_batch_size; emails sent, backing off or finished elsewhere
  // are not due again, so the loop ends when a claim comes back empty.
  while (performance.now() - started <= budget) {
    const due = await sql<Due[]>`select * from private.claim_notification_emails(null, ${lease})`;
    if (due.length === 0) break;
    report.claimed += due.length;
    for (const n of due) {
      // Out of time: the rest stay claimed until their lease ends, then a later run takes them.
      if (performance.now() - started > budget) break;
      const result = await sendEmail(renderEmail(n));
      const [{ status }] = await sql<{ status: string | null }[]>`
        select private.finish_notification_email(${n.notification_id}, ${result.ok}, 1,
          ${result.ok ? null : result.error}, ${result.ok ? result.id : null}, ${
        !result.ok && !result.retry
      }) as status`;
      const fields = {
        notification_id: n.notification_id,
        kind: n.kind,
        to: n.email,
        attempts: n.attempts + 1,
        status,
      };
      if (status === "sent") report.sent++;
      else if (status === "failed") report.failed++;
      else report.retrying++;
      if (result.ok) log.info("notification email sent", fields);
      else log.warn("notification email not sent", { ...fields, error: result.error });
    }
  }
  return report;
}
