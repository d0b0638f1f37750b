-- Auto top-up (issue 15): when a user's remaining credit (public.remaining_credit, the banner's number)
-- falls below their threshold, their saved card (20261202000710) is charged for the pack they chose, up to
-- a monthly cap; users without a reusable card get a low-balance notification with a one-tap link to buy
-- the same pack instead.
--
-- Once per crossing, as the low-balance alerts (20261126001000): a crossing stays open while the balance
-- is below the threshold (one open crossing per user: a unique partial index), so reconcile runs and spend
-- callbacks that see the same low balance add nothing; it re-arms when the balance is back at or above the
-- threshold. A failed charge closes its crossing, so the next movement of spend below the threshold tries
-- again; 2 consecutive failures (auto_topup_max_failures) switch auto top-up off.
--
-- An attempt locks its deal like a checkout: it IS a public.checkouts row (private.create_checkout: plan,
-- currency, price, credit, USD value), its reference is the checkout's, so the webhook or the auto-topup
-- function's verify credits it through private.apply_payment exactly once, whichever comes first. The
-- user's checkout rate limits (private.start_checkout) are not taken: the system starts these.
--
-- Charged at most once: at most one attempt in flight per user (a unique partial index); the auto-topup
-- function claims an attempt with a lease and records 'charging' (committed) before it calls Paystack; an
-- attempt found 'charging' after its lease ran out (the run died) is only ever verified, never charged
-- again, and Paystack itself refuses a second charge with the same reference.
--
-- Detection is statement triggers on credit_ledger inserts and api_keys spend updates (shared with the
-- low-balance alerts: private.after_balance_change below), restricted to users whose auto top-up is on:
-- reconcile's batches of thousands of keys pay one semi-join with this table.
--
-- Its settings (auto_topup_*) are rows of private.settings, inserted in 20261126000100.

create table public.auto_topup_settings (
  user_id uuid primary key default auth.uid() references auth.users (id) on delete cascade,
  enabled boolean not null default true,
  threshold_usd numeric(12, 2) not null check (threshold_usd > 0 and threshold_usd <= 100000),
  plan_code text not null references public.plans (code),
  currency text not null references public.currencies (code),
  monthly_max_count integer check (monthly_max_count between 1 and 100),
  monthly_max_usd numeric(12, 2) check (monthly_max_usd > 0),
  -- Why it switched itself off (failures, the cap, the pack gone); cleared when the user turns it on.
  disabled_reason text,
  consecutive_failures integer not null default 0 check (consecutive_failures >= 0),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  constraint auto_topup_has_cap check (monthly_max_count is not null or monthly_max_usd is not null)
);
create index auto_topup_settings_enabled_idx on public.auto_topup_settings (user_id) where enabled;

create table private.topup_crossings (
  id bigint generated always as identity primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  threshold_usd numeric not null,
  remaining numeric not null,
  crossed_at timestamptz not null default now(),
  rearmed_at timestamptz,
  outcome text not null check (outcome in ('attempt', 'in_flight', 'notified', 'disabled'))
);
create unique index topup_crossings_one_open on private.topup_crossings (user_id) where rearmed_at is null;

create table private.auto_topup_attempts (
  id bigint generated always as identity primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  crossing_id bigint not null references private.topup_crossings (id),
  reference text not null unique references public.checkouts (reference),
  plan_code text not null,
  currency text not null,
  amount_subunits integer not null,
  usd_value numeric(12, 2),
  status text not null default 'queued' check (status in ('queued', 'charging', 'pending', 'succeeded', 'failed')),
  charge_tries integer not null default 0,
  verify_tries integer not null default 0,
  next_run_at timestamptz not null default now(),
  locked_until timestamptz,
  failure_reason text,
  created_at timestamptz not null default now(), updated_at timestamptz not null default now(), settled_at timestamptz
);
create unique index auto_topup_attempts_one_in_flight on private.auto_topup_attempts (user_id)
  where status in ('queued', 'charging', 'pending');
create index auto_topup_attempts_due_idx on private.auto_topup_attempts (next_run_at)
  where status in ('queued', 'charging', 'pending');
create index auto_topup_attempts_user_month_idx on private.auto_topup_attempts (user_id, created_at);
revoke all on table private.topup_crossings, private.auto_topup_attempts from public, anon, authenticated, service_role;
grant select on table private.topup_crossings, private.auto_topup_attempts to service_role;

