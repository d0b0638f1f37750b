// Issue 15, notifications: a paid checkout records one receipt and sends one email (the stack's
// Resend-compatible capture, stack/platform/email-api.ts, writes it to the outbox), whatever the webhook
// does; a failing email API is retried with back-off and the email still goes out once; without email
// configuration nothing is sent and the dashboard lists the notification; disputes and key rotations notify.
import { createHmac } from "node:crypto";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  activeUser,
  closeSql,
  env,
  invoke,
  type Mail,
  mailTo,
  paystackAdmin,
  serveAlone,
  sql,
  type TestUser,
  waitFor,
} from "./helpers.ts";

const sign = (body: string) => createHmac("sha512", env("PAYSTACK_SECRET_KEY")).update(body).digest("hex");

async function postWebhook(body: string) {
  const r = await fetch(`${env("SUPABASE_URL")}/functions/v1/paystack-webhook`, {
    method: "POST",
    headers: { "Content-Type": "application/json", "x-paystack-signature": sign(body) },
    body,
  });
  return { status: r.status, body: await r.json().catch(() => null) };
}

/** Checkout, paid on the emulator, and its charge.success delivered `times` times at once. Returns the reference. */
async function pay(u: TestUser, times = 1): Promise<string> {
  const c = await invoke("checkout", { plan: "starter" }, u.token);
  expect(c.status, JSON.stringify(c.body)).toBe(200);
  const reference = c.body.reference as string;
  await paystackAdmin("/admin/pay", { reference, webhook: false });
  const tx = (await paystackAdmin(`/admin/transactions/${reference}`)).data;
  const body = JSON.stringify({
    event: "charge.success",
    data: {
      id: tx.id,
      domain: tx.domain,
      status: tx.status,
      reference,
      amount: tx.amount,
      currency: tx.currency,
      paid_at: tx.paid_at,
    },
  });
  const results = await Promise.all(Array.from({ length: times }, () => postWebhook(body)));
  expect(results.map((r) => r.status)).toEqual(Array(times).fill(200));
  return reference;
}

const notifications = async (u: TestUser, kind: string) =>
  (await u.client.from("my_notifications").select("*").eq("kind", kind).order("id")).data ?? [];

async function emailRow(userId: string, kind: string) {
  const [row] =
    await sql()`select e.* from private.notification_emails e join public.notifications n on n.id = e.notification_id
                             where e.user_id = ${userId} and n.kind = ${kind}`;
  return row;
}

const captured = async (email: string): Promise<Mail[]> =>
  (await mailTo(email)).filter((m) => m.type === "notification");

/** The capture fails the next `times` sends to `to` with `status`. */
const failEmails = (to: string, times: number, status = 500) =>
  fetch(`${env("SUPABASE_URL")}/_stack/email-api/fail`, {
    method: "POST",
    body: JSON.stringify({ to, times, status }),
  }).then((r) => r.json());

beforeAll(async () => {
  await sql()`update private.settings set value = '0'::jsonb where key = 'rotation_settle_seconds'`;
});
afterEach(async () => {
  await paystackAdmin("/admin/config", { down: false });
});
afterAll(async () => {
  await sql()`update private.settings set value = '20'::jsonb where key = 'rotation_settle_seconds'`;
  await closeSql();
});

describe("payment receipt", () => {
  it("the webhook twice at once: one receipt in the dashboard, one email with the receipt link", async () => {
    const u = await activeUser("receipt");
    const reference = await pay(u, 2);
    const [n, ...more] = await notifications(u, "payment_receipt");
    expect(more).toEqual([]);
    expect(n).toMatchObject({
      title: "Receipt: 10.00 USD of credit added",
      body: "We received your payment of USD 5.00 for the Starter plan: 10.00 USD of credit was added to your account.",
      link: `#/receipt/${reference}`,
      unread: true,
    });
    const mail = await waitFor(async () => (await captured(u.email))[0], "the receipt email in the outbox");
    const receiptUrl = `${env("DASHBOARD_URL").replace(/\/$/, "")}/#/receipt/${reference}`;
    expect(mail).toMatchObject({ to: u.email, subject: n.title, link: receiptUrl, from: env("EMAIL_FROM") });
    expect(mail.text).toBe(`${n.body}\n\n${receiptUrl}`);
    // Sent once: the row says so, and a later run (the cron sweep) finds nothing to send.
    expect(await emailRow(u.id, "payment_receipt")).toMatchObject({
      status: "sent",
      attempts: 1,
      provider_id: mail.id,
    });
    const sweep = await invoke("send-notifications", { source: "cron" });
    expect(sweep.status).toBe(200);
    expect(await captured(u.email)).toHaveLength(1);
  });
});

