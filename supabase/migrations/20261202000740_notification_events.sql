-- Notification events and their email delivery (issue 15). The events come from triggers on the tables the
-- money functions already write, so no money function is redefined and each event is recorded in the
-- transaction that makes it true (a rolled-back payment notifies nobody):
--
--   event              table, when                                       event_key
--   payment_receipt    credit_ledger insert of kind 'purchase'           the payment's reference
--   dispute_opened     private.disputes row open (create, remind)        the dispute id
--   dispute_resolved   private.disputes row resolved                     '<dispute id>:resolve'
--   key_rotated        private.key_rotations reaching 'done'             the rotation id
--   low_balance        private.alert_events insert, status 'pending'     'alert:<alert id>' ('superseded' 20 %
--                                                                        ones are skipped, as for operators)
--
-- private.notify is an insert that does nothing on a repeated (user, kind, event_key), so a duplicate
-- webhook, a re-run rotation step or a retried reconcile adds nothing.
--
-- Email: each new notification of a user with an email address gets one private.notification_emails row
-- (pending), sent by the send-notifications function (supabase/functions/_shared/email.ts), kicked through
-- pg_net after the inserting transaction commits and swept by pg_cron every minute. Claims are leased
-- (SKIP LOCKED) so overlapping runs never send one twice, and each email carries its own idempotency key
-- (Resend's Idempotency-Key header) so a run that died after the provider accepted it cannot send it again
-- on the retry. Undelivered emails back off exponentially and are given up after
-- notification_email_max_attempts. Without an email provider configured, pending emails are marked
-- 'skipped' (never sent later in a flood) and the notifications stay in the dashboard.

-- Its settings (notification_email_*) are rows of private.settings, inserted in 20261126000100.

-- ---------------------------------------------------------------- formatting (exact, numeric)

-- An amount in a currency's subunits as text, e.g. 'NGN 7500.00' (no subunit digits for whole-unit currencies).
create function private.format_subunits(p_subunits bigint, p_currency text, p_exponent integer) returns text
language sql stable security definer set search_path = '' as $$
  select p_currency || ' ' || round(p_subunits::numeric / power(10::numeric, p_exponent),
                                    case when coalesce(c.whole_units, false) then 0 else p_exponent end)::text
    from (select 1) one left join public.currencies c on c.code = p_currency
$$;

-- What the customer paid for a payment (fees passed to them included), in its own currency.
create function private.amount_paid(p_payment public.payments) returns text
language sql stable security definer set search_path = '' as $$
  select private.format_subunits(p_payment.charged_subunits, p_payment.currency, p_payment.exponent)
$$;

-- ---------------------------------------------------------------- events

create function private.notify_payment_receipt() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  perform private.notify(new.user_id, 'payment_receipt', pm.reference,
    'Receipt: ' || new.amount::text || ' USD of credit added',
    'We received your payment of ' || private.amount_paid(pm) || ' for the ' || coalesce(pl.name, pm.plan_code)
      || ' plan: ' || new.amount::text || ' USD of credit was added to your account.',
    '#/receipt/' || pm.reference)
     from public.payments pm left join public.plans pl on pl.code = pm.plan_code
    where pm.id = new.payment_id;
  return null;
end
$$;
create trigger credit_ledger_notify_receipt after insert on public.credit_ledger
  for each row when (new.kind = 'purchase') execute function private.notify_payment_receipt();

-- Open (create, remind) or resolved; a resolution is final, so each notifies once per dispute.
create function private.notify_dispute() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  perform private.notify(pm.user_id, k.kind, k.event_key, k.title,
    case when new.is_open
      then 'A dispute was opened on your payment of ' || private.amount_paid(pm) || ' (reference ' || pm.reference
           || '). Your API key is paused while a dispute is open.'
      else 'The dispute on your payment of ' || pm.reference || ' (' || private.amount_paid(pm) || ') was resolved: '
           || case when new.is_lost then 'the money went back to the card holder and its credit was taken back.'
                   else 'the payment stands and its credit stays.' end
    end,
    '#/receipt/' || pm.reference)
     from public.payments pm,
          (select 'dispute_opened' as kind, new.id::text as event_key, 'A payment of yours is disputed' as title
            where new.is_open
           union all
           select 'dispute_resolved', new.id::text || ':resolve', 'A dispute was resolved'
            where new.status = 'resolve') k
    where pm.id = new.payment_id;
  return null;
end
$$;
create trigger disputes_notify after insert or update of status, resolution on private.disputes
  for each row execute function private.notify_dispute();

create function private.notify_key_rotated() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  perform private.notify(new.user_id, 'key_rotated', new.id::text, 'Your API key was replaced',
    'A new API key replaced your old one on ' || to_char(new.finished_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI')
      || ' UTC; the old key no longer works. Your credit moved to the new key: copy it from the dashboard.',
    '#/');
  return null;
end
$$;
create trigger key_rotations_notify_done after update of state on private.key_rotations
  for each row when (new.state = 'done' and old.state is distinct from 'done')
  execute function private.notify_key_rotated();

-- One statement for all the alerts a reconcile chunk fires (hundreds when a fleet crosses a level together):
-- a row trigger ran private.notify, and the email trigger behind it, once per alert.
create function private.notify_low_balance() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  insert into public.notifications (user_id, kind, event_key, title, body, link)
  select n.user_id, 'low_balance', 'alert:' || n.id, 'Your credit is running low',
         'You have ' || round(n.remaining, 2)::text || ' USD of credit left, ' || public.percent_left(n.remaining, n.granted)::text
           || ' % of what you were granted (at or below ' || n.level || ' %). Buy a pack to keep your key working.',
         '#/buy'
    from new_rows n where n.delivery_status = 'pending'
  on conflict (user_id, kind, event_key) do nothing;
  return null;
end
$$;
create trigger alert_events_notify after insert on private.alert_events
  referencing new table as new_rows for each statement execute function private.notify_low_balance();

-- ---------------------------------------------------------------- email delivery

create table private.notification_emails (
  notification_id bigint primary key references public.notifications (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  -- Sent as the provider's Idempotency-Key: a retry of a request the provider already accepted sends nothing.
  idempotency_key text not null unique,
  status text not null default 'pending' check (status in ('pending', 'sent', 'failed', 'skipped')),
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  locked_until timestamptz,
  last_error text,
  provider_id text, -- the provider's id of the sent email ({"id": ...})
  created_at timestamptz not null default now(),
  sent_at timestamptz
);
create index notification_emails_due_idx on private.notification_emails (next_attempt_at) where status = 'pending';
revoke all on table private.notification_emails from public, anon, authenticated, service_role;

-- One row per queued send-notifications call that may still be joined; deleted by the run it starts.
create table private.notification_kicks (
  id bigint generated always as identity primary key,
  -- clock time, not the transaction's start: a long transaction's kick is as young as its call
  created_at timestamptz not null default clock_timestamp()
);
revoke all on table private.notification_kicks from public, anon, authenticated, service_role;

-- New notifications: one email each for users with an address, and a send-notifications run to send them,
-- shared (bench:webhook: one run per receipt, in the webhook's local process, cost the webhook path). Every
-- email queued by a transaction needs a run that claims it after that transaction commits. A transaction
-- joins the newest kick still waiting (a private.notification_kicks row, each with its own pg_net call,
-- queued by pg_net and sent after commit; private.invoke_function never raises, so the money path cannot
-- fail here) by locking that row FOR KEY SHARE until it ends; the run first deletes its kick row
-- (private.take_notification_kick), which waits for every joined transaction to commit or roll back, and only
-- then claims. So a joined email is claimed by that run, never missed. A kick whose run has begun (its row
-- locked by that delete: SKIP LOCKED) or older than notification_kick_join_seconds is not joined; the
-- transaction makes its own. The age limit bounds how long a run waits for joiners under a steady stream of
-- payments. Low-balance emails from reconcile's chunks join too, so a burst of crossings makes about one
-- call a second.
create function private.queue_notification_emails() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  v_queued integer;
  v_kick bigint;
begin
  insert into private.notification_emails (notification_id, user_id, idempotency_key)
  select n.id, n.user_id, 'notification/' || n.user_id || '/' || n.id
    from new_rows n join auth.users u on u.id = n.user_id
   where coalesce(u.email, '') <> ''
  on conflict (notification_id) do nothing;
  get diagnostics v_queued = row_count;
  if v_queued = 0 then
    return null;
  end if;
  -- Held until this transaction ends: the kick's run cannot take it before these emails are committed.
  select k.id into v_kick from private.notification_kicks k
   where k.created_at > clock_timestamp()
                        - make_interval(secs => private.setting_numeric('notification_kick_join_seconds')::double precision)
   order by k.id desc
   limit 1
   for key share skip locked;
  if v_kick is null then
    insert into private.notification_kicks default values returning id into v_kick;
    -- private.invoke_function never raises; a kick without a call is not left for others to join.
    if private.invoke_function('send-notifications', jsonb_build_object('source', 'notify', 'kick', v_kick)) is null then
      delete from private.notification_kicks where id = v_kick;
    end if;
  end if;
  return null;
end
$$;
create trigger notifications_queue_emails after insert on public.notifications
  referencing new table as new_rows for each statement execute function private.queue_notification_emails();

-- The first step of a send-notifications run, in its own transaction before the claim: deletes the run's
-- kick, which waits until every transaction that joined it has ended, so the claim after it sees their
-- emails. Also removes kicks whose call never started a run (the cron sweep sends their emails).
create function private.take_notification_kick(p_kick bigint) returns void
language plpgsql volatile security definer set search_path = '' as $$
begin
  delete from private.notification_kicks where id = p_kick;
  delete from private.notification_kicks k
   where k.id in (select s.id from private.notification_kicks s
                   where s.created_at < clock_timestamp() - interval '10 minutes'
                   for update skip locked);
end
$$;

-- Emails due, leased to one run (SKIP LOCKED: overlapping runs never take the same one) by private.lease_due
-- (20261126001000).
create function private.claim_notification_emails(p_limit integer default null, p_lease_seconds integer default 60)
returns table (notification_id bigint, idempotency_key text, email text, kind text, title text, body text, link text,
               created_at timestamptz, attempts integer)
language sql volatile security definer set search_path = '' as $$
  select c.notification_id, c.idempotency_key, u.email::text, n.kind, n.title, n.body, n.link, n.created_at, c.attempts
    from private.lease_due(null::private.notification_emails, 'notification_id', 'status',
                           coalesce(p_limit, private.setting_numeric('notification_email_batch_size')::integer),
                           p_lease_seconds) c
    join public.notifications n on n.id = c.notification_id join auth.users u on u.id = c.user_id
   order by c.notification_id
$$;

-- No email provider configured: pending emails are marked skipped (kept as a record, never sent later in a
-- flood; private.skip_pending, 20261126001000); the notifications themselves stay in the dashboard.
create function private.skip_notification_emails(p_reason text) returns integer
language sql volatile security definer set search_path = '' as $$
  select private.skip_pending('private.notification_emails', 'status', p_reason)
$$;

-- The outcome of one send (p_tries = HTTP attempts made in this run), by the alerts' rule
-- (private.delivery_outcome, 20261126001000). p_final: the provider refused the email itself (a 4xx other
-- than 409/429), so it is given up now. Returns the new status, or null when the email was not pending
-- (finished by another run: nothing changes).
create function private.finish_notification_email(p_notification_id bigint, p_sent boolean, p_tries integer,
                                                  p_error text default null, p_provider_id text default null,
                                                  p_final boolean default false)
returns text language sql volatile security definer set search_path = '' as $$
  update private.notification_emails e
     set (attempts, status, next_attempt_at) = (
           select o.attempts, o.status, coalesce(o.next_attempt_at, e.next_attempt_at)
             from private.delivery_outcome('notification_email', e.attempts, p_tries, case when p_sent then 'sent' end,
                                           p_final) o),
         locked_until = null, last_error = case when p_sent then null else left(p_error, 500) end,
         provider_id = case when p_sent then left(p_provider_id, 200) end, sent_at = case when p_sent then now() end
   where e.notification_id = p_notification_id and e.status = 'pending'
  returning e.status
$$;

-- Whether send-notifications has anything to do within the next minute (the cron job calls it only then).
create function private.notification_emails_due() returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (select 1 from private.notification_emails e
                  where e.status = 'pending' and e.next_attempt_at <= now() + interval '1 minute'
                    and (e.locked_until is null or e.locked_until < now()))
$$;

-- The sweep: emails whose kick was lost, whose run died, or that back off.
select private.schedule_sweep('send-notifications', 'send-notifications', 'private.notification_emails_due()');

revoke execute on all functions in schema private from public, anon, authenticated;
grant execute on all functions in schema private to service_role;
