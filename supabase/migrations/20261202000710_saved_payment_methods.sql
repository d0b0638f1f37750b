-- Saved payment methods (issue 15): after a verified card payment whose authorization Paystack marks
-- reusable, the card is kept so auto top-up (20261202000720) can charge it again with
-- /transaction/charge_authorization (https://paystack.com/docs/payments/recurring-charges/).
--
-- What the user sees (brand, last4, expiry, bank) is public.payment_methods, readable and deletable by its
-- owner only. What charges the card (the authorization code) and what identifies it (Paystack's
-- authorization.signature: the same card gives the same signature) are in private.payment_method_secrets,
-- which no API role can read. One row per card per user: paying again with the same card refreshes the
-- row (a newer authorization code, a new expiry) instead of adding a second one.
--
-- Mobile money, bank and the other channels come back with reusable false and are never stored.

create table public.payment_methods (
  id bigint generated always as identity primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  channel text not null check (channel = 'card'),
  brand text check (length(brand) <= 40),
  last4 text check (last4 ~ '^[0-9]{4}$'),
  exp_month integer check (exp_month between 1 and 12),
  exp_year integer check (exp_year between 2000 and 2200),
  bank text check (length(bank) <= 100),
  reusable boolean not null,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index payment_methods_user_idx on public.payment_methods (user_id, updated_at desc);

create table private.payment_method_secrets (
  payment_method_id bigint primary key references public.payment_methods (id) on delete cascade,
  user_id uuid not null references auth.users (id) on delete cascade,
  authorization_code text not null check (authorization_code ~ '^AUTH_[A-Za-z0-9]+$'),
  signature text not null check (length(signature) between 1 and 200),
  -- the payment it came from (or was last refreshed by)
  reference text not null,
  unique (user_id, signature)
);
revoke all on table private.payment_method_secrets from public, anon, authenticated, service_role;

-- The user sees and removes their own cards; adding one is only ever done by the payment path below.
alter table public.payment_methods enable row level security;
create policy "own payment methods" on public.payment_methods for select to authenticated
  using ((select auth.uid()) = user_id);
create policy "remove own payment methods" on public.payment_methods for delete to authenticated
  using ((select auth.uid()) = user_id);
revoke all on table public.payment_methods from public, anon, authenticated, service_role;
revoke all on sequence public.payment_methods_id_seq from public, anon, authenticated, service_role;
grant select, delete on table public.payment_methods to authenticated;
grant select on table public.payment_methods to service_role;

-- Stores (or refreshes) the card of a credited payment, from the authorization object of Paystack's
-- verify answer (https://paystack.com/docs/api/transaction/#verify). Only a payment we credited counts
-- (its user is the payment's), only a card, only reusable with a code and a signature; anything else
-- returns null and stores nothing. Safe to call twice (duplicate webhook, verify and webhook at once).
create function private.save_payment_method(p_reference text, p_authorization jsonb) returns bigint
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_user uuid;
  v_code text := p_authorization ->> 'authorization_code';
  v_sig text := p_authorization ->> 'signature';
  v_id bigint;
  v_int text := '^[0-9]{1,4}$';
begin
  select p.user_id into v_user from public.payments p where p.provider = 'paystack' and p.reference = p_reference;
  if v_user is null or jsonb_typeof(p_authorization) is distinct from 'object'
     or (p_authorization -> 'reusable') is distinct from 'true'::jsonb
     or p_authorization ->> 'channel' is distinct from 'card'
     or v_code !~ '^AUTH_[A-Za-z0-9]+$' or coalesce(v_sig, '') = '' then
    return null;
  end if;
  perform private.lock_user(v_user);
  select s.payment_method_id into v_id from private.payment_method_secrets s
   where s.user_id = v_user and s.signature = v_sig;
  if v_id is null then
    insert into public.payment_methods (user_id, channel, reusable) values (v_user, 'card', true) returning id into v_id;
    insert into private.payment_method_secrets (payment_method_id, user_id, authorization_code, signature, reference)
    values (v_id, v_user, v_code, v_sig, p_reference);
  else
    update private.payment_method_secrets set authorization_code = v_code, reference = p_reference
     where payment_method_id = v_id;
  end if;
  update public.payment_methods m
     set brand = left(nullif(trim(coalesce(p_authorization ->> 'brand', p_authorization ->> 'card_type')), ''), 40),
         last4 = case when p_authorization ->> 'last4' ~ '^[0-9]{4}$' then p_authorization ->> 'last4' end,
         exp_month = case when p_authorization ->> 'exp_month' ~ v_int
                               and (p_authorization ->> 'exp_month')::integer between 1 and 12
                          then (p_authorization ->> 'exp_month')::integer end,
         exp_year = case when p_authorization ->> 'exp_year' ~ v_int
                              and (p_authorization ->> 'exp_year')::integer between 2000 and 2200
                         then (p_authorization ->> 'exp_year')::integer end,
         bank = left(nullif(trim(p_authorization ->> 'bank'), ''), 100),
         reusable = true, updated_at = now()
   where m.id = v_id;
  return v_id;
end
$$;

-- The card auto top-up charges: the user's most recently used reusable card, with its code (service_role
-- only, through the auto-topup function; the code is never logged).
create function private.reusable_payment_method(p_user_id uuid)
returns table (payment_method_id bigint, authorization_code text)
language sql stable security definer set search_path = '' as $$
  select m.id, s.authorization_code
    from public.payment_methods m join private.payment_method_secrets s on s.payment_method_id = m.id
   where m.user_id = p_user_id and m.reusable
   order by m.updated_at desc, m.id desc
   limit 1
$$;

-- What the functions did in three SQL calls after Paystack's verify answer (apply_payment; save_payment_method;
-- budget_push_target, the first read of pushBudget), in one (bench:webhook). The money logic stays in
-- private.apply_payment; this only calls it, saves the card and returns the key's push target read in the
-- same transaction.
-- p_authorization: the authorization object of the verify answer (null: none). A card that cannot be saved
-- never undoes a credit: its error is returned (card_error) and the payment stands.
-- Its parameters are private.apply_payment's, in the same order (20261126000400 says what each is), then
-- p_authorization.
create function private.apply_verified_payment(p_reference text, p_status text, p_amount_subunits integer,
  p_requested_amount_subunits integer, p_currency text, p_domain text, p_expected_domain text,
  p_provider_transaction_id bigint, p_paid_at timestamptz, p_delivery_id bigint, p_channel text, p_authorization jsonb
) returns table (outcome text, reason text, key_id uuid, card_saved boolean, card_error text, key_value text,
                 target_max_budget numeric, budget_version bigint, status text, sync_status text,
                 litellm_max_budget numeric)
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_applied record;
  v_saved boolean := false;
  v_error text;
begin
  select * into v_applied from private.apply_payment(p_reference, p_status, p_amount_subunits,
    p_requested_amount_subunits, p_currency, p_domain, p_expected_domain, p_provider_transaction_id, p_paid_at,
    p_delivery_id, p_channel) a;
  -- Again on a duplicate: the first delivery may have credited without saving (it is idempotent).
  if v_applied.outcome in ('credited', 'duplicate') and p_authorization is not null then
    begin
      v_saved := private.save_payment_method(p_reference, p_authorization) is not null;
    exception when others then
      v_error := left(sqlerrm, 300);
    end;
  end if;
  return query
  select v_applied.outcome, v_applied.reason, v_applied.key_id, v_saved, v_error, k.key_value,
         v_applied.target_max_budget, k.budget_version, k.status, k.sync_status, k.litellm_max_budget
    from (select 1) one left join public.api_keys k on k.id = v_applied.key_id;
end
$$;

revoke execute on all functions in schema private from public, anon, authenticated;
grant execute on all functions in schema private to service_role;
