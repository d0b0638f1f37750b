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
  updated_at timestamptz not null default now(),
  exponent integer not null,
  channels text[] not null default '{}',
  fx_rate numeric check (fx_rate > 0),
  -- What the pack is worth in USD (the dashboard's "You paid" and "You saved"): the price itself in USD,
  -- price / fx_rate for a derived price, else the plan's USD price.
  usd_value numeric(12, 2)
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
  updated_at timestamptz not null default now(),
  is_open boolean generated always as (status in ('create', 'remind')) stored,
  -- Lost by the merchant: the money went back to the customer.
  is_lost boolean generated always as (status = 'resolve' and resolution in ('merchant-accepted', 'auto-accepted')) stored
);
create index disputes_payment_idx on private.disputes (payment_id);

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

-- Apply a charge that Paystack's verify endpoint returned, against the checkout row alone (it locked the
-- deal, 20261202000600): credited only when the currency is the locked one, requested_amount is exactly
-- the locked price and amount (what was collected, fees passed to the customer included) covers it; the
-- plan's current price, currency or active flag no longer matter. Every other case is rejected with a
-- reason kept on the delivery and the checkout (public.admin_rejected_deliveries). Exactly once per
-- reference: the payments unique key and the ledger idempotency key make a duplicate a no-op, and the
-- user lock (private.lock_user) then the checkout row lock serialise concurrent deliveries and payments.
-- p_channel is what verify says the customer paid with.
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

-- Refunds as an absolute, and disputes whatever the order of their events.
--
-- Refunds: the credit taken back for a payment is always credit x (processed refunds / amount charged),
-- capped at the credit, recomputed from Paystack's own list of refunds of that transaction (the webhook
-- asks Paystack: GET /refund?transaction=<id>, https://paystack.com/docs/api/refund/#list). Ledger rows
-- move the payment's refund total to that absolute, so event order, replays, two equal refunds without a
-- reference, or a lost event cannot skew it; a recomputation that finds nothing new adds nothing. The
-- charged amount includes fees passed to the customer, so a full refund of a fee-bearing charge takes
-- back the whole credit.
--
-- Disputes: only create, remind and resolve (with a known resolution) change anything; a resolution is
-- final (a late create or remind never reopens it); a key is blocked while any dispute of its user is
-- open; a lost dispute takes back what refunds have not, exactly once.

-- What a payment has taken back so far, by kind (the ledger is the truth).
create function private.payment_reversals(p_payment_id bigint, out refunded numeric, out disputed numeric)
language sql stable security definer set search_path = '' as $$
  select coalesce(-sum(l.amount) filter (where l.kind = 'refund'), 0),
         coalesce(-sum(l.amount) filter (where l.kind = 'dispute_reversal'), 0)
    from public.credit_ledger l where l.payment_id = p_payment_id
$$;

-- The payment's status follows from its disputes and refunds (never set by hand, never out of step).
create function private.refresh_payment_status(p_payment_id bigint) returns void
language sql volatile security definer set search_path = '' as $$
  update public.payments pm
     set status = case
       when exists (select 1 from private.disputes d where d.payment_id = pm.id and d.is_lost) then 'reversed'
       when exists (select 1 from private.disputes d where d.payment_id = pm.id and d.is_open) then 'disputed'
       when pm.refunded_subunits >= pm.charged_subunits then 'refunded'
       when pm.refunded_subunits > 0 then 'partially_refunded'
       else 'credited' end
   where pm.id = p_payment_id
$$;

-- What the webhook needs to ask Paystack for a payment's refunds (null row: not our payment).
create function private.refund_lookup(p_transaction_reference text)
returns table (payment_id bigint, provider_transaction_id bigint, currency text)
language sql stable security definer set search_path = '' as $$
  select pm.id, pm.provider_transaction_id, pm.currency
    from public.payments pm where pm.provider = 'paystack' and pm.reference = p_transaction_reference
$$;