describe("email delivery", () => {
  it("the email API failing: retried with back-off, then sent exactly once", async () => {
    const u = await activeUser("retry");
    await failEmails(u.email, 2, 503);
    await pay(u);
    // The kick after the notification tried once and failed: the email waits for its retry time.
    const first = await waitFor(async () => {
      const r = await emailRow(u.id, "payment_receipt");
      return r?.attempts === 1 ? r : null;
    }, "the first failed attempt");
    expect(first).toMatchObject({ status: "pending", last_error: "http 503", locked_until: null });
    // notification_email_backoff_base_seconds (30): the first retry is due within 30 s of the failure.
    expect(first.next_attempt_at.getTime()).toBeGreaterThan(Date.now());
    expect(first.next_attempt_at.getTime()).toBeLessThanOrEqual(Date.now() + 30_000);
    // A run before that time claims nothing of it.
    const early = await invoke("send-notifications", {});
    expect(early.status).toBe(200);
    expect((await emailRow(u.id, "payment_receipt")).attempts).toBe(1);
    // Its time comes (as the cron sweep would find it): fails again, backs off longer.
    await sql()`update private.notification_emails set next_attempt_at = now() where user_id = ${u.id}`;
    await invoke("send-notifications", {});
    const second = await emailRow(u.id, "payment_receipt");
    expect(second).toMatchObject({ status: "pending", attempts: 2 });
    expect(second.next_attempt_at.getTime()).toBeGreaterThan(Date.now() + 30_000); // doubled: 60 s
    expect(await captured(u.email)).toEqual([]);
    // Two runs at once when it is due: one sends it, the other finds it leased.
    await sql()`update private.notification_emails set next_attempt_at = now() where user_id = ${u.id}`;
    const runs = await Promise.all([invoke("send-notifications", {}), invoke("send-notifications", {})]);
    expect(runs.map((r) => r.status)).toEqual([200, 200]);
    expect(await emailRow(u.id, "payment_receipt")).toMatchObject({ status: "sent", attempts: 3 });
    expect(await captured(u.email)).toHaveLength(1);
  });

  it("a send the provider accepted but the run did not record is not sent again (Idempotency-Key)", async () => {
    const u = await activeUser("idem");
    await pay(u);
    const mail = await waitFor(async () => (await captured(u.email))[0], "the receipt email");
    // As if the run had died after the provider's answer: the row is pending again, and a run sends it.
    await sql()`update private.notification_emails set status = 'pending', provider_id = null, sent_at = null,
                next_attempt_at = now() where user_id = ${u.id}`;
    await invoke("send-notifications", {});
    expect(await emailRow(u.id, "payment_receipt")).toMatchObject({ status: "sent", provider_id: mail.id });
    expect(await captured(u.email)).toHaveLength(1);
  });

  it("without EMAIL_API_KEY and EMAIL_FROM: no email is attempted, the dashboard still lists the notification", async () => {
    const u = await activeUser("noemail");
    // The shared stack has email configured: keep its sender from delivering this user's email, then run
    // the function alone without the email settings.
    await failEmails(u.email, 100, 503);
    const { EMAIL_API_KEY: _k, EMAIL_FROM: _f, ...rest } = process.env;
    const alone = await serveAlone("send-notifications", rest);
    try {
      await pay(u);
      await waitFor(async () => (await emailRow(u.id, "payment_receipt")) ?? null, "the queued email");
      const r = await fetch(alone.url, { method: "POST", headers: { Authorization: `Bearer ${env("CRON_SECRET")}` } });
      expect(r.status).toBe(200);
      expect(await r.json()).toMatchObject({ configured: false, claimed: 0, sent: 0 });
    } finally {
      alone.stop();
    }
    expect(await emailRow(u.id, "payment_receipt")).toMatchObject({
      status: "skipped",
      last_error: "no email provider configured (EMAIL_API_KEY, EMAIL_FROM)",
      sent_at: null,
    });
    // Skipped is final: the configured sender never takes it up later.
    await sql()`update private.notification_emails set next_attempt_at = now() where user_id = ${u.id}`;
    await failEmails(u.email, 0);
    await invoke("send-notifications", {});
    expect(await captured(u.email)).toEqual([]);
    expect(await notifications(u, "payment_receipt")).toHaveLength(1);
  });
});

/** What a failed wait for these users' emails reports: their rows, the kicks left and pg_net's queue. */
async function emailState(users: { id: string }[]) {
  const ids = users.map((u) => u.id);
  const [state] = await sql()`
    select (select json_agg(json_build_object('status', e.status, 'attempts', e.attempts, 'locked_until', e.locked_until,
                            'next_attempt_at', e.next_attempt_at, 'last_error', e.last_error, 'created_at', e.created_at))
              from private.notification_emails e where e.user_id = any(${ids}::uuid[])) as emails,
           (select json_agg(k) from private.notification_kicks k) as kicks,
           (select count(*)::int from net.http_request_queue) as pg_net_queued,
           (select count(*)::int from pg_stat_activity where wait_event_type = 'Lock') as waiting_on_locks,
           now() as at`;
  return state;
}

/** Runs fn with pg_cron's send-notifications sweep paused: only the kicks send emails meanwhile. */
async function withoutSweep<T>(fn: () => Promise<T>): Promise<T> {
  await sql()`select cron.alter_job(jobid, active := false) from cron.job where jobname = 'send-notifications'`;
  try {
    return await fn();
  } finally {
    await sql()`select cron.alter_job(jobid, active := true) from cron.job where jobname = 'send-notifications'`;
  }
}

