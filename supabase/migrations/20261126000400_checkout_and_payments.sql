-- Checkouts (our reference, created before Paystack is called), webhook deliveries, and the SQL that
-- applies verified payments, refunds and disputes exactly once (invariants 6 and 7).

create table public.checkouts (
  reference text primary key check (reference ~ '^[A-Za-z0-9.=-]+$'),
  user_id uuid not null references auth.users (id),
  plan_code text not null references public.plans (code),
  amount_subunits integer not null,
  currency text not null,
  credit numeric(12, 2) not null,
  status text not null default 'created' check (status in ('created', 'initialized', 'paid', 'rejected', 'failed')),
  status_reason text,
  access_code text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);
create index checkouts_user_id_idx on public.checkouts (user_id, created_at desc);
alter table public.checkouts enable row level security;
create policy "own checkouts" on public.checkouts for select to authenticated using ((select auth.uid()) = user_id);
revoke all on table public.checkouts from public, anon, authenticated, service_role;
grant select on table public.checkouts to authenticated, service_role;

-- Every webhook delivery, rejected ones included (a public URL gets forgeries; we want to see them).
create table private.webhook_deliveries (
  id bigint generated always as identity primary key,
  provider text not null default 'paystack',
  event text,
  reference text,
  signature_valid boolean not null,
  outcome text not null default 'received'
    check (outcome in ('received', 'credited', 'duplicate', 'rejected', 'ignored', 'refunded', 'dispute', 'error')),
  reason text,
  body_sha256 text,
  body jsonb,
  source_ip text,
  received_at timestamptz not null default now(),
  processed_at timestamptz
);
create index webhook_deliveries_reference_idx on private.webhook_deliveries (reference);
create index webhook_deliveries_received_idx on private.webhook_deliveries (received_at);

create table private.disputes (
  id bigint primary key, -- Paystack's dispute id
  payment_id bigint not null references public.payments (id),
  status text not null,
  resolution text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now()
);

-- A signed-in user's checkout for a plan: the amount always comes from the plan, never from the client.
create function private.create_checkout(p_user_id uuid, p_plan_code text)
returns table (reference text, amount_subunits integer, currency text, credit numeric, email text)
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_plan public.plans;
  v_ref text := 'lc-' || replace(gen_random_uuid()::text, '-', '');
  v_email text;
begin
  select * into v_plan from public.plans where code = p_plan_code and active;
  if v_plan.code is null then
    raise exception 'unknown or inactive plan: %', p_plan_code using errcode = 'P0001', hint = 'unknown_plan';
  end if;
  select u.email into v_email from auth.users u where u.id = p_user_id;
  if v_email is null then
    raise exception 'unknown user' using errcode = 'P0001', hint = 'unknown_user';
  end if;
  insert into public.checkouts (reference, user_id, plan_code, amount_subunits, currency, credit)
  values (v_ref, p_user_id, v_plan.code, v_plan.price_subunits, v_plan.currency, v_plan.credit);
  return query select v_ref, v_plan.price_subunits, v_plan.currency, v_plan.credit, v_email;
end
$$;

create function private.checkout_initialized(p_reference text, p_access_code text) returns void
language sql volatile security definer set search_path = '' as $$
  update public.checkouts set status = 'initialized', access_code = p_access_code, updated_at = now()
   where reference = p_reference and status = 'created'
$$;

create function private.checkout_failed(p_reference text, p_reason text) returns void
language sql volatile security definer set search_path = '' as $$
  update public.checkouts set status = 'failed', status_reason = left(p_reason, 300), updated_at = now()
   where reference = p_reference and status in ('created', 'initialized')
$$;

create function private.record_delivery(
  p_event text, p_reference text, p_signature_valid boolean, p_body jsonb, p_body_sha256 text, p_source_ip text,
  p_outcome text default 'received', p_reason text default null
) returns bigint language sql volatile security definer set search_path = '' as $$
  insert into private.webhook_deliveries (event, reference, signature_valid, body, body_sha256, source_ip, outcome, reason,
                                          processed_at)
  values (p_event, p_reference, p_signature_valid, p_body, p_body_sha256, p_source_ip, p_outcome, p_reason,
          case when p_outcome <> 'received' then now() end)
  returning id
$$;

create function private.finish_delivery(p_delivery_id bigint, p_outcome text, p_reason text default null) returns void
language sql volatile security definer set search_path = '' as $$
  update private.webhook_deliveries set outcome = p_outcome, reason = p_reason, processed_at = now()
   where id = p_delivery_id
$$;

-- Apply a charge that Paystack's verify endpoint returned. Exactly once per reference: the payments
-- unique key and the ledger idempotency key make a duplicate a no-op, and the row lock on the checkout
-- serialises concurrent deliveries of one reference. Locking the user's live key serialises two payments
-- of one user, so each computes its target after the other's ledger row is visible.
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
  p_delivery_id bigint default null
) returns table (outcome text, reason text, is_new boolean, user_id uuid, key_id uuid, target_max_budget numeric)
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_checkout public.checkouts;
  v_plan public.plans;
  v_payment_id bigint;
  v_key_id uuid;
  v_paid integer := coalesce(p_requested_amount_subunits, p_amount_subunits);
  v_reason text;