-- p_refunds: Paystack's list of refunds of the transaction ([{id, transaction, amount, currency, status}],
-- every page). Only processed refunds of this transaction count; each refund id once.
create function private.apply_refunds(p_transaction_reference text, p_refunds jsonb, p_delivery_id bigint default null)
returns table (outcome text, reason text, is_new boolean, user_id uuid, key_id uuid, target_max_budget numeric,
               refunded_subunits bigint, refunded_credit numeric)
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_payment public.payments;
  v_key_id uuid;
  v_processed bigint;
  v_foreign_currency boolean;
  v_reason text;
  v_before record;
  v_goal numeric(12, 2);
  v_ledger_id bigint;
begin
  perform private.lock_user((select pm.user_id from public.payments pm
                              where pm.provider = 'paystack' and pm.reference = p_transaction_reference));
  select * into v_payment from public.payments pm
   where pm.provider = 'paystack' and pm.reference = p_transaction_reference for update;
  if v_payment.id is null then
    v_reason := 'unknown_reference';
  elsif p_refunds is null or jsonb_typeof(p_refunds) <> 'array' then
    v_reason := 'malformed refund list';
  else
    select coalesce(sum(r.amount) filter (where r.currency = v_payment.currency), 0),
           coalesce(bool_or(r.currency is distinct from v_payment.currency), false)
      into v_processed, v_foreign_currency
      from (select distinct on (x.id) x.id, x.amount, x.currency
              from jsonb_to_recordset(p_refunds) as x(id text, transaction bigint, amount bigint, currency text, status text)
             where x.status = 'processed' and x.transaction = v_payment.provider_transaction_id and x.amount > 0
             order by x.id) r;
    v_reason := case
      when v_foreign_currency then 'currency_mismatch'
      when v_processed > v_payment.charged_subunits then 'refunds_exceed_charge: ' || v_processed || ' > ' || v_payment.charged_subunits
    end;
  end if;
  if v_reason is not null then
    if p_delivery_id is not null then perform private.finish_delivery(p_delivery_id, 'rejected', v_reason); end if;
    return query select 'rejected'::text, v_reason, false, v_payment.user_id, null::uuid, null::numeric, null::bigint, null::numeric;
    return;
  end if;

  select k.id into v_key_id from public.api_keys k
   where k.user_id = v_payment.user_id and k.status <> 'retired' for update;
  select * into v_before from private.payment_reversals(v_payment.id);
  -- The absolute the refunds take back, never more than a lost dispute left of the credit.
  v_goal := least(round(v_payment.credit * v_processed / v_payment.charged_subunits, 2), v_payment.credit - v_before.disputed);
  if v_goal > v_before.refunded then
    -- Keyed by the processed total it brings the payment to: that total only grows, so each row is new.
    insert into public.credit_ledger (user_id, kind, amount, payment_id, idempotency_key, reason)
    values (v_payment.user_id, 'refund', -(v_goal - v_before.refunded), v_payment.id,
            'refund:paystack:' || v_payment.reference || ':' || v_processed,
            'refunds of ' || v_processed || ' of ' || v_payment.charged_subunits || ' ' || v_payment.currency || ' subunits charged')
    on conflict (idempotency_key) do nothing
    returning id into v_ledger_id;
    if v_ledger_id is not null then
      perform private.mark_budget_changed(v_payment.user_id);
    end if;
  end if;
  update public.payments pm set refunded_subunits = greatest(pm.refunded_subunits, v_processed) where pm.id = v_payment.id;
  perform private.refresh_payment_status(v_payment.id);
  if p_delivery_id is not null then
    perform private.finish_delivery(p_delivery_id, case when v_ledger_id is null then 'duplicate' else 'refunded' end,
                                    case when v_ledger_id is null then 'refunds already applied' end);
  end if;
  return query select case when v_ledger_id is null then 'duplicate' else 'refunded' end,
                      case when v_ledger_id is null then 'refunds already applied' end,
                      v_ledger_id is not null, v_payment.user_id, v_key_id, private.key_target_budget(v_key_id),
                      greatest(v_payment.refunded_subunits, v_processed)::bigint,
                      (select p.refunded from private.payment_reversals(v_payment.id) p);