describe("shared send-notifications kicks (20261202000740)", () => {
  it("payments at once: every receipt emailed once by the kicks alone, no cron sweep", async () => {
    const users = await Promise.all(Array.from({ length: 8 }, (_, i) => activeUser(`kicks-${i}`)));
    await withoutSweep(async () => {
      await Promise.all(users.map((u) => pay(u)));
      // A deadline, not a duration: with the sweep off only the kicks' runs send them, and it stays under the
      // claim's 33 s lease, so an email leased and then dropped (the bug of 20261203000100) still fails here.
      await waitFor(
        async () => {
          for (const u of users) if ((await captured(u.email)).length === 0) return false;
          return true;
        },
        "every receipt email",
        30_000,
      ).catch(async (e) => {
        throw new Error(`${(e as Error).message}; then: ${JSON.stringify(await emailState(users))}`);
      });
    });
    for (const u of users) {
      expect(await captured(u.email)).toHaveLength(1);
      expect(await emailRow(u.id, "payment_receipt")).toMatchObject({ status: "sent", attempts: 1 });
    }
  }, 60_000);

  it("a run waits for a transaction that joined its kick, then sends that transaction's email", async () => {
    const u = await activeUser("kick-join");
    await withoutSweep(async () => {
      const [kick] = await sql()`insert into private.notification_kicks default values returning id`;
      const tx = await sql().reserve();
      try {
        await tx`begin`;
        await tx`select private.notify(${u.id}, 'auto_topup_failed', 'kick-join', 'Joined', 'joined a kick')`;
        // It joined the waiting kick instead of queuing a call of its own.
        const [own] = await tx`select count(*)::int as n from private.notification_kicks
                                where xmin = pg_current_xact_id()::xid`;
        expect(own.n).toBe(0);
        // The kick's run starts before that transaction commits: it must wait, not claim without the email.
        const run = invoke("send-notifications", { source: "notify", kick: Number(kick.id) });
        await waitFor(async () => {
          const [w] = await sql()`select count(*)::int as n from pg_stat_activity
                                   where wait_event_type = 'Lock' and query like '%take_notification_kick%'`;
          return w.n > 0;
        }, "the run waiting for the joined transaction");
        await tx`commit`;
        const r = await run;
        expect(r.status).toBe(200);
        expect(r.body.sent).toBeGreaterThanOrEqual(1);
      } finally {
        await tx`rollback`.catch(() => {});
        tx.release();
      }
      expect(await sql()`select 1 from private.notification_kicks where id = ${kick.id}`).toHaveLength(0);
    });
    expect(await emailRow(u.id, "auto_topup_failed")).toMatchObject({ status: "sent", attempts: 1 });
    const mails = await captured(u.email);
    expect(mails.map((m) => m.subject)).toEqual(["Joined"]);
  });
});

describe("disputes and key rotation", () => {
  it("a dispute opened then resolved: one notification each, with their emails", async () => {
    const u = await activeUser("disputed");
    const reference = await pay(u);
    await paystackAdmin("/admin/dispute", { reference, action: "create" });
    // Paystack delivers the same event again, twice at once.
    await paystackAdmin("/admin/replay", { reference, event: "charge.dispute.create", times: 2, concurrent: true });
    await waitFor(async () => (await notifications(u, "dispute_opened")).length === 1, "dispute_opened");
    await paystackAdmin("/admin/dispute", { reference, action: "resolve", resolution: "merchant-accepted" });
    const [resolved] = await waitFor(async () => {
      const rows = await notifications(u, "dispute_resolved");
      return rows.length ? rows : null;
    }, "dispute_resolved");
    expect(resolved.body).toMatch(/credit was taken back/);
    expect(resolved.link).toBe(`#/receipt/${reference}`);
    expect(await notifications(u, "dispute_opened")).toHaveLength(1);
    const subjects = await waitFor(async () => {
      const s = (await captured(u.email)).map((m) => m.subject).sort();
      return s.length === 3 ? s : null;
    }, "three emails: receipt, dispute opened, dispute resolved");
    expect(subjects).toEqual([
      "A dispute was resolved",
      "A payment of yours is disputed",
      "Receipt: 10.00 USD of credit added",
    ]);
  });

  it("a key rotation notifies once, with an email", async () => {
    const u = await activeUser("rotated");
    const r = await invoke("rotate-key", {}, u.token);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    const [rot] = await sql()`select id from private.key_rotations where user_id = ${u.id}`;
    const rows = await notifications(u, "key_rotated");
    expect(rows.map((n) => [n.kind, n.link])).toEqual([["key_rotated", "#/"]]);
    expect((await sql()`select event_key from public.notifications where user_id = ${u.id}`).map((x) => x.event_key))
      .toEqual([String(rot.id)]);
    const mail = await waitFor(async () => (await captured(u.email))[0], "the rotation email");
    expect(mail.subject).toBe("Your API key was replaced");
  });
});
