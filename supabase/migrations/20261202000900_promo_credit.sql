-- Promotional credit (issue 16): promo codes an operator creates, redeemed once per user, with an optional
-- expiry (a date, or a number of days after redemption) and a redemption limit.
--
-- Ledger: a redemption is a 'promo' row (+amount); at expiry the unused remainder is taken back by one
-- 'promo_expiry' row (-remainder). The ledger total, so public.remaining_credit and
-- private.key_target_budget (unchanged: one definition each), fall by exactly what expired, and the usual
-- versioned push (push-budget through pg_net; reconcile's repair if that call is lost) lowers max_budget.
--
-- Consumption order (stated in README, "Promotional credit"): spend goes first to open promo credit,
-- earliest-expiring first (no expiry last), then to the other lots (sign-up, purchases, free
-- adjustments) oldest first. Paid credit never expires. Promo credit only pays for spend made after its
-- redemption: each redemption keeps a checkpoint (settled_used, settled_spent), moved for all of the
-- user's open redemptions whenever one is redeemed or expires, and spend since the checkpoint is placed
-- over the open ones in order (public.my_promo_lots, the one definition). Spend LiteLLM reports after a
-- promo expired (requests in flight, its batch-write lag, the sweep's one-minute cadence) is paid by the
-- lots that are still open.

-- A ledger row may now be a promo grant or a promo expiry (the constraints of 20261126000200, widened).
alter table public.credit_ledger drop constraint credit_ledger_kind_check;
alter table public.credit_ledger add constraint credit_ledger_kind_check
  check (kind in ('signup_grant', 'purchase', 'refund', 'dispute_reversal', 'adjustment', 'promo', 'promo_expiry'));
alter table public.credit_ledger drop constraint credit_ledger_check1;
alter table public.credit_ledger add constraint credit_ledger_check1
  check ((kind in ('signup_grant', 'purchase', 'adjustment', 'promo') and (kind = 'adjustment' or amount > 0))
      or (kind in ('refund', 'dispute_reversal') and amount < 0 and payment_id is not null)
      or (kind = 'promo_expiry' and amount < 0 and payment_id is null));

-- Its settings (promo_*) are rows of private.settings, inserted in 20261126000100.

create table private.promo_codes (
  code text primary key check (code ~ '^[A-Z0-9][A-Z0-9_-]{2,39}$'),
  amount numeric(12, 2) not null check (amount > 0),
  -- The credit expires at the end of this UTC day, or this many days after its redemption; neither: never.
  expires_on date,
  expires_after_days integer check (expires_after_days > 0),
  redemption_limit integer check (redemption_limit > 0), -- null: no limit
  redemptions integer not null default 0,
  active boolean not null default true,
  note text,
  created_by text not null,
  created_at timestamptz not null default now(),
  check (expires_on is null or expires_after_days is null),
  check (redemption_limit is null or redemptions <= redemption_limit)
);

-- One row per redemption. Users read their own (RLS): the dashboard's lots need expires_at.
create table public.promo_redemptions (
  id bigint generated always as identity primary key,
  code text not null references private.promo_codes (code),
  user_id uuid not null references auth.users (id),
  ledger_id bigint not null unique references public.credit_ledger (id),
  amount numeric(12, 2) not null check (amount > 0),
  redeemed_at timestamptz not null default now(),
  expires_at timestamptz,
  -- The checkpoint: what of this credit was used when the user's spend was settled_spent.
  settled_used numeric not null default 0 check (settled_used >= 0 and settled_used <= amount),
  settled_spent numeric not null,
  expired_at timestamptz,
  expiry_ledger_id bigint unique references public.credit_ledger (id),
  unique (code, user_id)
);
create index promo_redemptions_user_idx on public.promo_redemptions (user_id);
create index promo_redemptions_due_idx on public.promo_redemptions (expires_at) where expired_at is null;

alter table public.promo_redemptions enable row level security;
create policy "own promo redemptions" on public.promo_redemptions for select to authenticated
  using ((select auth.uid()) = user_id);
revoke all on table public.promo_redemptions from public, anon, authenticated, service_role;
revoke all on sequence public.promo_redemptions_id_seq from public, anon, authenticated, service_role;
grant select on table public.promo_redemptions to authenticated, service_role;

-- Promo lots and what of each is used (the one definition of promo placement). An expired redemption
-- keeps what it had used at expiry (its credit net of the expiry row); an open one adds the spend since
-- its checkpoint, placed over the user's open redemptions earliest-expiring first.
create view public.my_promo_lots with (security_invoker = true) as
with r as (
  select r.*, r.amount + coalesce(x.amount, 0) as credit, -coalesce(x.amount, 0) as expired
    from public.promo_redemptions r
    left join public.credit_ledger x on x.id = r.expiry_ledger_id
), open_lot as (
  select r.id, greatest(b.spent - r.settled_spent, 0) as fresh, r.amount - r.settled_used as room,
         coalesce(sum(r.amount - r.settled_used) over (partition by r.user_id order by r.expires_at nulls last, r.id
                                                       rows between unbounded preceding and 1 preceding), 0) as room_before
    from r cross join lateral public.remaining_credit(r.user_id) b
   where r.expired_at is null
)
select r.user_id, r.ledger_id as lot_id, r.id as redemption_id, r.code, r.redeemed_at, r.expires_at, r.expired_at,
       r.amount, r.credit, r.expired,
       r.settled_used + coalesce(least(greatest(o.fresh - o.room_before, 0), o.room), 0) as used
  from r left join open_lot o on o.id = r.id;

-- Lots in consumption order (spend_order): promo lots first (public.my_promo_lots), then the others oldest
-- first (product rules, "Savings"). The others: the sign-up credit and free adjustments cost 0; each
-- purchase holds its credit net of refunds / lost disputes and costs its USD value (the pack's, locked at
-- checkout) in proportion to the credit left of it (a lot of unknown USD value costs 0). Deductions
-- (negative adjustments) are consumed first from the other lots, then the spend promo credit did not pay.
create view public.my_lots with (security_invoker = true) as
with lot as (
  select l.user_id, l.id as lot_id, l.kind, l.created_at, l.payment_id, pm.plan_code, pm.usd_value, pm.credit as bought,
         l.amount + coalesce((select sum(r.amount) from public.credit_ledger r
                               where l.payment_id is not null and r.payment_id = l.payment_id and r.id <> l.id), 0)
           as credit
    from public.credit_ledger l
    left join public.payments pm on pm.id = l.payment_id
   where l.amount > 0 and l.kind <> 'promo'
), priced as (
  select lot.*, case when lot.payment_id is null then 0::numeric
                     else coalesce(round(lot.usd_value * lot.credit / lot.bought, 2), 0) end as cost
    from lot
), usage as (
  select u.user_id,
         coalesce((select -sum(d.amount) from public.credit_ledger d
                    where d.user_id = u.user_id and d.amount < 0 and d.payment_id is null and d.kind <> 'promo_expiry'), 0)
           as deducted,
         coalesce((select sum(public.key_spend(k)) from public.api_keys k where k.user_id = u.user_id), 0)
           - coalesce((select sum(p.used) from public.my_promo_lots p where p.user_id = u.user_id), 0) as spent
    from (select distinct user_id from lot) u
), placed as (
  select priced.*, usage.deducted, usage.spent,
         coalesce(sum(priced.credit) over (partition by priced.user_id order by priced.created_at, priced.lot_id
                                           rows between unbounded preceding and 1 preceding), 0) as before,
         row_number() over (partition by priced.user_id order by priced.created_at, priced.lot_id) as n
    from priced join usage using (user_id)
), promo as (
  select p.*, row_number() over (partition by p.user_id order by p.expired_at is null, p.expires_at nulls last, p.lot_id) as n,
         count(*) over (partition by p.user_id) as promos
    from public.my_promo_lots p
)
select user_id, lot_id, kind, plan_code, created_at, credit, cost,
       least(greatest(deducted + spent - before, 0), credit) - least(greatest(deducted - before, 0), credit) as used,
       credit - least(greatest(deducted + spent - before, 0), credit) as remaining,
       case when credit > 0 then cost / credit else 0 end as cost_per_credit,
       case when credit > 0
            then round((least(greatest(deducted + spent - before, 0), credit)
                        - least(greatest(deducted - before, 0), credit)) * cost / credit, 6)
            else 0 end as cost_of_used,
       null::timestamptz as expires_at, 0::numeric as expired,
       n + coalesce((select count(*) from public.promo_redemptions r where r.user_id = placed.user_id), 0) as spend_order
  from placed
union all
select user_id, lot_id, 'promo', null, redeemed_at, credit, 0::numeric, used, credit - used, 0::numeric, 0::numeric,
       expires_at, expired, n
  from promo;

-- The account the dashboard shows: granted, spent and remaining from public.remaining_credit (20261126000600);
-- paid and cost_of_spend, so the savings, from my_lots (promo lots cost 0).
create view public.my_account with (security_invoker = true) as
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

revoke all on table public.my_promo_lots, public.my_lots, public.my_account from public, anon, authenticated, service_role;
grant select on table public.my_promo_lots, public.my_lots, public.my_account to authenticated, service_role;

-- Moves the checkpoint of every open redemption of the user to now (call under private.lock_user): what
-- each has used so far is fixed, so a redemption or expiry changes nothing already placed.
create function private.settle_promos(p_user_id uuid) returns void
language sql volatile security definer set search_path = '' as $$
  update public.promo_redemptions r set settled_used = p.used, settled_spent = b.spent
    from public.my_promo_lots p, public.remaining_credit(p_user_id) b
   where p.redemption_id = r.id and r.user_id = p_user_id and r.expired_at is null
$$;

-- An operator creates a code (npm run admin -- promo create). Codes are upper case.
create function private.create_promo_code(p_code text, p_amount numeric, p_expires_on date, p_expires_after_days integer,
                                          p_redemption_limit integer, p_note text, p_created_by text)
returns private.promo_codes
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_row private.promo_codes;
begin
  if upper(trim(coalesce(p_code, ''))) !~ '^[A-Z0-9][A-Z0-9_-]{2,39}$' then
    raise exception 'a code is 3 to 40 letters, digits, _ or - (got %)', coalesce(p_code, 'none')
      using errcode = 'P0001', hint = 'invalid_code';
  end if;
  if p_amount is null or p_amount <= 0 or p_amount <> round(p_amount, 2)
     or p_amount > private.setting_numeric('promo_max_usd') then
    raise exception 'the amount must be a positive number of USD with at most 2 decimals, at most promo_max_usd (%)',
      private.setting_numeric('promo_max_usd') using errcode = 'P0001', hint = 'invalid_amount';
  end if;
  if p_expires_on is not null and p_expires_after_days is not null then
    raise exception 'give an expiry date or a number of days, not both' using errcode = 'P0001', hint = 'invalid_expiry';
  end if;
  if p_expires_on < (now() at time zone 'utc')::date or p_expires_after_days <= 0 then
    raise exception 'the expiry is in the past' using errcode = 'P0001', hint = 'invalid_expiry';
  end if;
  if p_redemption_limit <= 0 then
    raise exception 'the redemption limit must be positive' using errcode = 'P0001', hint = 'invalid_limit';
  end if;
  insert into private.promo_codes (code, amount, expires_on, expires_after_days, redemption_limit, note, created_by)
  values (upper(trim(p_code)), p_amount, p_expires_on, p_expires_after_days, p_redemption_limit, p_note,
          left(coalesce(nullif(trim(p_created_by), ''), 'operator'), 200))
  on conflict (code) do nothing
  returning * into v_row;
  if v_row.code is null then
    raise exception 'the code % exists already', upper(trim(p_code)) using errcode = 'P0001', hint = 'code_exists';
  end if;
  return v_row;
end
$$;

-- An operator stops a code (npm run admin -- promo disable): no new redemptions; credit already redeemed stays.
create function private.disable_promo_code(p_code text) returns private.promo_codes
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_row private.promo_codes;
begin
  update private.promo_codes c set active = false where c.code = upper(trim(coalesce(p_code, ''))) returning * into v_row;
  if v_row.code is null then
    raise exception 'no promo code %', left(coalesce(p_code, ''), 40) using errcode = 'P0001', hint = 'unknown_code';
  end if;
  return v_row;
end
$$;

-- A user redeems a code (redeem-promo). outcome: 'redeemed'; 'rate_limited' (retry_after_seconds says when
-- to try again); or a refusal: 'unknown_code' (none, or disabled), 'code_expired', 'code_used_up',
-- 'already_redeemed'. Refusals are answers, not exceptions, so the attempt still counts against the rate
-- limit (guessing codes is what the limit is for) and nothing else changes. Locks: the user
-- (private.lock_user, so one user's two concurrent redemptions run one after the other and the second finds
-- the first), then the code's row (so the redemption limit holds under concurrency).
create function private.redeem_promo(p_user_id uuid, p_code text)
returns table (outcome text, retry_after_seconds integer, code text, amount numeric, expires_at timestamptz,
               key_id uuid, target_max_budget numeric, remaining numeric)
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_wait integer;
  v_code private.promo_codes;
  v_refusal text;
  v_ledger_id bigint;
  v_expires timestamptz;
  v_key_id uuid;
begin
  v_wait := private.take_rate_limit('promo:user:' || p_user_id, private.setting_numeric('promo_redeem_limit')::integer,
                                    private.setting_numeric('promo_redeem_window_seconds')::integer);
  if v_wait = 0 then
    perform private.lock_user(p_user_id);
    select * into v_code from private.promo_codes c where c.code = upper(trim(coalesce(p_code, ''))) for update;
    v_refusal := case when v_code.code is null or not v_code.active then 'unknown_code'
                      when v_code.expires_on < (now() at time zone 'utc')::date then 'code_expired'
                      when exists (select 1 from public.promo_redemptions r where r.code = v_code.code and r.user_id = p_user_id)
                        then 'already_redeemed'
                      when v_code.redemptions >= v_code.redemption_limit then 'code_used_up' end;
  end if;
  if v_wait > 0 or v_refusal is not null then
    return query select coalesce(v_refusal, 'rate_limited'), v_wait, v_code.code, null::numeric, null::timestamptz,
                        null::uuid, null::numeric, null::numeric;
    return;
  end if;

  perform private.settle_promos(p_user_id);
  v_expires := case when v_code.expires_on is not null then (v_code.expires_on + 1)::timestamp at time zone 'utc'
                    when v_code.expires_after_days is not null then now() + make_interval(days => v_code.expires_after_days) end;
  insert into public.credit_ledger (user_id, kind, amount, idempotency_key, reason, created_by)
  values (p_user_id, 'promo', v_code.amount, 'promo:' || v_code.code || ':' || p_user_id, 'promo code ' || v_code.code, 'user')
  returning id into v_ledger_id;
  insert into public.promo_redemptions (code, user_id, ledger_id, amount, expires_at, settled_spent)
  select v_code.code, p_user_id, v_ledger_id, v_code.amount, v_expires, b.spent from public.remaining_credit(p_user_id) b;
  update private.promo_codes c set redemptions = c.redemptions + 1 where c.code = v_code.code;
  select k.id into v_key_id from public.api_keys k where k.user_id = p_user_id and k.status <> 'retired';
  perform private.mark_budget_changed(p_user_id);
  return query
  select 'redeemed'::text, 0, v_code.code, v_code.amount, v_expires, v_key_id,
         case when v_key_id is not null then private.key_target_budget(v_key_id) end, b.remaining
    from public.remaining_credit(p_user_id) b;
end
$$;

-- The expiry sweep (cron, every minute): at most p_limit due redemptions per call, each in the lock order
-- (user, then the redemption), re-checked under the lock so two sweeps expire each exactly once: the
-- checkpoint moves to now, the unused remainder becomes one 'promo_expiry' row (none when all was used), the
-- key is marked for a push and push-budget is asked through pg_net (reconcile repairs it if that is lost).
-- Returns how many redemptions it expired.
create function private.expire_promos(p_limit integer default 500) returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_due record;
  v_left numeric;
  v_ledger_id bigint;
  v_done integer := 0;
begin
  for v_due in select r.id, r.user_id from public.promo_redemptions r
                where r.expired_at is null and r.expires_at <= now() order by r.expires_at, r.id limit p_limit loop
    perform private.lock_user(v_due.user_id);
    perform 1 from public.promo_redemptions r where r.id = v_due.id and r.expired_at is null for update;
    continue when not found;
    perform private.settle_promos(v_due.user_id);
    select r.amount - r.settled_used into v_left from public.promo_redemptions r where r.id = v_due.id;
    v_ledger_id := null;
    if v_left > 0 then
      insert into public.credit_ledger (user_id, kind, amount, idempotency_key, reason)
      select v_due.user_id, 'promo_expiry', -v_left, 'promo_expiry:' || v_due.id, 'promo code ' || r.code || ' expired'
        from public.promo_redemptions r where r.id = v_due.id
      returning id into v_ledger_id;
    end if;
    update public.promo_redemptions r set expired_at = now(), expiry_ledger_id = v_ledger_id where r.id = v_due.id;
    if v_ledger_id is not null then
      perform private.mark_budget_changed(v_due.user_id);
      perform private.invoke_function('push-budget', jsonb_build_object('user_id', v_due.user_id, 'skip_if_synced', true));
    end if;
    v_done := v_done + 1;
  end loop;
  return v_done;
end
$$;

-- The operator's list (npm run admin -- promo list).
create view public.admin_promo_codes as
select c.code, c.amount, c.expires_on, c.expires_after_days, c.redemption_limit, c.redemptions, c.active, c.note,
       c.created_by, c.created_at
  from private.promo_codes c;
revoke all on table public.admin_promo_codes from public, anon, authenticated, service_role;
grant select on table public.admin_promo_codes to service_role;

select cron.schedule('promo-expiry', '* * * * *', $$
  select private.expire_promos(500)
   where exists (select 1 from public.promo_redemptions r where r.expired_at is null and r.expires_at <= now())
$$);

revoke execute on all functions in schema private from public, anon, authenticated;
grant execute on all functions in schema private to service_role;
