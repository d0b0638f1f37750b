-- Payments credited only at the exact price locked at checkout, both amounts stored; and the one lock
-- every function that changes a user's money or keys takes first.
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

-- What Paystack charged (amount, fees passed to the customer included) next to what we asked for
-- (amount_subunits = requested_amount = the plan price locked at checkout). Refunds are paid out of the
-- charged amount, so that is what they are compared with.
alter table public.payments add column charged_subunits integer;
update public.payments set charged_subunits = amount_subunits;
alter table public.payments
  alter column charged_subunits set not null,
  add constraint payments_charge_covers_price check (charged_subunits >= amount_subunits),
  drop constraint payments_check, -- refunded_subunits <= amount_subunits: refunds are of the charge
  add constraint payments_refunds_within_charge check (refunded_subunits <= charged_subunits);
comment on column public.payments.amount_subunits is
  'Paystack requested_amount: the plan price locked at checkout (what the credit was bought for)';
comment on column public.payments.charged_subunits is
  'Paystack amount: what the customer was charged, fees passed to the customer included';

-- Apply a charge that Paystack's verify endpoint returned. Credited only when requested_amount (what we
-- asked Paystack to collect) is exactly the price locked at checkout and amount (what was collected) is at
-- least that; every other case is rejected with a reason kept on the delivery and the checkout
-- (public.admin_rejected_deliveries, `npm run admin -- rejected`). Exactly once per reference.
create or replace function private.apply_payment(
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
  v_reason text;
begin
  perform private.lock_user((select c.user_id from public.checkouts c where c.reference = p_reference));
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
      when p_currency is distinct from v_checkout.currency then 'currency_mismatch: ' || coalesce(p_currency, 'missing') || ' <> ' || v_checkout.currency
      when p_requested_amount_subunits is null then 'requested_amount_missing'
      when p_requested_amount_subunits <> v_checkout.amount_subunits then 'amount_mismatch: ' || p_requested_amount_subunits || ' <> ' || v_checkout.amount_subunits
      when p_amount_subunits is null or p_amount_subunits < v_checkout.amount_subunits
        then 'underpaid: charged ' || coalesce(p_amount_subunits::text, 'missing') || ' < ' || v_checkout.amount_subunits
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

  select k.id into v_key_id from public.api_keys k
   where k.user_id = v_checkout.user_id and k.status <> 'retired' for update;

  insert into public.payments (provider, reference, user_id, plan_code, amount_subunits, charged_subunits, currency, credit,
                               provider_transaction_id, domain, paid_at)
  values ('paystack', p_reference, v_checkout.user_id, v_plan.code, p_requested_amount_subunits, p_amount_subunits,
          p_currency, v_checkout.credit, p_provider_transaction_id, p_domain, p_paid_at)
  on conflict (provider, reference) do nothing
  returning id into v_payment_id;

  if v_payment_id is null then
    return query select 'duplicate'::text, 'already credited'::text, false, v_checkout.user_id, v_key_id,
                        private.key_target_budget(v_key_id);
    return;
  end if;

  insert into public.credit_ledger (user_id, kind, amount, payment_id, idempotency_key, reason)
  values (v_checkout.user_id, 'purchase', v_checkout.credit, v_payment_id, 'payment:paystack:' || p_reference,
          v_plan.name || ' plan');
  update public.checkouts set status = 'paid', status_reason = null, updated_at = now() where reference = p_reference;
  perform private.mark_budget_changed(v_checkout.user_id);
  if p_delivery_id is not null then
    perform private.finish_delivery(p_delivery_id, 'credited', null);
  end if;
  return query select 'credited'::text, null::text, true, v_checkout.user_id, v_key_id, private.key_target_budget(v_key_id);
end
$$;

-- Payments as the user sees them: what the plan cost, what was charged (fees included), what came back.
create or replace view public.my_payments with (security_invoker = true) as
select pm.id, pm.user_id, pm.reference, pm.plan_code, pl.name as plan_name, pm.amount_subunits, pm.currency,
       (pm.amount_subunits::numeric / 100)::numeric(12, 2) as amount, pm.credit, pm.refunded_subunits, pm.status, pm.paid_at, pm.created_at,
       pm.charged_subunits
  from public.payments pm join public.plans pl on pl.code = pm.plan_code;

revoke execute on all functions in schema private from public, anon, authenticated;
grant execute on all functions in schema private to service_role;
