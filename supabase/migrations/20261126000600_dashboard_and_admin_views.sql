-- Views the dashboard reads (security_invoker: the caller's RLS applies, so a user sees only their rows)
-- and admin views (service_role only).

-- What a key has spent, as the user should see it now: the pulled spend (LiteLLM's truth, lagging by its
-- batch-write interval plus a reconcile cycle), or the callback's hint when that is larger. A hint is a
-- lower bound of the real cumulative spend (spend seen at the request's auth + that request's cost), so
-- taking the larger of two lower bounds never counts anything twice. Hints older than 10 minutes are
-- ignored: by then the pull has caught up, and it stays the final word. Retired keys: frozen spend.
create function public.key_spend(k public.api_keys) returns numeric
language sql stable set search_path = '' as $$
  select greatest(coalesce(k.retired_spend, k.spend), case when k.hinted_at > now() - interval '10 minutes' then k.hinted_spend end)
$$;
revoke all on function public.key_spend(public.api_keys) from public, anon, authenticated, service_role;
grant execute on function public.key_spend(public.api_keys) to authenticated, service_role;

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
                 coalesce((select sum(public.key_spend(k)) from public.api_keys k where k.user_id = p_user_id), 0) as spent
          -- offset 0 keeps b a subquery: pulled up, each use of b.granted or b.spent above would be its own
          -- ledger and keys scan (five of each per user; bench:reconcile's low-balance evaluation)
          offset 0) b
$$;
revoke execute on function public.remaining_credit(uuid) from public, anon;
grant execute on function public.remaining_credit(uuid) to authenticated, service_role;

-- public.my_lots (lots, the cost of what was used) and public.my_account, which reads it, are in
-- 20261202000900_promo_credit.sql: promo credit is spent first, so the lots need the promo redemptions.

-- The user's live key. The full key value is shown only to its owner (RLS on api_keys).
create view public.my_key with (security_invoker = true) as
select k.id as key_id, k.user_id, k.key_value, 'sk-...' || right(k.key_value, 4) as key_masked, k.key_alias,
       k.status, k.sync_status, k.blocked, k.litellm_max_budget as max_budget, public.key_spend(k) as spend,
       k.created_at, k.activated_at, k.last_sync_error, k.rotating
  from public.api_keys k
 where k.status <> 'retired';

-- Payments in their own currency. A plan deactivated since (RLS hides it from users) still names the
-- payment by its code. amount: major units (every Paystack exponent is 2, so numeric(12, 2) is exact).
create view public.my_payments with (security_invoker = true) as
select pm.id, pm.user_id, pm.reference, pm.plan_code, coalesce(pl.name, pm.plan_code) as plan_name, pm.amount_subunits,
       pm.currency, (pm.amount_subunits::numeric / (10::numeric ^ pm.exponent))::numeric(12, 2) as amount, pm.credit,
       pm.refunded_subunits, pm.status, pm.paid_at, pm.created_at, pm.charged_subunits, pm.exponent, pm.channel,
       pm.fx_rate
  from public.payments pm left join public.plans pl on pl.code = pm.plan_code;

-- Daily spend from snapshot deltas (spend is cumulative on LiteLLM; a drop, which should not happen
-- without budget_duration, counts as 0).
create view public.my_daily_usage with (security_invoker = true) as
with deltas as (
  select s.user_id, s.observed_at,
         greatest(s.spend - coalesce(lag(s.spend) over (partition by s.key_id order by s.observed_at, s.id), 0), 0) as delta
    from public.spend_snapshots s
)
select user_id, (observed_at at time zone 'utc')::date as day, sum(delta) as spend
  from deltas group by user_id, (observed_at at time zone 'utc')::date;

-- One receipt per payment: what was paid (price and, with fees passed on, what was charged), in which
-- currency and how, the USD credit it bought, refunds (subunits of the charge) and the credit they and any
-- lost dispute took back (USD, from the ledger), the exchange rate of a derived price, the seller's name.
create view public.my_receipts with (security_invoker = true) as
select pm.user_id, pm.reference, pm.paid_at, pm.created_at, pm.plan_code, coalesce(pl.name, pm.plan_code) as plan_name,
       pm.currency, pm.exponent, pm.amount_subunits, pm.charged_subunits, pm.channel, pm.credit, pm.refunded_subunits,
       coalesce(rv.reversed, 0) as credit_reversed, pm.fx_rate, pm.status, pm.merchant_name
  from public.payments pm
  left join public.plans pl on pl.code = pm.plan_code
  left join lateral (select -sum(l.amount) as reversed from public.credit_ledger l
                      where l.payment_id = pm.id and l.kind in ('refund', 'dispute_reversal')) rv on true;
revoke all on table public.my_receipts from public, anon, authenticated, service_role;
grant select on table public.my_receipts to authenticated, service_role;

revoke all on table public.my_key, public.my_payments, public.my_daily_usage from public, anon, authenticated, service_role;
grant select on table public.my_key, public.my_payments, public.my_daily_usage to authenticated, service_role;

-- Admin views: service_role only (and postgres). They live in public so the admin CLI and REST can read
-- them with the service key; anon and authenticated have no grant.
create view public.admin_sync_failures as
select k.id as key_id, k.user_id, k.status, k.sync_status, k.last_sync_error, k.last_sync_at, k.flag, k.flag_detail
  from public.api_keys k
 where k.sync_status = 'failed' or k.status = 'failed' or k.flag is not null;

create view public.admin_drift as
select k.id as key_id, k.user_id, k.litellm_max_budget, private.key_target_budget(k.id) as target_max_budget, k.sync_status
  from public.api_keys k
 where k.status = 'active' and k.litellm_max_budget is distinct from private.key_target_budget(k.id);

create view public.admin_dead_jobs as
select j.id as job_id, j.key_id, j.user_id, j.attempts, j.last_error, j.created_at, j.finished_at
  from private.provisioning_jobs j where j.status = 'dead';

revoke all on table public.admin_sync_failures, public.admin_drift, public.admin_dead_jobs
  from public, anon, authenticated, service_role;
grant select on table public.admin_sync_failures, public.admin_drift, public.admin_dead_jobs
  to service_role;
