-- Lots and savings (product rules, "Savings"): usage is funded oldest lot first, the sign-up credit costs
-- nothing, each pack costs price / credit = 0.50 per credit dollar; savings = spend - cost of that spend.
-- Spend is a fixture (what reconcile would have copied from LiteLLM); everything else is read through
-- public.my_account / public.my_lots as the user, like the dashboard does.
begin;
select plan(33);

create function pg_temp.refund(p_ref text, p_refund_id text, p_subunits integer) returns void language plpgsql as $$
declare
  v_outcome text;
begin
  select r.outcome into v_outcome from private.apply_refunds(p_ref, tests.refund_list(p_ref, array[p_subunits])) r;
  if v_outcome is distinct from 'refunded' then raise exception 'fixture: refund % not applied (%)', p_refund_id, v_outcome; end if;
end
$$;
create function pg_temp.spend(p_user uuid, p_spend numeric) returns void language sql as $$
  update public.api_keys set spend = p_spend, spend_observed_at = now() where user_id = p_user and status <> 'retired'
$$;

insert into auth.users (id, email, aud, role, email_confirmed_at)
select ('06000000-0000-4000-8000-0000000000' || tag)::uuid, 'lots-' || tag || '@pgtap.test', 'authenticated', 'authenticated', now()
  from unnest(array['01', '02', '03', '11', '13', '16', '1b', '20', '30', '31', '40', '50']) tag;

do $$
declare
  v_ref text;
begin
  -- sign-up only
  perform pg_temp.spend('06000000-0000-4000-8000-000000000002', 1.50);
  perform pg_temp.spend('06000000-0000-4000-8000-000000000003', 2.00);
  -- sign-up + starter (paid 5.00, credit 10.00), spend 1, 3, 6, 11
  perform tests.buy('06000000-0000-4000-8000-000000000011', 'starter');
  perform pg_temp.spend('06000000-0000-4000-8000-000000000011', 1);
  perform tests.buy('06000000-0000-4000-8000-000000000013', 'starter');
  perform pg_temp.spend('06000000-0000-4000-8000-000000000013', 3);
  perform tests.buy('06000000-0000-4000-8000-000000000016', 'starter');
  perform pg_temp.spend('06000000-0000-4000-8000-000000000016', 6);
  perform tests.buy('06000000-0000-4000-8000-00000000001b', 'starter');
  perform pg_temp.spend('06000000-0000-4000-8000-00000000001b', 11);
  -- starter then pro, spend 20 crosses into the pro pack
  perform tests.buy('06000000-0000-4000-8000-000000000020', 'starter');
  perform tests.buy('06000000-0000-4000-8000-000000000020', 'pro');
  perform pg_temp.spend('06000000-0000-4000-8000-000000000020', 20);
  -- pro fully refunded, spend 1.50
  v_ref := tests.buy('06000000-0000-4000-8000-000000000030', 'pro');
  perform pg_temp.refund(v_ref, 'rf-lots-full', 1500);
  perform pg_temp.spend('06000000-0000-4000-8000-000000000030', 1.50);
  -- pro half refunded (750 of 1500), spend 10
  v_ref := tests.buy('06000000-0000-4000-8000-000000000031', 'pro');
  perform pg_temp.refund(v_ref, 'rf-lots-half', 750);
  perform pg_temp.spend('06000000-0000-4000-8000-000000000031', 10);
  -- starter, spend 13 above the 12.00 budget (LiteLLM lets the last request overshoot)
  perform tests.buy('06000000-0000-4000-8000-000000000040', 'starter');
  perform pg_temp.spend('06000000-0000-4000-8000-000000000040', 13);
  -- starter, then the key was rotated: the retired key spent 3.00, the new one 1.00
  perform tests.buy('06000000-0000-4000-8000-000000000050', 'starter');
  update public.api_keys set status = 'retired', spend = 3.00, retired_spend = 3.00, retired_at = now()
   where user_id = '06000000-0000-4000-8000-000000000050';
  insert into public.api_keys (user_id, key_alias, key_value, key_token, status, spend)
  select '06000000-0000-4000-8000-000000000050', 'lc-rotated-pgtap', v.k, private.key_token(v.k), 'active', 1.00
    from (select private.new_key_value() as k) v;