begin
  select * into v_checkout from public.checkouts c where c.reference = p_reference for update;
  if v_checkout.reference is null then
    v_reason := 'unknown_reference';
  else
    select * into v_plan from public.plans pl where pl.code = v_checkout.plan_code;
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
      when p_domain is distinct from p_expected_domain then 'domain_mismatch: ' || coalesce(p_domain, 'missing') || ' payment, ' || p_expected_domain || ' mode'
      when not v_plan.active then 'plan_inactive'
      when p_currency is distinct from v_plan.currency then 'currency_mismatch: ' || coalesce(p_currency, 'missing') || ' <> ' || v_plan.currency
      when v_paid is distinct from v_plan.price_subunits then 'amount_mismatch: ' || coalesce(v_paid::text, 'missing') || ' <> ' || v_plan.price_subunits
      when v_checkout.amount_subunits <> v_plan.price_subunits or v_checkout.currency <> v_plan.currency then 'plan_changed_since_checkout'
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

  -- Serialise with other ledger changes of this user (see comment above).
  select k.id into v_key_id from public.api_keys k
   where k.user_id = v_checkout.user_id and k.status <> 'retired' for update;

  insert into public.payments (provider, reference, user_id, plan_code, amount_subunits, currency, credit,
                               provider_transaction_id, domain, paid_at)
  values ('paystack', p_reference, v_checkout.user_id, v_plan.code, v_paid, p_currency, v_plan.credit,
          p_provider_transaction_id, p_domain, p_paid_at)
  on conflict (provider, reference) do nothing
  returning id into v_payment_id;

  if v_payment_id is null then
    -- Lost a race that the checkout lock should have prevented; still exactly once.
    return query select 'duplicate'::text, 'already credited'::text, false, v_checkout.user_id, v_key_id,
                        private.key_target_budget(v_key_id);
    return;
  end if;

  insert into public.credit_ledger (user_id, kind, amount, payment_id, idempotency_key, reason)
  values (v_checkout.user_id, 'purchase', v_plan.credit, v_payment_id, 'payment:paystack:' || p_reference,
          v_plan.name || ' plan');
  update public.checkouts set status = 'paid', status_reason = null, updated_at = now() where reference = p_reference;
  perform private.mark_budget_changed(v_checkout.user_id);
  if p_delivery_id is not null then
    perform private.finish_delivery(p_delivery_id, 'credited', null);
  end if;
  return query select 'credited'::text, null::text, true, v_checkout.user_id, v_key_id, private.key_target_budget(v_key_id);
end
$$;

-- refund.processed: a negative ledger row of credit x refunded / price, once per refund.
create function private.apply_refund(
  p_transaction_reference text, p_refund_id text, p_refunded_subunits integer, p_currency text,
  p_delivery_id bigint default null
) returns table (outcome text, reason text, is_new boolean, user_id uuid, key_id uuid, target_max_budget numeric)
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_payment public.payments;
  v_key_id uuid;
  v_amount numeric(12, 2);
  v_reason text;
  v_ledger_id bigint;
begin
  select * into v_payment from public.payments pm
   where pm.provider = 'paystack' and pm.reference = p_transaction_reference for update;
  v_reason := case
    when v_payment.id is null then 'unknown_reference'
    when p_refunded_subunits is null or p_refunded_subunits <= 0 then 'invalid_refund_amount'
    when p_currency is distinct from v_payment.currency then 'currency_mismatch'
  end;
  if v_reason is null and exists (select 1 from public.credit_ledger l where l.idempotency_key = 'refund:paystack:' || p_refund_id) then
    select k.id into v_key_id from public.api_keys k where k.user_id = v_payment.user_id and k.status <> 'retired';
    if p_delivery_id is not null then perform private.finish_delivery(p_delivery_id, 'duplicate', 'refund already applied'); end if;
    return query select 'duplicate'::text, 'refund already applied'::text, false, v_payment.user_id, v_key_id, private.key_target_budget(v_key_id);
    return;
  end if;
  if v_reason is null and v_payment.refunded_subunits + p_refunded_subunits > v_payment.amount_subunits then
    v_reason := 'refund_exceeds_payment';
  end if;
  if v_reason is not null then
    if p_delivery_id is not null then perform private.finish_delivery(p_delivery_id, 'rejected', v_reason); end if;
    return query select 'rejected'::text, v_reason, false, v_payment.user_id, null::uuid, null::numeric;
    return;
  end if;

  select k.id into v_key_id from public.api_keys k
   where k.user_id = v_payment.user_id and k.status <> 'retired' for update;
  v_amount := round(v_payment.credit * p_refunded_subunits / v_payment.amount_subunits, 2);
  insert into public.credit_ledger (user_id, kind, amount, payment_id, idempotency_key, reason)
  values (v_payment.user_id, 'refund', -v_amount, v_payment.id, 'refund:paystack:' || p_refund_id,
          'refund of ' || p_refunded_subunits || ' ' || v_payment.currency || ' subunits')
  on conflict (idempotency_key) do nothing
  returning id into v_ledger_id;
  if v_ledger_id is not null then
    update public.payments
       set refunded_subunits = refunded_subunits + p_refunded_subunits,
           status = case when refunded_subunits + p_refunded_subunits >= amount_subunits then 'refunded' else 'partially_refunded' end
     where id = v_payment.id;
    perform private.mark_budget_changed(v_payment.user_id);
  end if;
  if p_delivery_id is not null then
    perform private.finish_delivery(p_delivery_id, case when v_ledger_id is null then 'duplicate' else 'refunded' end, null);
  end if;
  return query select case when v_ledger_id is null then 'duplicate' else 'refunded' end, null::text, v_ledger_id is not null,
                      v_payment.user_id, v_key_id, private.key_target_budget(v_key_id);