end
$$;

-- Disputes. Only known actions change anything (create | remind: open; resolve with merchant-accepted or
-- auto-accepted: lost, the money went back; resolve with declined: won); anything else is recorded as
-- ignored and answered 200 by the webhook. Whatever the order the events arrive in, a resolved dispute
-- stays resolved and the key is blocked exactly while one of the user's disputes is open.
create function private.apply_dispute(
  p_dispute_id bigint, p_transaction_reference text, p_action text, p_resolution text, p_delivery_id bigint default null
) returns table (outcome text, reason text, user_id uuid, key_id uuid, blocked boolean, target_max_budget numeric)
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_payment public.payments;
  v_key_id uuid;
  v_dispute private.disputes;
  v_before record;
  v_block boolean;
  v_ignored text;
begin
  v_ignored := case
    when p_action is null or p_action not in ('create', 'remind', 'resolve') then 'unknown dispute action: ' || coalesce(p_action, 'missing')
    when p_action = 'resolve' and (p_resolution is null or p_resolution not in ('merchant-accepted', 'auto-accepted', 'declined'))
      then 'unknown dispute resolution: ' || coalesce(p_resolution, 'missing')
  end;
  if v_ignored is not null then
    if p_delivery_id is not null then perform private.finish_delivery(p_delivery_id, 'ignored', v_ignored); end if;
    return query select 'ignored'::text, v_ignored, null::uuid, null::uuid, null::boolean, null::numeric;
    return;
  end if;

  perform private.lock_user((select pm.user_id from public.payments pm
                              where pm.provider = 'paystack' and pm.reference = p_transaction_reference));
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
  values (p_dispute_id, v_payment.id, p_action, case when p_action = 'resolve' then p_resolution end)
  on conflict (id) do update set status = excluded.status, resolution = excluded.resolution, updated_at = now()
   where private.disputes.status <> 'resolve';
  select * into v_dispute from private.disputes d where d.id = p_dispute_id;

  if v_dispute.is_lost then
    -- What refunds (and any other lost dispute of this payment) have not taken back yet; once per dispute.
    select * into v_before from private.payment_reversals(v_payment.id);
    if v_payment.credit - v_before.refunded - v_before.disputed > 0 then
      insert into public.credit_ledger (user_id, kind, amount, payment_id, idempotency_key, reason)
      values (v_payment.user_id, 'dispute_reversal', -(v_payment.credit - v_before.refunded - v_before.disputed), v_payment.id,
              'dispute:paystack:' || p_dispute_id, 'dispute lost (' || v_dispute.resolution || ')')
      on conflict (idempotency_key) do nothing;
      if found then
        perform private.mark_budget_changed(v_payment.user_id);
      end if;
    end if;
  end if;

  v_block := exists (select 1 from private.disputes d join public.payments pm on pm.id = d.payment_id
                      where pm.user_id = v_payment.user_id and d.is_open);
  update public.api_keys k set blocked = v_block, block_synced = k.block_synced and k.blocked = v_block where k.id = v_key_id;
  perform private.refresh_payment_status(v_payment.id);
  if p_delivery_id is not null then
    perform private.finish_delivery(p_delivery_id, 'dispute', p_action || coalesce(':' || p_resolution, ''));
  end if;
  return query select 'dispute'::text, null::text, v_payment.user_id, v_key_id, v_block, private.key_target_budget(v_key_id);
end
$$;

create function private.confirm_blocked(p_key_id uuid, p_blocked boolean) returns void
language sql volatile security definer set search_path = '' as $$
  update public.api_keys set litellm_blocked = p_blocked, block_synced = (blocked = p_blocked) where id = p_key_id
$$;