-- The user writes their own settings from the dashboard (insert, update, delete); what the system keeps
-- (disabled_reason, consecutive_failures) is not writable by them.
alter table public.auto_topup_settings enable row level security;
create policy "own auto top-up" on public.auto_topup_settings for select to authenticated
  using ((select auth.uid()) = user_id);
create policy "set own auto top-up" on public.auto_topup_settings for insert to authenticated
  with check ((select auth.uid()) = user_id);
create policy "change own auto top-up" on public.auto_topup_settings for update to authenticated
  using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);
create policy "remove own auto top-up" on public.auto_topup_settings for delete to authenticated
  using ((select auth.uid()) = user_id);
revoke all on table public.auto_topup_settings from public, anon, authenticated, service_role;
grant select, delete on table public.auto_topup_settings to authenticated;
grant insert (user_id, enabled, threshold_usd, plan_code, currency, monthly_max_count, monthly_max_usd),
      update (enabled, threshold_usd, plan_code, currency, monthly_max_count, monthly_max_usd)
  on table public.auto_topup_settings to authenticated;
grant select on table public.auto_topup_settings to service_role;

-- The pack must be buyable (an active plan with an active price in an enabled currency) when it is chosen
-- or when auto top-up is turned on; turning it on clears the reason it switched off and the failure count,
-- and closes an open crossing so the next fall below the threshold starts afresh.
create function private.check_auto_topup_settings() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  new.updated_at := now();
  if tg_op = 'INSERT' or new.plan_code is distinct from old.plan_code or new.currency is distinct from old.currency
     or (new.enabled and not old.enabled) then
    if not exists (select 1 from public.plans p where p.code = new.plan_code and p.active) then
      raise exception 'unknown or inactive plan: %', new.plan_code using errcode = 'P0001', hint = 'unknown_plan';
    end if;
    if not exists (select 1 from public.currencies c where c.code = new.currency and c.enabled) then
      raise exception 'currency % is not enabled', new.currency using errcode = 'P0001', hint = 'currency_disabled';
    end if;
    if not exists (select 1 from public.plan_prices pp
                    where pp.plan = new.plan_code and pp.currency = new.currency and pp.active) then
      raise exception 'plan % has no price in %', new.plan_code, new.currency using errcode = 'P0001', hint = 'no_price';
    end if;
  end if;
  if new.enabled and (tg_op = 'INSERT' or not old.enabled) then
    new.disabled_reason := null;
    new.consecutive_failures := 0;
    update private.topup_crossings set rearmed_at = now() where user_id = new.user_id and rearmed_at is null;
  end if;
  return new;
end
$$;
create trigger auto_topup_settings_check before insert or update on public.auto_topup_settings
  for each row execute function private.check_auto_topup_settings();

-- Switches a user's auto top-up off with a reason, and tells them (once per event key).
create function private.disable_auto_topup(p_user_id uuid, p_reason text, p_event_key text) returns void
language plpgsql volatile security definer set search_path = '' as $$
begin
  update public.auto_topup_settings set enabled = false, disabled_reason = left(p_reason, 300), updated_at = now()
   where user_id = p_user_id and enabled;
  if found then
    perform private.notify(p_user_id, 'auto_topup_disabled', p_event_key, 'Auto top-up switched off',
                           'Auto top-up is off: ' || p_reason || '. Turn it on again in Billing.', '#/billing');
  end if;
end
$$;

-- Whether one more top-up of p_usd would pass the user's monthly cap (calendar month, UTC): attempts not
-- failed this month count (in flight and succeeded).
create function private.auto_topup_cap_reached(p_settings public.auto_topup_settings, p_usd numeric) returns boolean
language sql stable security definer set search_path = '' as $$
  select coalesce(count(*) >= p_settings.monthly_max_count, false)
      or coalesce(coalesce(sum(a.usd_value), 0) + coalesce(p_usd, 0) > p_settings.monthly_max_usd, false)
    from private.auto_topup_attempts a
   where a.user_id = p_settings.user_id and a.status <> 'failed'
     and a.created_at >= date_trunc('month', now() at time zone 'UTC') at time zone 'UTC'
$$;

-- One crossing's action: a queued attempt (checkout row locked now) for a user with a reusable card, within
-- the cap; the cap or a pack no longer for sale switch auto top-up off; no card: a low-balance notification
-- linking to the same pack. Returns the crossing's outcome.
create function private.start_auto_topup(p_settings public.auto_topup_settings, p_crossing_id bigint) returns text
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_reference text;
  v_checkout public.checkouts;
  v_hint text;
  v_msg text;
