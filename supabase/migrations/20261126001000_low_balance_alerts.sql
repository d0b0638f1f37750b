-- Low-balance alerts: when a user's remaining credit (ledger total - spend of all their keys) falls to
-- 20 % and then 5 % of what was granted, one event per crossing is recorded; the alert is POSTed to
-- ALERT_WEBHOOK_URL (Slack-compatible) by supabase/functions/_shared/alerts.ts, with retries.
--
-- Once per crossing: an event stays "open" (rearmed_at is null) while the balance is at or below its
-- level, and a unique index allows one open event per user and level, so reconcile runs that see the
-- same low balance again add nothing. The level re-arms when the balance goes back above it (a purchase,
-- a grant); the next fall below it is a new crossing and a new event.
--
-- Detection runs in the database, on the two things that move the balance: statement triggers on
-- credit_ledger inserts (grants, purchases, refunds, adjustments) and on api_keys updates that change
-- spend (reconcile-spend writing what LiteLLM reported; rotation freezing a retired key's spend). They are
-- private.after_balance_change (20261202000720), which runs this rule and auto top-up's on the same users.
-- A fall from above 20 % straight to 5 % or less records both levels, but only the 5 % one is sent
-- (the 20 % one is 'superseded').

-- Its settings (alert_max_attempts, alert_backoff_base_seconds, alert_backoff_cap_seconds, alert_batch_size,
-- reconcile_stale_seconds) are rows of private.settings, inserted in 20261126000100.

create table private.alert_events (
  id bigint generated always as identity primary key,
  user_id uuid not null references auth.users (id),
  kind text not null default 'low_balance' check (kind = 'low_balance'),
  level integer not null check (level in (20, 5)), -- percent of what was granted
  granted numeric not null,
  spent numeric not null,
  remaining numeric not null,
  crossed_at timestamptz not null default now(),
  rearmed_at timestamptz, -- the balance went back above the level: the next fall is a new event
  delivery_status text not null default 'pending'
    check (delivery_status in ('pending', 'delivered', 'failed', 'skipped', 'superseded')),
  attempts integer not null default 0,
  next_attempt_at timestamptz not null default now(),
  locked_until timestamptz,
  last_error text,
  delivered_at timestamptz
);
create unique index alert_events_one_open_per_level on private.alert_events (user_id, level) where rearmed_at is null;
create index alert_events_due_idx on private.alert_events (next_attempt_at) where delivery_status = 'pending';
create index alert_events_user_idx on private.alert_events (user_id, crossed_at);
revoke all on table private.alert_events from public, anon, authenticated;
grant select on table private.alert_events to service_role;

-- The rule, for a set of users. The comparison is exact (numeric): low at level L when
-- remaining * 100 <= granted * L, with granted > 0. public.my_account.low_balance_level uses the same one.
create function private.evaluate_low_balance(p_user_ids uuid[]) returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_fired integer;
begin
  if p_user_ids is null or cardinality(p_user_ids) = 0 then
    return 0;
  end if;
  -- The users' open events, found by probing the (user_id, level) index with the ids: at 1,000,000 keys a
  -- reconcile cycle leaves hundreds of thousands open, which a correlated EXISTS hashed in one scan per chunk.
  with open as materialized (
    select e.id, e.user_id, e.level from private.alert_events e where e.user_id = any(p_user_ids) and e.rearmed_at is null
  ), bal as (
    select u.user_id, b.granted, b.spent, b.low_balance_level
      from (select distinct x.user_id from unnest(p_user_ids) as x(user_id)) u
      cross join lateral public.remaining_credit(u.user_id) b
  ), lvl0 as (
    select b.user_id, b.granted, b.spent, v.level, coalesce(b.low_balance_level <= v.level, false) as is_low,
           o.id as open_id
      from bal b cross join (values (20), (5)) as v(level)
      left join open o on o.user_id = b.user_id and o.level = v.level
  ), lvl as (
    select l.*, bool_or(l.level = 5 and l.is_low and l.open_id is null) over (partition by l.user_id) as fires_5
      from lvl0 l
  ), rearmed as (
    update private.alert_events e set rearmed_at = now()
      from lvl where e.id = lvl.open_id and not lvl.is_low
    returning e.id
  ), fired as (
    insert into private.alert_events (user_id, level, granted, spent, remaining, delivery_status)
    select l.user_id, l.level, l.granted, l.spent, l.granted - l.spent,
           case when l.level = 20 and l.fires_5 then 'superseded' else 'pending' end
      from lvl l
     where l.is_low and l.open_id is null
    on conflict (user_id, level) where rearmed_at is null do nothing
    returning id
  )
  select count(*) into v_fired from fired;
  return v_fired;
end
$$;

-- Where alerts go: a vault secret named alert_webhook_url when present (operators can change it without a
-- redeploy; the tests point it at a local receiver), else the ALERT_WEBHOOK_URL function secret.
create function private.alert_webhook_url() returns text
language sql stable security definer set search_path = '' as $$
  select s.decrypted_secret from vault.decrypted_secrets s where s.name = 'alert_webhook_url' order by s.created_at desc limit 1
$$;

-- A delivery queue's pending rows (alerts here, notification emails in 20261202000740) are marked skipped
-- with p_reason. Dynamic SQL on the table and status column its callers name (constants), so it is security
-- invoker: called directly it may do no more than its caller may; the security-definer skip functions call it.
create function private.skip_pending(p_queue regclass, p_status_column text, p_reason text, out skipped integer)
language plpgsql volatile security invoker set search_path = '' as $$
begin
  execute format('update %1$s set %2$I = ''skipped'', last_error = left($1, 500), locked_until = null
                   where %2$I = ''pending''', p_queue, p_status_column)
    using p_reason;
  get diagnostics skipped = row_count;
end
$$;

-- No webhook configured: pending alerts are marked skipped (kept as a record, never sent later in a flood).
create function private.skip_alert_deliveries(p_reason text) returns integer
language sql volatile security definer set search_path = '' as $$
  select private.skip_pending('private.alert_events', 'delivery_status', p_reason)
$$;

-- The due rows of a delivery queue (alerts here, notification emails in 20261202000740), leased to one run
-- for p_lease_seconds: pending, next_attempt_at reached and no live lease, lowest id first, SKIP LOCKED so
-- overlapping runs never take the same row. p_queue is a null of the queue table's row type
-- (null::private.alert_events): it names the table, and the leased rows come back as updated, of that type.
-- Security invoker, as private.skip_pending: the security-definer claim functions run it with their constants.
create function private.lease_due(p_queue anyelement, p_id_column text, p_status_column text, p_limit integer,
                                  p_lease_seconds integer)
returns setof anyelement language plpgsql volatile security invoker set search_path = '' as $$
begin
  return query execute format(
    'with due as (
       select q.%2$I from %1$s q
        where q.%3$I = ''pending'' and q.next_attempt_at <= now() and (q.locked_until is null or q.locked_until < now())
        order by q.%2$I limit $1 for update skip locked
     )
     update %1$s q set locked_until = now() + make_interval(secs => $2) from due where q.%2$I = due.%2$I
     returning q.*', pg_typeof(p_queue), p_id_column, p_status_column)
    using p_limit, p_lease_seconds;
end
$$;

-- Alerts due for delivery, leased to one run (SKIP LOCKED: overlapping runs never send one twice).
create function private.claim_alert_deliveries(p_limit integer default null, p_lease_seconds integer default 60)
returns table (alert_id bigint, user_id uuid, email text, level integer, granted numeric, spent numeric, remaining numeric,
               crossed_at timestamptz, attempts integer, remaining_percent numeric)
language sql volatile security definer set search_path = '' as $$
  select c.id, c.user_id, u.email::text, c.level, c.granted, c.spent, c.remaining, c.crossed_at, c.attempts,
         public.percent_left(c.remaining, c.granted)
    from private.lease_due(null::private.alert_events, 'id', 'delivery_status',
                           coalesce(p_limit, private.setting_numeric('alert_batch_size')::integer), p_lease_seconds) c
    left join auth.users u on u.id = c.user_id
   order by c.id
$$;

-- The next state of a row of a delivery queue (alerts here, notification emails in 20261202000740) after
-- one run's p_tries attempts at it: p_done_status when it was delivered (next_attempt_at null: unchanged);
-- else given up ('failed') after <p_queue>_max_attempts attempts in all, or at once when p_final, and
-- otherwise 'pending' again after an exponential backoff (private.backoff).
create function private.delivery_outcome(p_queue text, p_attempts integer, p_tries integer, p_done_status text,
                                         p_final boolean default false)
returns table (attempts integer, status text, next_attempt_at timestamptz)
language sql stable security definer set search_path = '' as $$
  select t.n,
         case when p_done_status is not null then p_done_status
              when p_final or t.n >= private.setting_numeric(p_queue || '_max_attempts') then 'failed'
              else 'pending' end,
         case when p_done_status is null then now() + private.backoff(p_queue, t.n) end
    from (select p_attempts + greatest(p_tries, 1) as n) t
$$;

-- The outcome of delivering one alert (p_tries = HTTP attempts made in this run): undelivered alerts back
-- off and are given up after alert_max_attempts.
create function private.finish_alert_delivery(p_alert_id bigint, p_delivered boolean, p_tries integer, p_error text default null)
returns text language sql volatile security definer set search_path = '' as $$
  update private.alert_events e
     set (attempts, delivery_status, next_attempt_at) = (
           select o.attempts, o.status, coalesce(o.next_attempt_at, e.next_attempt_at)
             from private.delivery_outcome('alert', e.attempts, p_tries, case when p_delivered then 'delivered' end) o),
         locked_until = null, last_error = case when p_delivered then null else left(p_error, 500) end,
         delivered_at = case when p_delivered then now() end
   where e.id = p_alert_id and e.delivery_status = 'pending'
  returning e.delivery_status
$$;

-- Alerts still to deliver or given up, for operators (service_role only).
create view public.admin_alerts as
select e.id as alert_id, e.user_id, e.level, e.remaining, e.granted, e.crossed_at, e.rearmed_at, e.delivery_status,
       e.attempts, e.last_error, e.next_attempt_at, e.delivered_at
  from private.alert_events e;
revoke all on table public.admin_alerts from public, anon, authenticated, service_role;
grant select on table public.admin_alerts to service_role;

-- The dashboard banner is public.my_account.low_balance_level (migration 20261202000900), by the same rule.

revoke execute on all functions in schema private from public, anon, authenticated;
grant execute on all functions in schema private to service_role;
