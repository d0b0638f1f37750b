-- The checkout locks the deal (issue 14): currency, price (subunits and exponent), credit (USD), channels
-- and the exchange rate of the price, at the moment the user starts paying. The payment is verified
-- against that row only, so a price or plan changed (or deactivated) after the checkout never changes
-- what a paid checkout buys; a payment in another currency is a recorded rejection (currency_mismatch).

alter table public.checkouts
  add constraint checkouts_currency_fkey foreign key (currency) references public.currencies (code),
  add column exponent integer not null default 2,
  add column channels text[] not null default '{}',
  add column fx_rate numeric check (fx_rate > 0),
  -- What the pack is worth in USD (the dashboard's "You paid" and "You saved"): the price itself in USD,
  -- price / fx_rate for a derived price, else the plan's USD price.
  add column usd_value numeric(12, 2);
alter table public.checkouts alter column exponent drop default;
update public.checkouts set usd_value = amount_subunits::numeric / 100 where currency = 'USD';

alter table public.payments
  add constraint payments_currency_fkey foreign key (currency) references public.currencies (code),
  add column exponent integer not null default 2,
  add column channel text, -- what Paystack reports the customer paid with (verify data.channel)
  add column fx_rate numeric check (fx_rate > 0),
  add column usd_value numeric(12, 2),
  -- The seller's name when the payment was credited: a receipt does not change afterwards.
  add column merchant_name text;
alter table public.payments alter column exponent drop default;
update public.payments set usd_value = amount_subunits::numeric / 100 where currency = 'USD';
update public.payments set merchant_name = private.setting('merchant_name') #>> '{}';
alter table public.payments alter column merchant_name set not null;

-- A signed-in user's checkout for a plan in a currency (null: public.preferred_currency). The amount
-- always comes from the active price, never from the client. Raises with hint unknown_plan, unknown_user,
-- unknown_currency, currency_disabled or no_price.
drop function private.start_checkout(uuid, text, inet);
drop function private.create_checkout(uuid, text);
create function private.create_checkout(p_user_id uuid, p_plan_code text, p_currency text default null)
returns table (reference text, amount_subunits integer, currency text, credit numeric, email text, exponent integer,
               channels text[])
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_plan public.plans;
  v_cur public.currencies;
  v_price public.plan_prices;
  v_ref text := 'lc-' || replace(gen_random_uuid()::text, '-', '');
  v_email text;
  v_code text := coalesce(upper(p_currency), public.preferred_currency(p_user_id));
  v_major numeric;
  v_usd numeric;
begin
  select * into v_plan from public.plans pl where pl.code = p_plan_code and pl.active;
  if v_plan.code is null then
    raise exception 'unknown or inactive plan: %', p_plan_code using errcode = 'P0001', hint = 'unknown_plan';
  end if;
  select u.email into v_email from auth.users u where u.id = p_user_id;
  if v_email is null then
    raise exception 'unknown user' using errcode = 'P0001', hint = 'unknown_user';
  end if;
  select * into v_cur from public.currencies c where c.code = v_code;
  if v_cur.code is null then
    raise exception 'unknown currency: %', p_currency using errcode = 'P0001', hint = 'unknown_currency';
  end if;
  if not v_cur.enabled then
    raise exception 'currency % is not enabled', v_cur.code using errcode = 'P0001', hint = 'currency_disabled';
  end if;
  select * into v_price from public.plan_prices pp
   where pp.plan = v_plan.code and pp.currency = v_cur.code and pp.active;
  if v_price.plan is null then
    raise exception 'plan % has no price in %', v_plan.code, v_cur.code using errcode = 'P0001', hint = 'no_price';
  end if;
  v_major := v_price.amount_subunits::numeric / (10::numeric ^ v_cur.exponent);
  v_usd := case
    when v_cur.code = 'USD' then v_major
    when v_price.fx_rate is not null then round(v_major / v_price.fx_rate, 2)
    when v_plan.currency = 'USD' then v_plan.price_subunits::numeric / 100
  end;
  insert into public.checkouts (reference, user_id, plan_code, amount_subunits, currency, credit, exponent, channels,
                                fx_rate, usd_value)
  values (v_ref, p_user_id, v_plan.code, v_price.amount_subunits, v_cur.code, v_plan.credit, v_cur.exponent,
          v_cur.channels, v_price.fx_rate, v_usd);
  return query select v_ref, v_price.amount_subunits::integer, v_cur.code, v_plan.credit, v_email, v_cur.exponent,
                      v_cur.channels;
end
$$;

-- checkout's one call, as in 20261202000410 (rate limits, open-checkout cap, then create_checkout), with
-- the currency. A bad plan or currency raises and rolls the counting back: bad input changes nothing.
create function private.start_checkout(p_user_id uuid, p_plan_code text, p_ip inet default null,
                                       p_currency text default null)
returns table (outcome text, retry_after_seconds integer, reference text, amount_subunits integer, currency text,
               credit numeric, email text, exponent integer, channels text[])
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_window integer := private.setting_numeric('checkout_window_seconds')::integer;
  v_user_wait integer;
  v_ip_wait integer := 0;
  v_ttl numeric := private.setting_numeric('checkout_open_ttl_seconds');
  v_open integer;
  v_oldest timestamptz;
begin
  v_user_wait := private.take_rate_limit('checkout:user:' || p_user_id,
                                         private.setting_numeric('checkout_user_limit')::integer, v_window);
  if p_ip is not null then
    v_ip_wait := private.take_rate_limit('checkout:ip:' || host(p_ip),
                                         private.setting_numeric('checkout_ip_limit')::integer, v_window);
  end if;
  if v_user_wait > 0 or v_ip_wait > 0 then
    return query select case when v_user_wait > 0 then 'user_rate_limited' else 'ip_rate_limited' end,
                        greatest(v_user_wait, v_ip_wait), null::text, null::integer, null::text, null::numeric,
                        null::text, null::integer, null::text[];
    return;
  end if;

  perform pg_advisory_xact_lock(hashtextextended('checkout:' || p_user_id, 0));
  select count(*), min(c.created_at) into v_open, v_oldest
    from public.checkouts c
   where c.user_id = p_user_id and c.status in ('created', 'initialized')
     and c.created_at > now() - make_interval(secs => v_ttl::double precision);
  if v_open >= private.setting_numeric('checkout_max_open_per_user') then
    return query select 'too_many_open_checkouts'::text,
                        greatest(1, ceil(extract(epoch from v_oldest + make_interval(secs => v_ttl::double precision)
                                                            - now())))::integer,
                        null::text, null::integer, null::text, null::numeric, null::text, null::integer, null::text[];
    return;
  end if;

  return query select 'created'::text, 0, c.reference, c.amount_subunits, c.currency, c.credit, c.email, c.exponent,
                      c.channels
                 from private.create_checkout(p_user_id, p_plan_code, p_currency) c;
end
$$;

-- Apply a charge that Paystack's verify endpoint returned, against the checkout row alone: credited only
-- when the currency is the locked one, requested_amount is exactly the locked price and amount covers
-- it. The plan's current price, currency or active flag no longer matter (the locked deal wins). Exactly
-- once per reference, as before (20261202000300); p_channel is what verify says the customer paid with.
drop function private.apply_payment(text, text, integer, integer, text, text, text, bigint, timestamptz, bigint);
create function private.apply_payment(
  p_reference text,
  p_status text,
  p_amount_subunits integer,
  p_requested_amount_subunits integer,
  p_currency text,
  p_domain text,
  p_expected_domain text,
  p_provider_transaction_id bigint,
  p_paid_at timestamptz,
  p_delivery_id bigint default null,
  p_channel text default null
) returns table (outcome text, reason text, is_new boolean, user_id uuid, key_id uuid, target_max_budget numeric)
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_checkout public.checkouts;
  v_plan_name text;
  v_payment_id bigint;
  v_key_id uuid;
  v_reason text;
begin
  perform private.lock_user((select c.user_id from public.checkouts c where c.reference = p_reference));
  select * into v_checkout from public.checkouts c where c.reference = p_reference for update;
  if v_checkout.reference is null then
    v_reason := 'unknown_reference';
  else
    if exists (select 1 from public.payments pm where pm.provider = 'paystack' and pm.reference = p_reference) then
      select k.id into v_key_id from public.api_keys k where k.user_id = v_checkout.user_id and k.status <> 'retired';
      if p_delivery_id is not null then
        perform private.finish_delivery(p_delivery_id, 'duplicate', 'already credited');
      end if;
      return query select 'duplicate'::text, 'already credited'::text, false, v_checkout.user_id, v_key_id,
                          private.key_target_budget(v_key_id);
      return;
    end if;
    v_reason := case
      when p_status is distinct from 'success' then 'verify_status_' || coalesce(p_status, 'missing')
      when p_domain is distinct from p_expected_domain
        then 'domain_mismatch: ' || coalesce(p_domain, 'missing') || ' payment, ' || p_expected_domain || ' mode'
      when p_currency is distinct from v_checkout.currency
        then 'currency_mismatch: ' || coalesce(p_currency, 'missing') || ' <> ' || v_checkout.currency
      when p_requested_amount_subunits is null then 'requested_amount_missing'
      when p_requested_amount_subunits <> v_checkout.amount_subunits
        then 'amount_mismatch: ' || p_requested_amount_subunits || ' <> ' || v_checkout.amount_subunits
      when p_amount_subunits is null or p_amount_subunits < v_checkout.amount_subunits
        then 'underpaid: charged ' || coalesce(p_amount_subunits::text, 'missing') || ' < '
             || v_checkout.amount_subunits
    end;
  end if;

  if v_reason is not null then
    if v_checkout.reference is not null then
      update public.checkouts set status = 'rejected', status_reason = v_reason, updated_at = now()
       where reference = p_reference and status <> 'paid';
    end if;
    if p_delivery_id is not null then
      perform private.finish_delivery(p_delivery_id, 'rejected', v_reason);
    end if;
    return query select 'rejected'::text, v_reason, false, v_checkout.user_id, null::uuid, null::numeric;
    return;
  end if;

  select k.id into v_key_id from public.api_keys k
   where k.user_id = v_checkout.user_id and k.status <> 'retired' for update;

  insert into public.payments (provider, reference, user_id, plan_code, amount_subunits, charged_subunits, currency,
                               credit, provider_transaction_id, domain, paid_at, exponent, channel, fx_rate, usd_value,
                               merchant_name)
  values ('paystack', p_reference, v_checkout.user_id, v_checkout.plan_code, p_requested_amount_subunits,
          p_amount_subunits, p_currency, v_checkout.credit, p_provider_transaction_id, p_domain, p_paid_at,
          v_checkout.exponent, left(p_channel, 40), v_checkout.fx_rate, v_checkout.usd_value,
          private.setting('merchant_name') #>> '{}')
  on conflict (provider, reference) do nothing
  returning id into v_payment_id;

  if v_payment_id is null then
    return query select 'duplicate'::text, 'already credited'::text, false, v_checkout.user_id, v_key_id,
                        private.key_target_budget(v_key_id);
    return;
  end if;

  select pl.name into v_plan_name from public.plans pl where pl.code = v_checkout.plan_code;
  insert into public.credit_ledger (user_id, kind, amount, payment_id, idempotency_key, reason)
  values (v_checkout.user_id, 'purchase', v_checkout.credit, v_payment_id, 'payment:paystack:' || p_reference,
          coalesce(v_plan_name, v_checkout.plan_code) || ' plan');
  update public.checkouts set status = 'paid', status_reason = null, updated_at = now() where reference = p_reference;
  perform private.mark_budget_changed(v_checkout.user_id);
  if p_delivery_id is not null then
    perform private.finish_delivery(p_delivery_id, 'credited', null);
  end if;
  return query select 'credited'::text, null::text, true, v_checkout.user_id, v_key_id,
                      private.key_target_budget(v_key_id);
end
$$;

-- ---------------------------------------------------------------- what the user sees
-- Payments in their own currency. A plan deactivated since (RLS hides it from users) still names the
-- payment by its code. amount: major units (every Paystack exponent is 2, so numeric(12, 2) is exact).
create or replace view public.my_payments with (security_invoker = true) as
select pm.id, pm.user_id, pm.reference, pm.plan_code, coalesce(pl.name, pm.plan_code) as plan_name, pm.amount_subunits,
       pm.currency, (pm.amount_subunits::numeric / (10::numeric ^ pm.exponent))::numeric(12, 2) as amount, pm.credit,
       pm.refunded_subunits, pm.status, pm.paid_at, pm.created_at, pm.charged_subunits, pm.exponent, pm.channel,
       pm.fx_rate
  from public.payments pm left join public.plans pl on pl.code = pm.plan_code;

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

-- Lots (20261202000310) with the cost in USD whatever the currency paid: the pack's USD value, in
-- proportion to the credit left of it. A lot of unknown USD value costs 0.
create or replace view public.my_lots with (security_invoker = true) as
with lot as (
  select l.user_id, l.id as lot_id, l.kind, l.created_at, l.payment_id, pm.plan_code, pm.usd_value, pm.credit as bought,
         l.amount + coalesce((select sum(r.amount) from public.credit_ledger r
                               where l.payment_id is not null and r.payment_id = l.payment_id and r.id <> l.id), 0)
           as credit
    from public.credit_ledger l
    left join public.payments pm on pm.id = l.payment_id
   where l.amount > 0
), priced as (
  select lot.*, case when lot.payment_id is null then 0::numeric
                     else coalesce(round(lot.usd_value * lot.credit / lot.bought, 2), 0) end as cost
    from lot
), usage as (
  select u.user_id,
         coalesce((select -sum(d.amount) from public.credit_ledger d
                    where d.user_id = u.user_id and d.amount < 0 and d.payment_id is null), 0) as deducted,
         coalesce((select sum(public.key_spend(k)) from public.api_keys k where k.user_id = u.user_id), 0) as spent
    from (select distinct user_id from lot) u
), placed as (
  select priced.*, usage.deducted, usage.spent,
         coalesce(sum(priced.credit) over (partition by priced.user_id order by priced.created_at, priced.lot_id
                                           rows between unbounded preceding and 1 preceding), 0) as before
    from priced join usage using (user_id)
)
select user_id, lot_id, kind, plan_code, created_at, credit, cost,
       least(greatest(deducted + spent - before, 0), credit) - least(greatest(deducted - before, 0), credit) as used,
       credit - least(greatest(deducted + spent - before, 0), credit) as remaining,
       case when credit > 0 then cost / credit else 0 end as cost_per_credit,
       case when credit > 0
            then round((least(greatest(deducted + spent - before, 0), credit)
                        - least(greatest(deducted - before, 0), credit)) * cost / credit, 6)
            else 0 end as cost_of_used
  from placed;

revoke execute on all functions in schema private from public, anon, authenticated;
grant execute on all functions in schema private to service_role;
