// Low-balance alert delivery. Detection is in SQL (migrations/20261126001000_low_balance_alerts.sql):
// one event per crossing of 20 % and 5 % of what a user was granted. This POSTs each pending event to
// the alert webhook as Slack-compatible JSON ({"text": "..."}), a few quick tries per run; what is still
// undelivered backs off and is retried by later runs (reconcile-spend, ops-sweep), then given up after
// alert_max_attempts. Claims are leased (SKIP LOCKED), so overlapping runs never send an alert twice.
//
// The webhook URL (a vault secret alert_webhook_url, else ALERT_WEBHOOK_URL) is a secret: it is never
// logged, and errors are reduced to "http <status>" / "timeout" / "unreachable" (fetch errors name the URL).
import { config } from "./config.ts";
import { db } from "./db.ts";
import { log, mask } from "./log.ts";
import { formatMoney } from "./money.ts";

interface Due {
  alert_id: string;
  user_id: string;
  email: string | null;
  level: number;
  granted: string;
  spent: string;
  remaining: string;
  crossed_at: Date;
  attempts: number;
  remaining_percent: string; // of what was granted, at the crossing (SQL)
}

export interface DeliveryReport {
  configured: boolean;
  claimed: number;
  delivered: number;
  retrying: number;
  failed: number;
  skipped: number;
  sql_round_trips: number;
}

const TRIES_PER_RUN = 3;

/** The Slack-compatible message of one alert (no key, masked email); amounts rounded exactly. */
export function alertText(
  a: Pick<Due, "user_id" | "email" | "level" | "granted" | "remaining" | "remaining_percent" | "crossed_at">,
): string {
  const who = a.email ? `${mask(a.email)} (${a.user_id})` : a.user_id;
  return `:warning: Low balance: ${who} has ${formatMoney(a.remaining)} of ${formatMoney(a.granted)} USD credit left ` +
    `(${formatMoney(a.remaining_percent, 1)} %), at or below ${a.level} % since ${
      new Date(a.crossed_at).toISOString()
    }.`;
}

async function post(
  url: string,
  text: string,
  timeoutMs: number,
): Promise<{ ok: boolean; error?: string; retry: boolean }> {
  try {
    const res = await fetch(url, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text }),
      signal: AbortSignal.timeout(timeoutMs),
    });
    await res.body?.cancel();
    if (res.ok) return { ok: true, retry: false };
    return { ok: false, error: `http ${res.status}`, retry: res.status >= 500 || res.status === 429 };
  } catch (e) {
    const timeout = e instanceof DOMException && (e.name === "TimeoutError" || e.name === "AbortError");
    return { ok: false, error: timeout ? `no answer within ${timeoutMs} ms` : "unreachable", retry: true };
  }
}

/** A few quick tries of one message (a retryable failure backs off 300 ms, then 900 ms). */
async function postWithTries(url: string, text: string, timeoutMs: number) {
  let tries = 0;
  let result: { ok: boolean; error?: string; retry: boolean } = { ok: false, retry: true };
  while (tries < TRIES_PER_RUN) {
    tries++;
    result = await post(url, text, timeoutMs);
    if (result.ok || !result.retry) break;
    if (tries < TRIES_PER_RUN) await new Promise((r) => setTimeout(r, 300 * 3 ** (tries - 1)));
  }
  return { result, tries };
}

/** The alert webhook: the vault secret alert_webhook_url, else ALERT_WEBHOOK_URL; null when neither is set. */
async function webhookUrl(): Promise<string | null> {
  const [{ url }] = await db()<{ url: string | null }[]>`select private.alert_webhook_url() as url`;
  return url || config().ALERT_WEBHOOK_URL || null;
}

/**
 * An operator notice on the same webhook (e.g. LiteLLM reported less spend than recorded). Best effort: what
 * needs a person is also kept in the database (admin views, health), so a notice that cannot be delivered
 * is logged, not queued. Returns whether it was delivered.
 */
export async function notifyOperator(text: string): Promise<boolean> {
  const url = await webhookUrl();
  if (!url) return false;
  const { result } = await postWithTries(url, `:rotating_light: ${text}`, config().ALERT_WEBHOOK_TIMEOUT_MS);
  if (!result.ok) log.warn("operator notice not delivered", { error: result.error });
  return result.ok;
}

/** Delivers due alerts until budgetMs is spent. Never throws for a delivery problem (it is recorded). */
export async function deliverAlerts(opts: { budgetMs?: number } = {}): Promise<DeliveryReport> {
  const sql = db();
  const started = performance.now();
  const budget = opts.budgetMs ?? 10_000;
  const report: DeliveryReport = {
    configured: true,
    claimed: 0,
    delivered: 0,
    retrying: 0,
    failed: 0,
    skipped: 0,
    sql_round_trips: 2,
  };
  const url = await webhookUrl();
  if (!url) {
    const [{ n }] = await sql<
      { n: number }[]
    >`select private.skip_alert_deliveries('no alert webhook configured (ALERT_WEBHOOK_URL)') as n`;
    return { ...report, configured: false, skipped: n };
  }
  const timeoutMs = config().ALERT_WEBHOOK_TIMEOUT_MS;
  const due = await sql<Due[]>`select * from private.claim_alert_deliveries(null, ${
    Math.ceil((budget + TRIES_PER_RUN * timeoutMs) / 1000)
  })`;
  report.claimed = due.length;
  report.sql_round_trips += due.length;
  for (const a of due) {
    // Out of time: the rest stay claimed until their short lease ends, then the next run takes them
    // (no attempt is counted for them).
    if (performance.now() - started > budget) break;
    const { result, tries } = await postWithTries(url, alertText(a), timeoutMs);
    const [{ status }] = await sql<{ status: string | null }[]>`
      select private.finish_alert_delivery(${a.alert_id}, ${result.ok}, ${tries}, ${result.error ?? null}) as status`;
    if (status === "delivered") report.delivered++;
    else if (status === "failed") report.failed++;
    else report.retrying++;
    if (!result.ok) {
      log.warn("alert not delivered", {
        alert_id: a.alert_id,
        user_id: a.user_id,
        level: a.level,
        tries,
        error: result.error,
        status,
      });
    } else log.info("alert delivered", { alert_id: a.alert_id, user_id: a.user_id, level: a.level, tries });
  }
  return report;
}
