-- Prices per currency (issue 14). A plan keeps its credit in USD (LiteLLM spends USD); what it costs is a
-- price per currency, in that currency's Paystack subunits. The operator enables currencies, picks one
-- default and sets prices (npm run admin -- currencies | prices | merchant-name; the private.* functions
-- below). Facts and their sources: README, "Prices and currencies".
--
-- Paystack takes every amount in subunits, "the base amount multiplied by 100", XOF included although it
-- has no subunit (fractions are ignored): https://paystack.com/docs/api/#supported-currency. So exponent
-- is 2 for all eight currencies, and whole_units marks those priced in whole units only (XOF; RWF has no
-- minor unit in ISO 4217 either). min_subunits is Paystack's transaction minimum from the same table.

create table public.currencies (
  code text primary key check (code ~ '^[A-Z]{3}$'),
  name text not null,
  exponent integer not null check (exponent between 0 and 4),
  whole_units boolean not null default false,
  min_subunits bigint not null check (min_subunits > 0),
  enabled boolean not null default false,
  is_default boolean not null default false,
  -- Paystack's initialize channels; empty: Paystack shows what the merchant's dashboard enables.
  channels text[] not null default '{}'
    check (channels <@ array['card', 'bank', 'ussd', 'mobile_money', 'bank_transfer', 'qr']),
  sort_order integer not null default 0,
  check (enabled or not is_default)
);
create unique index currencies_one_default on public.currencies (is_default) where is_default;
alter table public.currencies enable row level security;
create policy "enabled currencies are public" on public.currencies for select to anon, authenticated using (enabled);
revoke all on table public.currencies from public, anon, authenticated, service_role;
grant select on table public.currencies to anon, authenticated, service_role;

insert into public.currencies (code, name, exponent, whole_units, min_subunits, enabled, is_default, sort_order) values
  ('USD', 'US Dollar', 2, false, 200, true, true, 1),
  ('NGN', 'Nigerian Naira', 2, false, 5000, false, false, 2),
  ('GHS', 'Ghanaian Cedi', 2, false, 10, false, false, 3),
  ('KES', 'Kenyan Shilling', 2, false, 300, false, false, 4),
  ('ZAR', 'South African Rand', 2, false, 100, false, false, 5),
  ('XOF', 'West African CFA Franc', 2, true, 100, false, false, 6),
  -- Not in Paystack's table of minimums when this was written: one whole unit until the operator sets it.
  ('EGP', 'Egyptian Pound', 2, false, 100, false, false, 7),
  ('RWF', 'Rwandan Franc', 2, true, 100, false, false, 8)
on conflict (code) do nothing;

-- Exactly one default at the end of every transaction (the unique index allows at most one; moving the
-- default is two updates, so the "at least one" half waits for commit).
create function private.check_one_default_currency() returns trigger
language plpgsql set search_path = '' as $$
begin
  if (select count(*) from public.currencies c where c.is_default) <> 1 then
    raise exception 'exactly one currency must be the default (an enabled one)'
      using errcode = '23514', hint = 'no_default_currency';
  end if;
  return null;
end
$$;
create constraint trigger currencies_one_default_check after insert or update or delete on public.currencies
  deferrable initially deferred for each row execute function private.check_one_default_currency();

-- Checkouts and payments are in an enabled-or-once-enabled currency (their rows lock the deal).
alter table public.checkouts add constraint checkouts_currency_fkey foreign key (currency) references public.currencies (code);
alter table public.payments add constraint payments_currency_fkey foreign key (currency) references public.currencies (code);

create table public.plan_prices (
  plan text not null references public.plans (code),
  currency text not null references public.currencies (code),
  -- checkouts and payments hold subunits as integer: a price must fit.
  amount_subunits bigint not null check (amount_subunits > 0 and amount_subunits <= 2147483647),
  active boolean not null default true,
  fx_rate numeric check (fx_rate > 0), -- local currency per USD, when the price was derived from the USD one
  updated_at timestamptz not null default now(),
  primary key (plan, currency)
);
create index plan_prices_currency_idx on public.plan_prices (currency);
alter table public.plan_prices enable row level security;
create policy "active prices are public" on public.plan_prices for select to anon, authenticated using (active);
revoke all on table public.plan_prices from public, anon, authenticated, service_role;
grant select on table public.plan_prices to anon, authenticated, service_role;