end
$$;

-- the refund rows themselves: credit x refunded / price
select is((select amount from public.credit_ledger where user_id = '06000000-0000-4000-8000-000000000030' and kind = 'refund'),
          -30.00::numeric(12, 2), 'a full refund of a 15 USD pack writes -30.00');
select is((select amount from public.credit_ledger where user_id = '06000000-0000-4000-8000-000000000031' and kind = 'refund'),
          -15.00::numeric(12, 2), 'a refund of 750 of 1500 writes -15.00');

-- ---------------------------------------------------------------- sign-up only
select tests.authenticate_as('06000000-0000-4000-8000-000000000001');
select results_eq(
  $$ select granted, paid, spent, remaining, cost_of_spend, savings from public.my_account $$,
  $$ values (2.00, 0.00, 0.00, 2.00, 0.00, 0.00) $$,
  'sign-up only, nothing spent: 2.00 remaining, no savings');
select results_eq(
  $$ select kind, plan_code, credit, cost, used, remaining, cost_of_used from public.my_lots $$,
  $$ values ('signup_grant'::text, null::text, 2.00, 0.00, 0.00, 2.00, 0.00) $$,
  'sign-up only, nothing spent: one free lot, untouched');

select tests.authenticate_as('06000000-0000-4000-8000-000000000002');
select results_eq(
  $$ select granted, paid, spent, remaining, cost_of_spend, savings from public.my_account $$,
  $$ values (2.00, 0.00, 1.50, 0.50, 0.00, 1.50) $$,
  'sign-up only, 1.50 spent: 0.50 remaining, saved all 1.50');
select results_eq(
  $$ select kind, credit, cost, used, remaining, cost_of_used from public.my_lots $$,
  $$ values ('signup_grant'::text, 2.00, 0.00, 1.50, 0.50, 0.00) $$,
  'sign-up only, 1.50 spent: the free lot is 1.50 used');

select tests.authenticate_as('06000000-0000-4000-8000-000000000003');
select results_eq(
  $$ select granted, paid, spent, remaining, cost_of_spend, savings, remaining_percent from public.my_account $$,
  $$ values (2.00, 0.00, 2.00, 0.00, 0.00, 2.00, 0.0) $$,
  'sign-up only, 2.00 spent: nothing remaining, saved 2.00');
select results_eq(
  $$ select kind, credit, cost, used, remaining, cost_of_used from public.my_lots $$,
  $$ values ('signup_grant'::text, 2.00, 0.00, 2.00, 0.00, 0.00) $$,
  'sign-up only, 2.00 spent: the free lot is used up');

-- ---------------------------------------------------------------- sign-up + starter
select tests.authenticate_as('06000000-0000-4000-8000-000000000011');
select results_eq(
  $$ select granted, paid, spent, remaining, cost_of_spend, savings from public.my_account $$,
  $$ values (12.00, 5.00, 1.00, 11.00, 0.00, 1.00) $$,
  'starter, 1 spent: it came from the free lot, saved 1.00');
select results_eq(
  $$ select kind, plan_code, credit, cost, used, remaining, cost_of_used, cost_per_credit from public.my_lots order by created_at, lot_id $$,
  $$ values ('signup_grant'::text, null::text, 2.00, 0.00, 1.00, 1.00, 0.00, 0.00),
            ('purchase', 'starter', 10.00, 5.00, 0.00, 10.00, 0.00, 0.50) $$,
  'starter, 1 spent: the pack is untouched; it costs 0.50 per credit dollar');

select tests.authenticate_as('06000000-0000-4000-8000-000000000013');
select results_eq(
  $$ select granted, paid, spent, remaining, cost_of_spend, savings from public.my_account $$,
  $$ values (12.00, 5.00, 3.00, 9.00, 0.50, 2.50) $$,
  'starter, 3 spent: 2 free + 1 from the pack costing 0.50, saved 2.50');