end
$$;

-- Disputes: opening blocks the key; resolved for the merchant ('declined') unblocks; resolved for the
-- customer ('merchant-accepted' / 'auto-accepted': the money went back) reverses what is left of the
-- purchase's credit and unblocks (LiteLLM then blocks by budget if spend >= max_budget).
create function private.apply_dispute(
  p_dispute_id bigint, p_transaction_reference text, p_action text, p_resolution text, p_delivery_id bigint default null
) returns table (outcome text, reason text, user_id uuid, key_id uuid, blocked boolean, target_max_budget numeric)
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_payment public.payments;
  v_key_id uuid;
  v_block boolean;
  v_remaining integer;
  v_amount numeric(12, 2);
begin
  select * into v_payment from public.payments pm
   where pm.provider = 'paystack' and pm.reference = p_transaction_reference for update;
  if v_payment.id is null then
    if p_delivery_id is not null then perform private.finish_delivery(p_delivery_id, 'rejected', 'unknown_reference'); end if;
    return query select 'rejected'::text, 'unknown_reference'::text, null::uuid, null::uuid, null::boolean, null::numeric;
    return;
  end if;
  select k.id into v_key_id from public.api_keys k
   where k.user_id = v_payment.user_id and k.status <> 'retired' for update;

  insert into private.disputes (id, payment_id, status, resolution)
  values (p_dispute_id, v_payment.id, p_action, p_resolution)
  on conflict (id) do update set status = excluded.status, resolution = coalesce(excluded.resolution, private.disputes.resolution),
                                 updated_at = now();

  if p_action in ('create', 'remind') then
    v_block := true;
    update public.payments set status = 'disputed' where id = v_payment.id and status in ('credited', 'partially_refunded');
  elsif p_action = 'resolve' and p_resolution in ('merchant-accepted', 'auto-accepted') then
    v_block := false;
    v_remaining := v_payment.amount_subunits - v_payment.refunded_subunits;
    if v_remaining > 0 then
      v_amount := round(v_payment.credit * v_remaining / v_payment.amount_subunits, 2);
      insert into public.credit_ledger (user_id, kind, amount, payment_id, idempotency_key, reason)
      values (v_payment.user_id, 'dispute_reversal', -v_amount, v_payment.id, 'dispute:paystack:' || p_dispute_id,
              'dispute lost (' || p_resolution || ')')
      on conflict (idempotency_key) do nothing;
      if found then
        update public.payments set refunded_subunits = amount_subunits, status = 'reversed' where id = v_payment.id;
        perform private.mark_budget_changed(v_payment.user_id);
      end if;
    end if;
  elsif p_action = 'resolve' then
    v_block := false;
    update public.payments set status = case when refunded_subunits > 0 then 'partially_refunded' else 'credited' end
     where id = v_payment.id and status = 'disputed';
  else
    if p_delivery_id is not null then perform private.finish_delivery(p_delivery_id, 'ignored', 'unknown dispute action'); end if;
    return query select 'ignored'::text, 'unknown dispute action'::text, v_payment.user_id, v_key_id, null::boolean, null::numeric;
    return;
  end if;

  -- Open disputes on any other payment keep the key blocked.
  if not v_block and exists (
    select 1 from private.disputes d join public.payments pm on pm.id = d.payment_id
     where pm.user_id = v_payment.user_id and d.status in ('create', 'remind') and d.id <> p_dispute_id
  ) then
    v_block := true;
  end if;
  update public.api_keys k set blocked = v_block, block_synced = k.block_synced and k.blocked = v_block where k.id = v_key_id;
  if p_delivery_id is not null then perform private.finish_delivery(p_delivery_id, 'dispute', p_action || coalesce(':' || p_resolution, '')); end if;
  return query select 'dispute'::text, null::text, v_payment.user_id, v_key_id, v_block, private.key_target_budget(v_key_id);
end
$$;

create function private.confirm_blocked(p_key_id uuid, p_blocked boolean) returns void
language sql volatile security definer set search_path = '' as $$
  update public.api_keys set litellm_blocked = p_blocked, block_synced = (blocked = p_blocked) where id = p_key_id
$$;
