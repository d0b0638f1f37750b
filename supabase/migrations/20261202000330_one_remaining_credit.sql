-- One definition of a user's remaining credit, used by every view, trigger, alert and batch:
-- granted = the ledger total; spent = public.key_spend over all the user's keys (retired ones included,
-- a fresh callback hint counted); remaining = granted - spent; low_balance_level = 5 or 20 while
-- remaining * 100 <= granted * level (exact numerics, granted > 0), else null.
--
-- It lives in public, security invoker, like public.key_spend: the dashboard's views run as the reader
-- (RLS), so they can only call a function the reader may execute, and nothing in schema private is
-- executable by users. As invoker it reads only what the caller may read: a user asking about someone
-- else gets their own RLS-filtered nothing (0 granted), never another user's numbers.
-- No SET clause, so the planner inlines it into the calling query (a SET makes every call a separate
-- execution: 20x slower in the alert trigger a reconcile batch fires for 1000 keys); every name in it is
-- schema-qualified, and as invoker it never runs with more rights than its caller.
-- The share of what was granted that is left, in percent to one decimal (0 when nothing was granted; never
-- below 0): the dashboard's gauge and the alert texts.
create function public.percent_left(p_remaining numeric, p_granted numeric) returns numeric
language sql immutable as $$
  select case when p_granted > 0 then round(greatest(p_remaining, 0) / p_granted * 100, 1) else 0 end
$$;
revoke execute on function public.percent_left(numeric, numeric) from public, anon;
grant execute on function public.percent_left(numeric, numeric) to authenticated, service_role;

create function public.remaining_credit(p_user_id uuid)
returns table (granted numeric, spent numeric, remaining numeric, remaining_percent numeric, low_balance_level integer)
language sql stable security invoker as $$
  select b.granted, b.spent, b.granted - b.spent, public.percent_left(b.granted - b.spent, b.granted),
         case when b.granted <= 0 then null::integer
              when (b.granted - b.spent) * 100 <= b.granted * 5 then 5
              when (b.granted - b.spent) * 100 <= b.granted * 20 then 20 end
    from (select coalesce((select sum(l.amount) from public.credit_ledger l where l.user_id = p_user_id), 0) as granted,
                 coalesce((select sum(public.key_spend(k)) from public.api_keys k where k.user_id = p_user_id), 0) as spent) b
$$;
revoke execute on function public.remaining_credit(uuid) from public, anon;
grant execute on function public.remaining_credit(uuid) to authenticated, service_role;

create or replace view public.my_account with (security_invoker = true) as
select p.id as user_id,
       p.email,
       b.granted,
       coalesce(g.purchased, 0) as purchased,
       coalesce(lots.paid, 0) as paid,
       b.spent,
       b.remaining,
       coalesce(lots.cost_of_spend, 0) as cost_of_spend,
       b.spent - coalesce(lots.cost_of_spend, 0) as savings,
       b.remaining_percent,
       live.last_synced_at,
       -- Stale after 3 missed one-minute reconcile cycles (a key not yet synced counts from its activation).
       (live.id is not null and live.status = 'active'
         and coalesce(live.last_synced_at, live.activated_at) < now() - interval '3 minutes') as stale,
       -- The low-balance banner: the same rule and numbers as the alerts (public.remaining_credit).
       b.low_balance_level
  from public.profiles p
  cross join lateral public.remaining_credit(p.id) b
  left join lateral (select sum(l.amount) filter (where l.kind in ('purchase', 'refund', 'dispute_reversal')) as purchased
                       from public.credit_ledger l where l.user_id = p.id) g on true
  left join lateral (select sum(ml.cost) as paid, sum(ml.cost_of_used) as cost_of_spend
                       from public.my_lots ml where ml.user_id = p.id) lots on true
  left join lateral (select k.id, k.status, k.activated_at, greatest(k.spend_observed_at, c.last_finished_at) as last_synced_at
                       from public.api_keys k left join public.reconcile_chunks c on c.chunk = k.reconcile_chunk
                      where k.user_id = p.id and k.status <> 'retired' limit 1) live on true;

-- The alert rule (20261126001000) on public.remaining_credit: low at 20 while its level is 20 or 5, at 5
-- while it is 5.
create or replace function private.evaluate_low_balance(p_user_ids uuid[]) returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_fired integer;
begin
  if p_user_ids is null or cardinality(p_user_ids) = 0 then
    return 0;
  end if;
  with bal as (
    select u.user_id, b.granted, b.spent, b.low_balance_level
      from (select distinct x.user_id from unnest(p_user_ids) as x(user_id)) u
      cross join lateral public.remaining_credit(u.user_id) b
  ), lvl0 as (
    select b.user_id, b.granted, b.spent, v.level,
           coalesce(b.low_balance_level <= v.level, false) as is_low,
           exists (select 1 from private.alert_events e
                    where e.user_id = b.user_id and e.level = v.level and e.rearmed_at is null) as is_open
      from bal b cross join (values (20), (5)) as v(level)
  ), lvl as (
    select l.*, bool_or(l.level = 5 and l.is_low and not l.is_open) over (partition by l.user_id) as fires_5
      from lvl0 l
  ), rearmed as (
    update private.alert_events e set rearmed_at = now()
      from lvl
     where e.user_id = lvl.user_id and e.level = lvl.level and e.rearmed_at is null and not lvl.is_low
    returning e.id
  ), fired as (
    insert into private.alert_events (user_id, level, granted, spent, remaining, delivery_status)
    select l.user_id, l.level, l.granted, l.spent, l.granted - l.spent,
           case when l.level = 20 and l.fires_5 then 'superseded' else 'pending' end
      from lvl l
     where l.is_low and not l.is_open
    on conflict (user_id, level) where rearmed_at is null do nothing
    returning id
  )
  select count(*) into v_fired from fired;
  return v_fired;