-- Today's plans become their USD prices. plans.price_subunits stays the plan's price in its own currency
-- (USD), kept equal to that plan_prices row by the trigger below: it is the USD value of a pack whose
-- local price has no exchange rate (the dashboard's "You saved" is in USD).
insert into public.plan_prices (plan, currency, amount_subunits)
select code, currency, price_subunits from public.plans
on conflict do nothing;

-- Subunits as the exact decimal in major units: (150050, 2) -> 1500.50.
create function private.subunits_text(p_subunits bigint, p_exponent integer) returns text
language sql immutable security definer set search_path = '' as $$
  select round(p_subunits::numeric / (10::numeric ^ p_exponent), p_exponent)::text
$$;

-- Why a price is not acceptable for its currency (null: fine): Paystack's minimum, whole units.
create function private.price_problem(p_currency text, p_amount_subunits bigint) returns text
language sql stable security definer set search_path = '' as $$
  select case
    when c.code is null then 'unknown currency ' || coalesce(p_currency, 'null')
    when p_amount_subunits < c.min_subunits
      then format('%s %s is below Paystack''s minimum of %s %s', private.subunits_text(p_amount_subunits, c.exponent),
                  c.code, private.subunits_text(c.min_subunits, c.exponent), c.code)
    when c.whole_units and p_amount_subunits % (10::numeric ^ c.exponent) <> 0
      then format('%s %s: %s is priced in whole units only', private.subunits_text(p_amount_subunits, c.exponent),
                  c.code, c.code)
  end
  from (select 1) one left join public.currencies c on c.code = p_currency
$$;

create function private.check_plan_price() returns trigger
language plpgsql set search_path = '' as $$
declare
  v_problem text := private.price_problem(new.currency, new.amount_subunits);
begin
  if new.active and v_problem is not null then
    raise exception '%', v_problem using errcode = '23514', hint = 'invalid_price';
  end if;
  -- The plan's own-currency price follows (see above).
  update public.plans p set price_subunits = new.amount_subunits
   where p.code = new.plan and p.currency = new.currency and p.price_subunits <> new.amount_subunits;
  new.updated_at := now();
  return new;
end
$$;
create trigger plan_prices_check before insert or update on public.plan_prices
  for each row execute function private.check_plan_price();

-- A currency's rules changing (minimum, whole units) must not leave an active price it refuses.
create function private.check_currency_prices() returns trigger
language plpgsql set search_path = '' as $$
declare
  v_problem text;
begin
  select private.price_problem(pp.currency, pp.amount_subunits) into v_problem
    from public.plan_prices pp where pp.currency = new.code and pp.active
     and private.price_problem(pp.currency, pp.amount_subunits) is not null
   limit 1;
  if v_problem is not null then
    raise exception 'an active price would be refused: %', v_problem using errcode = '23514', hint = 'invalid_price';
  end if;
  return new;
end
$$;
create trigger currencies_check_prices after update of min_subunits, whole_units, exponent on public.currencies
  for each row execute function private.check_currency_prices();

-- What the dashboard lists: active plans x enabled currencies x active prices. credit is USD.
create view public.prices with (security_invoker = true) as
select pl.code as plan, pl.name, pp.currency, pp.amount_subunits, c.exponent,
       round(pp.amount_subunits::numeric / (10::numeric ^ c.exponent), c.exponent) as amount,
       case when c.whole_units then 0 else c.exponent end as fraction_digits,
       pl.credit, c.channels, c.is_default, pl.sort_order
  from public.plans pl
  join public.plan_prices pp on pp.plan = pl.code and pp.active
  join public.currencies c on c.code = pp.currency and c.enabled
 where pl.active;
revoke all on table public.prices from public, anon, authenticated, service_role;
grant select on table public.prices to anon, authenticated, service_role;

-- A user's currency: their last checkout's, while it is still enabled, else the operator's default.
-- Security invoker, in public like public.remaining_credit: the my_currency view runs as the reader (RLS:
-- a user sees only their own checkouts, so asking about someone else gives the default).
create function public.preferred_currency(p_user_id uuid) returns text
language sql stable security invoker set search_path = '' as $$
  select coalesce(
    (select c.code
       from (select co.currency from public.checkouts co where co.user_id = p_user_id
              order by co.created_at desc, co.reference limit 1) last
       join public.currencies c on c.code = last.currency and c.enabled),
    (select d.code from public.currencies d where d.is_default))
$$;
revoke execute on function public.preferred_currency(uuid) from public, anon;
grant execute on function public.preferred_currency(uuid) to authenticated, service_role;

create view public.my_currency with (security_invoker = true) as
select c.code as currency, c.exponent
  from public.currencies c
 where c.code = public.preferred_currency((select auth.uid()));
revoke all on table public.my_currency from public, anon, authenticated, service_role;
grant select on table public.my_currency to authenticated, service_role;

-- Its settings (merchant_name) are rows of private.settings, inserted in 20261126000100.

-- ---------------------------------------------------------------- the operator's changes (admin CLI)
-- Each raises with a hint naming what is wrong; nothing is changed then.

-- Enables or disables a currency; optionally makes it the default, replaces its channels (an empty array:
-- Paystack decides) or its minimum (major units).
create function private.set_currency(p_code text, p_enabled boolean, p_default boolean default false,
                                     p_channels text[] default null, p_min numeric default null)
returns setof public.currencies
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_cur public.currencies;
  v_bad text;
  v_min numeric; -- p_min in subunits
begin
  select * into v_cur from public.currencies c where c.code = upper(p_code) for update;
  if v_cur.code is null then
    raise exception 'unknown currency %: Paystack''s are %', p_code,
      (select string_agg(c.code, ', ' order by c.sort_order) from public.currencies c) using hint = 'unknown_currency';
  end if;
  if not p_enabled and p_default then
    raise exception 'a disabled currency cannot be the default' using hint = 'invalid_default';
  end if;
  if not p_enabled and v_cur.is_default then
    raise exception '% is the default currency: make another one the default first', v_cur.code
      using hint = 'invalid_default';
  end if;
  select string_agg(ch, ', ') into v_bad from unnest(p_channels) ch
   where ch not in ('card', 'bank', 'ussd', 'mobile_money', 'bank_transfer', 'qr');
  if v_bad is not null then
    raise exception 'unknown channel(s) %: use card, bank, ussd, mobile_money, bank_transfer, qr', v_bad
      using hint = 'invalid_channel';
  end if;
  v_min := p_min * (10::numeric ^ v_cur.exponent);
  if v_min is not null and (v_min <= 0 or v_min <> trunc(v_min)) then
    raise exception 'minimum % is not a positive amount of % with at most % decimals', p_min, v_cur.code, v_cur.exponent
      using hint = 'invalid_amount';
  end if;
  if p_default then
    update public.currencies c set is_default = false where c.is_default and c.code <> v_cur.code;
  end if;
  update public.currencies c
     set enabled = p_enabled,
         is_default = p_default or (c.is_default and p_enabled),
         channels = case when p_channels is null then c.channels
                         else coalesce((select array_agg(distinct ch order by ch) from unnest(p_channels) ch), '{}')
                    end,
         min_subunits = coalesce(v_min::bigint, c.min_subunits)
   where c.code = v_cur.code;
  return query select * from public.currencies c where c.code = v_cur.code;
end
$$;

-- Sets one plan's price in one currency (major units, exact), active; p_fx_rate records the rate it came from.
create function private.set_price(p_plan text, p_currency text, p_amount numeric, p_fx_rate numeric default null)
returns setof public.plan_prices
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_cur public.currencies;
  v_subunits numeric;
begin
  if not exists (select 1 from public.plans pl where pl.code = p_plan) then
    raise exception 'unknown plan %: the plans are %', p_plan,
      (select string_agg(pl.code, ', ' order by pl.sort_order) from public.plans pl) using hint = 'unknown_plan';
  end if;
  select * into v_cur from public.currencies c where c.code = upper(p_currency);
  if v_cur.code is null then
    raise exception 'unknown currency %', p_currency using hint = 'unknown_currency';
  end if;
  v_subunits := p_amount * (10::numeric ^ v_cur.exponent);
  if p_amount is null or p_amount <= 0 or v_subunits <> trunc(v_subunits) then
    raise exception '% is not a positive amount of % with at most % decimals', p_amount, v_cur.code, v_cur.exponent
      using hint = 'invalid_amount';
  end if;
  if v_subunits > 2147483647 then
    raise exception '% % is larger than a price can be', p_amount, v_cur.code using hint = 'invalid_amount';
  end if;
  insert into public.plan_prices as pp (plan, currency, amount_subunits, active, fx_rate)
  values (p_plan, v_cur.code, v_subunits::bigint, true, p_fx_rate)
  on conflict (plan, currency) do update
    set amount_subunits = excluded.amount_subunits, active = true, fx_rate = excluded.fx_rate;
  return query select * from public.plan_prices pp where pp.plan = p_plan and pp.currency = v_cur.code;
end
$$;

-- Local prices from the USD prices at an exchange rate the operator enters (nothing here fetches rates):
-- USD price x rate, rounded up. The rate is recorded on each price.
create function private.derive_prices(
  p_currency text,
  p_rate numeric, -- local units per USD
  p_round numeric default null -- round up to a multiple of this, in major units; null: the currency's smallest unit
) returns table (plan text, usd_subunits bigint, amount_subunits bigint, fx_rate numeric)
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_cur public.currencies;
  v_unit numeric; -- subunits per unit
  v_step numeric; -- in subunits
  r record;
begin
  select * into v_cur from public.currencies c where c.code = upper(p_currency);
  if v_cur.code is null or v_cur.code = 'USD' then
    raise exception 'cannot derive % prices from USD ones', coalesce(p_currency, 'null')
      using hint = 'unknown_currency';
  end if;
  if p_rate is null or p_rate <= 0 then
    raise exception 'the rate must be a positive number of % per USD', v_cur.code using hint = 'invalid_amount';
  end if;
  v_unit := 10::numeric ^ v_cur.exponent;
  v_step := coalesce(p_round * v_unit, case when v_cur.whole_units then v_unit else 1 end);
  if v_step <= 0 or v_step <> trunc(v_step) or (v_cur.whole_units and v_step % v_unit <> 0) then
    raise exception 'cannot round % prices to steps of %', v_cur.code, p_round using hint = 'invalid_amount';
  end if;
  for r in select pp.plan, pp.amount_subunits from public.plan_prices pp
            where pp.currency = 'USD' and pp.active order by pp.plan loop
    -- USD subunits -> USD -> local major units -> local subunits, rounded up to the step.
    perform private.set_price(r.plan, v_cur.code,
                              ceil(r.amount_subunits::numeric / 100 * p_rate * v_unit / v_step) * v_step / v_unit,
                              p_rate);
  end loop;
  return query select pp.plan, usd.amount_subunits, pp.amount_subunits, pp.fx_rate
                 from public.plan_prices pp
                 join public.plan_prices usd on usd.plan = pp.plan and usd.currency = 'USD' and usd.active
                where pp.currency = v_cur.code order by pp.plan;
end
$$;

-- The checkout locks the deal (issue 14): currency, price (subunits and exponent), credit (USD), channels
-- and the exchange rate of the price, at the moment the user starts paying. The payment is verified
-- against that row only, so a price or plan changed (or deactivated) after the checkout never changes
-- what a paid checkout buys; a payment in another currency is a recorded rejection (currency_mismatch).
--
-- A signed-in user's checkout for a plan in a currency (null: public.preferred_currency). The amount
-- always comes from the active price, never from the client. Raises with hint unknown_plan, unknown_user,
-- unknown_currency, currency_disabled or no_price.
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

create function private.set_merchant_name(p_name text) returns text
language plpgsql volatile security definer set search_path = '' as $$
begin
  if p_name is null or length(trim(p_name)) not between 1 and 100 then
    raise exception 'the merchant name must be 1 to 100 characters' using hint = 'invalid_name';
  end if;
  update private.settings set value = to_jsonb(trim(p_name)) where key = 'merchant_name';
  return trim(p_name);
end
$$;

revoke execute on all functions in schema private from public, anon, authenticated;
grant execute on all functions in schema private to service_role;