begin
  if not exists (select 1 from private.reusable_payment_method(p_settings.user_id)) then
    perform private.notify(p_settings.user_id, 'low_balance', 'topup-threshold:' || p_crossing_id,
      'Low balance',
      'Your remaining credit is below $' || p_settings.threshold_usd || '. Buy the same pack again in one tap.',
      '#/buy?plan=' || p_settings.plan_code || '&currency=' || p_settings.currency);
    return 'notified';
  end if;
  begin
    select c.reference into v_reference
      from private.create_checkout(p_settings.user_id, p_settings.plan_code, p_settings.currency) c;
    select * into v_checkout from public.checkouts c where c.reference = v_reference;
    if private.auto_topup_cap_reached(p_settings, v_checkout.usd_value) then
      raise exception 'monthly cap reached' using errcode = 'P0001', hint = 'monthly_cap';
    end if;
    insert into private.auto_topup_attempts (user_id, crossing_id, reference, plan_code, currency, amount_subunits,
                                             usd_value)
    values (p_settings.user_id, p_crossing_id, v_reference, v_checkout.plan_code, v_checkout.currency,
            v_checkout.amount_subunits, v_checkout.usd_value);
    update public.checkouts set status_reason = 'auto top-up' where reference = v_reference;
    return 'attempt';
  exception when unique_violation then
    return 'in_flight'; -- another attempt of this user is still in flight (its checkout is rolled back)
  when sqlstate 'P0001' then
    get stacked diagnostics v_hint = pg_exception_hint, v_msg = message_text;
    perform private.disable_auto_topup(p_settings.user_id,
      case when v_hint = 'monthly_cap' then 'the monthly cap is reached'
           else 'the chosen pack can no longer be bought (' || coalesce(v_hint, v_msg) || ')' end,
      'crossing:' || p_crossing_id);
    return 'disabled';
  end;
end
$$;

-- The rule, for a set of users (only those with auto top-up on are looked at): below the threshold with no
-- open crossing -> a new crossing and its action; at or above it -> the open crossing re-arms. Kicks the
-- auto-topup function (pg_net, sent after commit) when an attempt was queued. Returns crossings opened.
create function private.evaluate_auto_topup(p_user_ids uuid[]) returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  r record;
  v_crossing bigint;
  v_opened integer := 0;
  v_queued boolean := false;
  v_outcome text;
begin
  if p_user_ids is null or cardinality(p_user_ids) = 0 then
    return 0;
  end if;
  for r in
    select s as settings, b.remaining
      from public.auto_topup_settings s cross join lateral public.remaining_credit(s.user_id) b
     where s.user_id = any (p_user_ids) and s.enabled
     order by s.user_id
  loop
    if r.remaining >= (r.settings).threshold_usd then
      update private.topup_crossings set rearmed_at = now()
       where user_id = (r.settings).user_id and rearmed_at is null;
      continue;
    end if;
    insert into private.topup_crossings (user_id, threshold_usd, remaining, outcome)
    values ((r.settings).user_id, (r.settings).threshold_usd, r.remaining, 'attempt')
    on conflict (user_id) where rearmed_at is null do nothing
    returning id into v_crossing;
    if v_crossing is null then
      continue; -- this crossing was already handled
    end if;
    v_opened := v_opened + 1;
    v_outcome := private.start_auto_topup(r.settings, v_crossing);
    v_queued := v_queued or v_outcome = 'attempt';
    update private.topup_crossings set outcome = v_outcome where id = v_crossing;
  end loop;
  if v_queued then
    perform private.invoke_function('auto-topup', '{"source":"trigger"}'::jsonb);
  end if;
  return v_opened;
end
$$;

