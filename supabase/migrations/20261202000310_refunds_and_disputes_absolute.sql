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

alter table private.disputes
  add column is_open boolean generated always as (status in ('create', 'remind')) stored,
  -- Lost by the merchant: the money went back to the customer.
  add column is_lost boolean generated always as (status = 'resolve' and resolution in ('merchant-accepted', 'auto-accepted')) stored;
create index disputes_payment_idx on private.disputes (payment_id);

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

-- The event-by-event refund (credit x event amount / price, keyed by a refund id the event may not carry)
-- is replaced by apply_refunds.
drop function private.apply_refund(text, text, integer, text, bigint);

-- Disputes. Only known actions change anything (create | remind: open; resolve with merchant-accepted or
-- auto-accepted: lost, the money went back; resolve with declined: won); anything else is recorded as
-- ignored and answered 200 by the webhook. Whatever the order the events arrive in, a resolved dispute
-- stays resolved and the key is blocked exactly while one of the user's disputes is open.
create or replace function private.apply_dispute(
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

-- Lots, oldest first (product rules, "Savings"), as in 20261126000600, except what a purchase lot cost:
-- the price paid for what is left of its credit (price x credit left / credit bought). A refund or a lost
-- dispute takes back credit and money in the same proportion, fees passed to the customer included.
create or replace view public.my_lots with (security_invoker = true) as
with lot as (
  select l.user_id, l.id as lot_id, l.kind, l.created_at, l.payment_id, pm.plan_code, pm.amount_subunits, pm.credit as bought,
         l.amount + coalesce((select sum(r.amount) from public.credit_ledger r
                               where l.payment_id is not null and r.payment_id = l.payment_id and r.id <> l.id), 0) as credit
    from public.credit_ledger l
    left join public.payments pm on pm.id = l.payment_id
   where l.amount > 0
), priced as (
  select lot.*, case when lot.payment_id is null then 0::numeric
                     else round(lot.amount_subunits::numeric * lot.credit / lot.bought / 100, 2) end as cost
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
            then round((least(greatest(deducted + spent - before, 0), credit) - least(greatest(deducted - before, 0), credit)) * cost / credit, 6)
            else 0 end as cost_of_used
  from placed;

revoke execute on all functions in schema private from public, anon, authenticated;
grant execute on all functions in schema private to service_role;