select results_eq(
  $$ select kind, credit, cost, used, remaining, cost_of_used from public.my_lots order by created_at, lot_id $$,
  $$ values ('signup_grant'::text, 2.00, 0.00, 2.00, 0.00, 0.00), ('purchase', 10.00, 5.00, 1.00, 9.00, 0.50) $$,
  'starter, 3 spent: the free lot is used up, the pack 1.00 used');

select tests.authenticate_as('06000000-0000-4000-8000-000000000016');
select results_eq(
  $$ select granted, paid, spent, remaining, cost_of_spend, savings from public.my_account $$,
  $$ values (12.00, 5.00, 6.00, 6.00, 2.00, 4.00) $$,
  'starter, 6 spent (the worked example): paid 2.00 for 6.00 of usage, saved 4.00');
select results_eq(
  $$ select kind, credit, cost, used, remaining, cost_of_used from public.my_lots order by created_at, lot_id $$,
  $$ values ('signup_grant'::text, 2.00, 0.00, 2.00, 0.00, 0.00), ('purchase', 10.00, 5.00, 4.00, 6.00, 2.00) $$,
  'starter, 6 spent: 2.00 free + 4.00 from the pack costing 2.00');

select tests.authenticate_as('06000000-0000-4000-8000-00000000001b');
select results_eq(
  $$ select granted, paid, spent, remaining, cost_of_spend, savings from public.my_account $$,
  $$ values (12.00, 5.00, 11.00, 1.00, 4.50, 6.50) $$,
  'starter, 11 spent: cost 4.50, saved 6.50, 1.00 remaining');
select results_eq(
  $$ select kind, credit, cost, used, remaining, cost_of_used from public.my_lots order by created_at, lot_id $$,
  $$ values ('signup_grant'::text, 2.00, 0.00, 2.00, 0.00, 0.00), ('purchase', 10.00, 5.00, 9.00, 1.00, 4.50) $$,
  'starter, 11 spent: the pack is 9.00 used, 1.00 left');

-- ---------------------------------------------------------------- two packs
select tests.authenticate_as('06000000-0000-4000-8000-000000000020');
select results_eq(
  $$ select granted, paid, spent, remaining, cost_of_spend, savings from public.my_account $$,
  $$ values (42.00, 20.00, 20.00, 22.00, 9.00, 11.00) $$,
  'starter + pro, 20 spent: 2 free + 10 (5.00) + 8 (4.00): cost 9.00, saved 11.00');
select results_eq(
  $$ select kind, plan_code, credit, cost, used, remaining, cost_of_used from public.my_lots order by created_at, lot_id $$,
  $$ values ('signup_grant'::text, null::text, 2.00, 0.00, 2.00, 0.00, 0.00),
            ('purchase', 'starter', 10.00, 5.00, 10.00, 0.00, 5.00),
            ('purchase', 'pro', 30.00, 15.00, 8.00, 22.00, 4.00) $$,
  'starter + pro, 20 spent: oldest first, the spend crosses into the pro pack');

-- ---------------------------------------------------------------- refunds
select tests.authenticate_as('06000000-0000-4000-8000-000000000030');
select results_eq(
  $$ select granted, paid, spent, remaining, cost_of_spend, savings from public.my_account $$,
  $$ values (2.00, 0.00, 1.50, 0.50, 0.00, 1.50) $$,
  'pro fully refunded, 1.50 spent: back to the sign-up credit, nothing paid');
select results_eq(
  $$ select kind, plan_code, credit, cost, used, remaining, cost_of_used from public.my_lots order by created_at, lot_id $$,
  $$ values ('signup_grant'::text, null::text, 2.00, 0.00, 1.50, 0.50, 0.00),
            ('purchase', 'pro', 0.00, 0.00, 0.00, 0.00, 0.00) $$,
  'pro fully refunded: the pack lot holds no credit and cost nothing');

select tests.authenticate_as('06000000-0000-4000-8000-000000000031');
select results_eq(
  $$ select granted, paid, spent, remaining, cost_of_spend, savings from public.my_account $$,
  $$ values (17.00, 7.50, 10.00, 7.00, 4.00, 6.00) $$,
  'pro half refunded, 10 spent: 2 free + 8 from 15.00 credit costing 7.50: cost 4.00, saved 6.00');