-- The triggers of both balance rules, low-balance alerts (private.evaluate_low_balance, 20261126001000) and
-- auto top-up: one function per table event finds the users whose balance moved once and hands them to
-- each rule. Neither rule changes a balance (each reads remaining_credit and writes its own rows), so their
-- order does not matter; auto top-up runs first, as its own trigger did before they were one.
--   credit_ledger inserts: a grant or a purchase re-arms, a refund, reversal or deduction may cross. A credit
--     (amount > 0) can only lift a balance, so for low balance it matters only to a user with an open alert;
--     sign-ups and most purchases skip that evaluation.
--   api_keys updates: spend moving (reconcile, the spend callback's hints), a key retired with its final
--     spend (rotation), a status change; found as a set difference of the transition tables (EXCEPT:
--     hashed, one pass over each). Joining them on id, the planner (no statistics for them) ran a nested
--     loop, 1,000 x 1,000 comparisons per reconcile chunk (issue 18).
-- Auto top-up is skipped outright while nobody has it on; else evaluate_auto_topup keeps the users with it on.
create function private.after_balance_change()
returns trigger language plpgsql security definer set search_path = '' as $$
declare
  v_moved uuid[]; -- users whose balance moved
  v_low uuid[]; -- of those, the ones the low-balance rule looks at
begin
  if tg_table_name = 'credit_ledger' then
    select array_agg(u.user_id),
           array_agg(u.user_id) filter (where u.debited or exists (
             select 1 from private.alert_events e where e.user_id = u.user_id and e.rearmed_at is null))
      into v_moved, v_low
      from (select n.user_id, bool_or(n.amount < 0) as debited from new_rows n group by n.user_id) u;
  else
    v_moved := array(
      select distinct c.user_id from (
        select n.id, n.user_id, n.spend, n.retired_spend, n.hinted_spend, n.status from new_rows n
        except
        select o.id, o.user_id, o.spend, o.retired_spend, o.hinted_spend, o.status from old_rows o) c);
    v_low := v_moved;
  end if;
  if exists (select 1 from public.auto_topup_settings s where s.enabled) then
    perform private.evaluate_auto_topup(v_moved);
  end if;
  perform private.evaluate_low_balance(v_low);
  return null;
end
$$;

create trigger api_keys_balance_change after update on public.api_keys
  referencing old table as old_rows new table as new_rows for each statement execute function private.after_balance_change();
create trigger credit_ledger_balance_change after insert on public.credit_ledger
  referencing new table as new_rows for each statement execute function private.after_balance_change();

-- Attempts due for a run, leased (SKIP LOCKED: overlapping runs never take the same one). A queued attempt
-- is marked 'charging' here, committed before the charge is sent (action 'charge', with the card's code);
-- one still 'charging' after its lease (the run died around the call) or 'pending' is only verified
-- (action 'verify').
create function private.claim_auto_topups(p_limit integer default null)
returns table (attempt_id bigint, reference text, action text, user_id uuid, email text, authorization_code text,
               amount_subunits integer, currency text, plan_code text)
language sql volatile security definer set search_path = '' as $$
  with due as (
    select a.id, a.status from private.auto_topup_attempts a
     where a.status in ('queued', 'charging', 'pending') and a.next_run_at <= now()
       and (a.locked_until is null or a.locked_until < now())
     order by a.next_run_at, a.id
     limit coalesce(p_limit, private.setting_numeric('auto_topup_batch_size')::integer)
     for update skip locked
  ), claimed as (
    update private.auto_topup_attempts a
       set status = case when due.status = 'queued' then 'charging' else a.status end,
           charge_tries = a.charge_tries + (due.status = 'queued')::integer,
           locked_until = now() + make_interval(secs => private.setting_numeric('auto_topup_lease_seconds')::double precision),
           updated_at = now()
      from due where a.id = due.id
    returning a.*, due.status as was
  )
  select c.id, c.reference, case when c.was = 'queued' then 'charge' else 'verify' end, c.user_id, u.email::text,
         case when c.was = 'queued' then (select m.authorization_code from private.reusable_payment_method(c.user_id) m) end,
         c.amount_subunits, c.currency, c.plan_code
    from claimed c left join auth.users u on u.id = c.user_id
   order by c.id
$$;

-- Whether an auto top-up run has work (the cron job asks before calling the function).
create function private.auto_topup_due() returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (select 1 from private.auto_topup_attempts a
                  where a.status in ('queued', 'charging', 'pending') and a.next_run_at <= now() + interval '1 minute'
                    and (a.locked_until is null or a.locked_until < now()))
$$;

-- A failed attempt: recorded with its reason, its checkout marked failed, the user told; its crossing
-- closes (the next movement below the threshold tries again); auto_topup_max_failures in a row switch
-- auto top-up off.
create function private.fail_auto_topup(p_attempt private.auto_topup_attempts, p_reason text) returns text
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_failures integer;
begin
  update private.auto_topup_attempts
     set status = 'failed', failure_reason = left(p_reason, 300), locked_until = null, settled_at = now(),
         updated_at = now()
   where id = p_attempt.id;
  perform private.checkout_failed(p_attempt.reference, 'auto top-up: ' || p_reason);
  update private.topup_crossings set rearmed_at = now() where id = p_attempt.crossing_id and rearmed_at is null;
  update public.auto_topup_settings set consecutive_failures = consecutive_failures + 1, updated_at = now()
   where user_id = p_attempt.user_id
  returning consecutive_failures into v_failures;
  perform private.notify(p_attempt.user_id, 'auto_topup_failed', 'attempt:' || p_attempt.id, 'Auto top-up failed',
                         'We could not charge your saved card: ' || p_reason || '.', '#/billing');
  if v_failures >= private.setting_numeric('auto_topup_max_failures') then
    perform private.disable_auto_topup(p_attempt.user_id, v_failures || ' charges failed in a row',
                                       'failures:' || p_attempt.id);
  end if;
  return 'failed';
end
$$;

-- What a run learned about an attempt (never 'succeeded': that is the payment's own trigger below):
--   'failed'  : declined, insufficient funds, authorization not reusable, no card, a rejected verify;
--   'pending' : Paystack has not decided yet: verify again after a backoff, up to auto_topup_verify_max_tries;
--   'requeue' : verify says Paystack never received the charge (the run died before it was sent, or it
--               was lost on the way): charge again with the SAME reference (Paystack refuses a duplicate).
-- Returns the attempt's status afterwards; an attempt already settled is left as it is.
create function private.auto_topup_result(p_attempt_id bigint, p_result text, p_reason text default null)
returns text language plpgsql volatile security definer set search_path = '' as $$
declare
  v_attempt private.auto_topup_attempts;
begin
  perform private.lock_user((select a.user_id from private.auto_topup_attempts a where a.id = p_attempt_id));
  select * into v_attempt from private.auto_topup_attempts a where a.id = p_attempt_id for update;
  if v_attempt.id is null then
    raise exception 'unknown auto top-up attempt %', p_attempt_id using errcode = 'P0001', hint = 'unknown_attempt';
  end if;
  if v_attempt.status not in ('queued', 'charging', 'pending') then
    return v_attempt.status;
  end if;
  if p_result = 'failed' then
    return private.fail_auto_topup(v_attempt, coalesce(p_reason, 'declined'));
  end if;
  if p_result not in ('pending', 'requeue') then
    raise exception 'unknown result %', p_result using errcode = 'P0001', hint = 'bad_result';
  end if;
  if (p_result = 'pending' and v_attempt.verify_tries + 1 >= private.setting_numeric('auto_topup_verify_max_tries'))
     or (p_result = 'requeue' and v_attempt.charge_tries >= 3) then
    return private.fail_auto_topup(v_attempt, coalesce(p_reason, 'no answer from the card issuer'));
  end if;
  update private.auto_topup_attempts
     set status = case when p_result = 'pending' then 'pending' else 'queued' end,
         verify_tries = verify_tries + (p_result = 'pending')::integer,
         next_run_at = now() + private.backoff('auto_topup', verify_tries + 1), locked_until = null,
         failure_reason = left(p_reason, 300), updated_at = now()
   where id = p_attempt_id
  returning status into v_attempt.status;
  return v_attempt.status;
end
$$;

-- The credit of an attempt's reference (whichever path applied it: the webhook or the function's verify)
-- settles the attempt: succeeded, failures reset, the user told. A late success after the attempt was
-- recorded failed still counts (the ledger is the truth).
create function private.auto_topup_after_payment() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  v_attempt private.auto_topup_attempts;
begin
  update private.auto_topup_attempts a
     set status = 'succeeded', failure_reason = null, locked_until = null, settled_at = now(), updated_at = now()
   where a.reference = new.reference and a.status <> 'succeeded'
  returning * into v_attempt;
  if v_attempt.id is not null then
    update public.auto_topup_settings set consecutive_failures = 0, updated_at = now()
     where user_id = v_attempt.user_id;
    perform private.notify(v_attempt.user_id, 'auto_topup_succeeded', 'attempt:' || v_attempt.id, 'Auto top-up',
                           'Your saved card was charged for ' || new.credit || ' USD of credit.',
                           '#/receipt/' || new.reference);
  end if;
  return null;
end
$$;
create trigger payments_auto_topup after insert on public.payments
  for each row execute function private.auto_topup_after_payment();

-- Every minute: attempts due (queued after a failed kick, pending charges to verify, runs that died).
select private.schedule_sweep('auto-topup', 'auto-topup', 'private.auto_topup_due()');

revoke execute on all functions in schema private from public, anon, authenticated;
grant execute on all functions in schema private to service_role;
