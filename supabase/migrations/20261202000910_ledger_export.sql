-- The ledger as a statement (issue 16): the user's "Download CSV" (web/src/ledger.ts) and the operator's
-- export (npm run admin -- export ledger) read this one view. Columns are stable and documented in README
-- ("Ledger CSV"); amounts are exact numerics (text in the CSV, never floats).
--
-- Entries: every ledger row (signup_grant, purchase, refund, dispute_reversal, adjustment, promo,
-- promo_expiry), plus one 'spend' entry per UTC day with usage (public.my_daily_usage, negative), plus at
-- most one 'spend_pending' entry (now) for spend not yet in a daily total (a fresh callback hint, a retired
-- key's settled spend): so the last balance_usd is exactly public.remaining_credit's remaining, which
-- my_account shows. balance_usd is the running sum in (entry_at, seq) order; a day's spend is placed at the
-- end of that day.
create view public.my_ledger with (security_invoker = true) as
with ledger as (
  select l.user_id, l.created_at as entry_at, 0 as tie, l.id as entry_id, l.kind as entry_type,
         case when l.kind = 'purchase' then coalesce(pl.name, pm.plan_code) || ' pack'
              else coalesce(l.reason, l.kind) end as description,
         coalesce(pm.reference, pr.code) as reference, l.amount as amount_usd,
         pm.currency,
         case when l.kind = 'purchase' then (pm.amount_subunits::numeric / (10::numeric ^ pm.exponent))::numeric(12, 2) end
           as amount_paid
    from public.credit_ledger l
    left join public.payments pm on pm.id = l.payment_id
    left join public.plans pl on pl.code = pm.plan_code
    left join public.promo_redemptions pr on pr.ledger_id = l.id or pr.expiry_ledger_id = l.id
), daily as (
  select d.user_id, (d.day + 1)::timestamp at time zone 'utc' - interval '1 microsecond' as entry_at, 1 as tie,
         null::bigint as entry_id, 'spend'::text as entry_type, 'usage on ' || d.day as description, null::text as reference,
         -d.spend as amount_usd, null::text as currency, null::numeric as amount_paid
    from public.my_daily_usage d
   where d.spend <> 0
), pending as (
  select u.user_id, now() as entry_at, 2 as tie, null::bigint, 'spend_pending'::text,
         'usage not yet in a daily total', null::text, -(b.spent - u.daily), null::text, null::numeric
    from (select p.id as user_id, coalesce((select sum(d.spend) from public.my_daily_usage d where d.user_id = p.id), 0) as daily
            from public.profiles p) u
    cross join lateral public.remaining_credit(u.user_id) b
   where b.spent <> u.daily
), entries as (
  select * from ledger union all select * from daily union all select * from pending
)
select e.user_id,
       row_number() over w as seq,
       (e.entry_at at time zone 'utc')::date as date,
       e.entry_at, e.entry_type, e.description, e.reference, e.amount_usd,
       e.currency, e.amount_paid,
       sum(e.amount_usd) over w as balance_usd
  from entries e
window w as (partition by e.user_id order by e.entry_at, e.tie, e.entry_id rows unbounded preceding);

revoke all on table public.my_ledger from public, anon, authenticated, service_role;
grant select on table public.my_ledger to authenticated, service_role;