end
$$;

-- Spend moving (reconcile, a callback hint, late spend of a retired key), a key retired, a status change.
create or replace function private.low_balance_after_key_update() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  perform private.evaluate_low_balance(array(
    select distinct n.user_id from new_rows n join old_rows o on o.id = n.id
     where n.spend is distinct from o.spend or n.retired_spend is distinct from o.retired_spend
        or n.hinted_spend is distinct from o.hinted_spend or n.status is distinct from o.status));
  return null;
end
$$;

-- Alerts due for delivery (20261126001000), with the percentage of the credit left at the crossing.
drop function private.claim_alert_deliveries(integer, integer);
create function private.claim_alert_deliveries(p_limit integer default null, p_lease_seconds integer default 60)
returns table (alert_id bigint, user_id uuid, email text, level integer, granted numeric, spent numeric, remaining numeric,
               crossed_at timestamptz, attempts integer, remaining_percent numeric)
language sql volatile security definer set search_path = '' as $$
  with due as (
    select e.id from private.alert_events e
     where e.delivery_status = 'pending' and e.next_attempt_at <= now() and (e.locked_until is null or e.locked_until < now())
     order by e.id
     limit coalesce(p_limit, private.setting_numeric('alert_batch_size')::integer)
     for update skip locked
  ), claimed as (
    update private.alert_events e set locked_until = now() + make_interval(secs => p_lease_seconds)
      from due where e.id = due.id
    returning e.*
  )
  select c.id, c.user_id, u.email::text, c.level, c.granted, c.spent, c.remaining, c.crossed_at, c.attempts,
         public.percent_left(c.remaining, c.granted)
    from claimed c left join auth.users u on u.id = c.user_id
   order by c.id
$$;

-- Operator credit adjustments (20261126001100): the user lock first, and the remaining credit it reports
-- is public.remaining_credit's.
create or replace function private.adjust_credit(p_user_id uuid, p_amount numeric, p_reason text, p_created_by text,
                                                 p_idempotency_key text default null)
returns table (ledger_id bigint, is_new boolean, key_id uuid, granted numeric, remaining numeric, target_max_budget numeric)
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_max numeric := private.setting_numeric('admin_adjust_max_usd');
  v_key_id uuid;
  v_ledger_id bigint;
  v_existing public.credit_ledger;
  v_idem text := coalesce(nullif(trim(p_idempotency_key), ''), 'adjust:' || gen_random_uuid());
begin
  if not exists (select 1 from auth.users u where u.id = p_user_id) then
    raise exception 'no user %', p_user_id using errcode = 'P0001', hint = 'unknown_user';
  end if;
  if p_amount is null or p_amount = 0 or p_amount <> round(p_amount, 2) then
    raise exception 'the amount must be a non-zero number of USD with at most 2 decimals (got %)', coalesce(p_amount::text, 'none')
      using errcode = 'P0001', hint = 'invalid_amount';
  end if;
  if abs(p_amount) > v_max then
    raise exception 'the amount % is larger than admin_adjust_max_usd (%)', abs(p_amount), v_max
      using errcode = 'P0001', hint = 'invalid_amount';
  end if;
  if coalesce(length(trim(p_reason)), 0) < 3 then
    raise exception 'a reason is required (at least 3 characters)' using errcode = 'P0001', hint = 'reason_required';
  end if;
  if coalesce(length(trim(p_created_by)), 0) = 0 then
    raise exception 'who makes the change is required' using errcode = 'P0001', hint = 'created_by_required';
  end if;

  perform private.lock_user(p_user_id);
  select k.id into v_key_id from public.api_keys k where k.user_id = p_user_id and k.status <> 'retired' for update;
  if p_amount < 0 and (select b.granted from public.remaining_credit(p_user_id) b) + p_amount < 0
     and not exists (select 1 from public.credit_ledger l where l.idempotency_key = v_idem) then
    raise exception 'deducting % would take the user''s ledger total below 0 (it is %)', -p_amount,
      (select b.granted from public.remaining_credit(p_user_id) b)
      using errcode = 'P0001', hint = 'invalid_amount';
  end if;
  insert into public.credit_ledger (user_id, kind, amount, idempotency_key, reason, created_by)
  values (p_user_id, 'adjustment', p_amount, v_idem, trim(p_reason), left(trim(p_created_by), 200))
  on conflict (idempotency_key) do nothing
  returning id into v_ledger_id;
  if v_ledger_id is null then
    select * into v_existing from public.credit_ledger l where l.idempotency_key = v_idem;
    if v_existing.user_id <> p_user_id or v_existing.amount <> p_amount or v_existing.kind <> 'adjustment' then
      raise exception 'idempotency key % was already used for a different change', v_idem
        using errcode = 'P0001', hint = 'idempotency_conflict';
    end if;
    v_ledger_id := v_existing.id;
  else
    perform private.mark_budget_changed(p_user_id);
  end if;
  return query
  select v_ledger_id, v_existing.id is null, v_key_id, b.granted, b.remaining,
         case when v_key_id is not null then private.key_target_budget(v_key_id) end
    from public.remaining_credit(p_user_id) b;
end
$$;

revoke execute on all functions in schema private from public, anon, authenticated;
grant execute on all functions in schema private to service_role;