select results_eq(
  $$ select kind, plan_code, credit, cost, used, remaining, cost_of_used from public.my_lots order by created_at, lot_id $$,
  $$ values ('signup_grant'::text, null::text, 2.00, 0.00, 2.00, 0.00, 0.00),
            ('purchase', 'pro', 15.00, 7.50, 8.00, 7.00, 4.00) $$,
  'pro half refunded: the lot holds 15.00 credit for 7.50, still 0.50 per credit dollar');
select results_eq(
  $$ select status, refunded_subunits, amount from public.my_payments $$,
  $$ values ('partially_refunded'::text, 750, 15.00) $$,
  'my_payments shows the partial refund');

-- ---------------------------------------------------------------- spend above the budget
select tests.authenticate_as('06000000-0000-4000-8000-000000000040');
select results_eq(
  $$ select granted, spent, remaining, remaining_percent from public.my_account $$,
  $$ values (12.00, 13.00, -1.00, 0.0) $$,
  'spend above the budget: remaining = budget - spend is negative (rule 8), the gauge shows 0 %');
select results_eq(
  $$ select kind, credit, used, remaining, cost_of_used from public.my_lots order by created_at, lot_id $$,
  $$ values ('signup_grant'::text, 2.00, 2.00, 0.00, 0.00), ('purchase', 10.00, 10.00, 0.00, 5.00) $$,
  'spend above the budget: every lot is fully used, none goes negative');
select is_empty($$ select 1 from public.my_lots where remaining < 0 or used < 0 or used > credit $$,
                'no lot has negative remaining or more used than its credit');
select results_eq(
  $$ select cost_of_spend, savings from public.my_account $$,
  $$ values (5.00, 8.00) $$,
  'spend above the budget: the packs cost 5.00; the overshoot LiteLLM allowed cost the user nothing');

-- ---------------------------------------------------------------- rotated key
select tests.authenticate_as('06000000-0000-4000-8000-000000000050');
select results_eq(
  $$ select granted, spent, remaining, cost_of_spend, savings from public.my_account $$,
  $$ values (12.00, 4.00, 8.00, 1.00, 3.00) $$,
  'after a key rotation the retired key''s spend still counts (3.00 + 1.00 spent)');
select results_eq(
  $$ select status, spend from public.my_key $$,
  $$ values ('active'::text, 1.00) $$,
  'my_key shows only the live key');
select tests.clear_authentication();
select is(private.key_target_budget((select id from public.api_keys where user_id = '06000000-0000-4000-8000-000000000050' and status = 'active')),
          9.00::numeric, 'the live key''s target is the ledger minus what the retired key spent (12.00 - 3.00)');
select is(private.key_target_budget((select id from public.api_keys where user_id = '06000000-0000-4000-8000-000000000050' and status = 'retired')),
          3.00::numeric, 'a retired key''s target is what it spent (nothing more to use)');

-- ---------------------------------------------------------------- the dashboard invariants hold for every scenario
select is_empty(
  $$ select a.user_id from public.my_account a
      where a.user_id::text like '06000000-%'
        and (a.remaining <> a.granted - a.spent
          or a.cost_of_spend <> (select coalesce(sum(l.cost_of_used), 0) from public.my_lots l where l.user_id = a.user_id)
          or a.savings <> a.spent - a.cost_of_spend
          or a.paid <> (select coalesce(sum(l.cost), 0) from public.my_lots l where l.user_id = a.user_id)
          or a.granted <> (select sum(l.credit) from public.my_lots l where l.user_id = a.user_id)) $$,
  'for every scenario: remaining = granted - spent, savings = spent - cost of lots used, paid = cost of lots, granted = sum of lots'
);
select is_empty(
  $$ select a.user_id from public.my_account a
      where a.user_id::text like '06000000-%'
        and (select sum(l.used) from public.my_lots l where l.user_id = a.user_id) <> least(a.spent, a.granted) $$,
  'for every scenario: the lots account for the spend up to what was granted'
);

select * from finish();
rollback;
