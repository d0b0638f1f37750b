-- Plans, profiles and the append-only credit ledger (product rules, invariants 1 and 2).
-- Every table, view, sequence and function these migrations create in public is first revoked from
-- PUBLIC and the API roles, then granted exactly what it is for: Supabase projects created before May 30, 2026
-- have default privileges that grant all of them on every new object in public (docs/architecture.md,
-- "Hosted roles"), and the same migrations must expose the same on every project.

create table public.plans (
  code text primary key check (code ~ '^[a-z0-9_]+$'),
  name text not null,
  price_subunits integer not null check (price_subunits > 0),
  currency text not null check (currency ~ '^[A-Z]{3}$'),
  credit numeric(12, 2) not null check (credit > 0),
  active boolean not null default true,
  sort_order integer not null default 0
);
alter table public.plans enable row level security;
create policy "plans are public while active" on public.plans for select to anon, authenticated using (active);
revoke all on table public.plans from public, anon, authenticated, service_role;
grant select on table public.plans to anon, authenticated, service_role;

insert into public.plans (code, name, price_subunits, currency, credit, sort_order) values
  ('starter', 'Starter', 500, 'USD', 10.00, 1),
  ('pro', 'Pro', 1500, 'USD', 30.00, 2),
  ('max', 'Max', 2000, 'USD', 40.00, 3)
on conflict (code) do nothing;

create table public.profiles (
  id uuid primary key references auth.users (id) on delete cascade,
  email text,
  created_at timestamptz not null default now()
);

-- The one lock every function that changes a user's money or keys takes first.
--
-- Lock order (one order everywhere, so two of these can never deadlock): first the user's profile row
-- (private.lock_user), then that user's checkout or payment row, then api_keys rows, then the
-- key_rotations row. The profile is the lock because it exists for every user from sign-up on and never
-- changes identity: "the user's live key", which earlier migrations locked, is replaced by a rotation,
-- and a transaction that waited on the old row would find it retired. Functions that change no user's
-- money (reconcile batches, claims with SKIP LOCKED) lock rows of one table only and never wait on the
-- user lock.

create function private.lock_user(p_user_id uuid) returns void
language plpgsql volatile security definer set search_path = '' as $$
begin
  perform 1 from public.profiles p where p.id = p_user_id for update;
end
$$;

-- Payments are defined here because ledger rows reference them.
create table public.payments (
  id bigint generated always as identity primary key,
  provider text not null default 'paystack',
  reference text not null,
  user_id uuid not null references auth.users (id),
  plan_code text not null references public.plans (code),
  amount_subunits integer not null check (amount_subunits > 0),
  currency text not null,
  credit numeric(12, 2) not null check (credit > 0),
  refunded_subunits integer not null default 0 check (refunded_subunits >= 0),
  status text not null default 'credited'
    check (status in ('credited', 'partially_refunded', 'refunded', 'disputed', 'reversed')),
  provider_transaction_id bigint,
  domain text,
  paid_at timestamptz,
  created_at timestamptz not null default now(),
  -- What Paystack charged (amount, fees passed to the customer included) next to what we asked for
  -- (amount_subunits = requested_amount = the plan price locked at checkout). Refunds are paid out of the
  -- charged amount, so that is what they are compared with.
  charged_subunits integer not null,
  exponent integer not null,
  channel text, -- what Paystack reports the customer paid with (verify data.channel)
  fx_rate numeric check (fx_rate > 0),
  usd_value numeric(12, 2),
  -- The seller's name when the payment was credited: a receipt does not change afterwards.
  merchant_name text not null,
  unique (provider, reference),
  constraint payments_charge_covers_price check (charged_subunits >= amount_subunits),
  constraint payments_refunds_within_charge check (refunded_subunits <= charged_subunits)
);
comment on column public.payments.amount_subunits is
  'Paystack requested_amount: the plan price locked at checkout (what the credit was bought for)';
comment on column public.payments.charged_subunits is
  'Paystack amount: what the customer was charged, fees passed to the customer included';
create index payments_user_id_idx on public.payments (user_id);

create table public.credit_ledger (
  id bigint generated always as identity primary key,
  user_id uuid not null references auth.users (id),
  kind text not null check (kind in ('signup_grant', 'purchase', 'refund', 'dispute_reversal', 'adjustment')),
  amount numeric(12, 2) not null check (amount <> 0),
  payment_id bigint references public.payments (id),
  reason text,
  -- One row per event, enforced by the database: a retried or duplicated event cannot add a second row.
  idempotency_key text not null unique,
  created_by text not null default 'system',
  created_at timestamptz not null default now(),
  check (kind <> 'adjustment' or coalesce(length(trim(reason)), 0) > 0),
  check ((kind in ('signup_grant', 'purchase', 'adjustment') and (kind = 'adjustment' or amount > 0))
      or (kind in ('refund', 'dispute_reversal') and amount < 0 and payment_id is not null)),
  check (kind <> 'purchase' or payment_id is not null)
);
create index credit_ledger_user_id_idx on public.credit_ledger (user_id);
create index credit_ledger_payment_id_idx on public.credit_ledger (payment_id) where payment_id is not null;

-- Profiles, payments and the ledger: a user reads their own rows, service_role all; nobody writes through the API.
alter table public.profiles enable row level security;
alter table public.payments enable row level security;
alter table public.credit_ledger enable row level security;
create policy "own profile" on public.profiles for select to authenticated using ((select auth.uid()) = id);
create policy "own payments" on public.payments for select to authenticated using ((select auth.uid()) = user_id);
create policy "own ledger" on public.credit_ledger for select to authenticated using ((select auth.uid()) = user_id);
revoke all on table public.profiles, public.payments, public.credit_ledger
  from public, anon, authenticated, service_role;
revoke all on sequence public.payments_id_seq, public.credit_ledger_id_seq
  from public, anon, authenticated, service_role;
grant select on table public.profiles, public.payments, public.credit_ledger to authenticated, service_role;

-- Append-only: nobody (service_role and postgres included) updates or deletes a ledger row.
-- Corrections are new rows. Only a migration that drops this trigger could change history.
create function private.ledger_is_append_only() returns trigger
language plpgsql set search_path = '' as $$
begin
  raise exception 'credit_ledger is append-only: add a correcting row instead of % ', tg_op
    using errcode = '42501';
end
$$;
create trigger credit_ledger_append_only before update or delete or truncate on public.credit_ledger
  for each statement execute function private.ledger_is_append_only();
