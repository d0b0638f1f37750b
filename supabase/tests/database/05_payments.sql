-- Checkouts and payments (invariants 6 and 7): the amount comes from the plan; a verified payment is
-- credited exactly once, only when Paystack's requested_amount is the price locked at checkout and the
-- amount charged covers it; anything else is recorded with a reason and grants nothing.
begin;
select plan(52);

insert into auth.users (id, email, aud, role, email_confirmed_at)
values ('05000000-0000-4000-8000-00000000000a', 'pay-a@pgtap.test', 'authenticated', 'authenticated', now());

-- ---------------------------------------------------------------- checkout
create temp table t_co as select * from private.create_checkout('05000000-0000-4000-8000-00000000000a', 'starter');
select results_eq($$ select amount_subunits, currency, credit, email from t_co $$,
                  $$ values (500, 'USD'::text, 10.00::numeric, 'pay-a@pgtap.test'::text) $$,
                  'create_checkout takes amount, currency and credit from the plan');
select matches((select reference from t_co), '^lc-[0-9a-f]{32}$', 'the checkout reference is ours and unguessable');
select results_eq($$ select c.status, c.plan_code, c.amount_subunits from public.checkouts c join t_co using (reference) $$,
                  $$ values ('created'::text, 'starter'::text, 500) $$, 'the checkout row is created');
select throws_ok($$ select * from private.create_checkout('05000000-0000-4000-8000-00000000000a', 'platinum') $$,
                 'P0001', null, 'create_checkout refuses an unknown plan');
select throws_ok($$ select * from private.create_checkout('05000000-0000-4000-8000-0000000000ff', 'starter') $$,
                 'P0001', null, 'create_checkout refuses an unknown user');

-- ---------------------------------------------------------------- success, exactly once
do $$ begin perform private.record_delivery('charge.success', (select reference from t_co), true, '{}'::jsonb, null, null); end $$;
create temp table t_pay1 as
select * from private.apply_payment((select reference from t_co), 'success', 500, 500, 'USD', 'test', 'test', 4001, now(),
                                    (select max(id) from private.webhook_deliveries));
select results_eq($$ select outcome, reason, is_new, user_id, target_max_budget from t_pay1 $$,
                  $$ values ('credited'::text, null::text, true, '05000000-0000-4000-8000-00000000000a'::uuid, 12.00::numeric) $$,
                  'a verified 500 USD starter payment is credited; the key target becomes 12.00');
select is((select key_id from t_pay1), (select id from public.api_keys where user_id = '05000000-0000-4000-8000-00000000000a'),
          'apply_payment returns the user''s live key (to push its budget)');
select results_eq(
  $$ select kind, amount, idempotency_key from public.credit_ledger
      where user_id = '05000000-0000-4000-8000-00000000000a' and kind = 'purchase' $$,
  $$ select 'purchase'::text, 10.00::numeric(12, 2), 'payment:paystack:' || reference from t_co $$,
  'one purchase row of 10.00 (2 x price)'
);
select results_eq(
  $$ select p.status, p.amount_subunits, p.currency, p.credit, p.provider_transaction_id, p.domain from public.payments p join t_co using (reference) $$,
  $$ values ('credited'::text, 500, 'USD'::text, 10.00::numeric, 4001::bigint, 'test'::text) $$,
  'the payment is recorded'
);
select is((select c.status from public.checkouts c join t_co using (reference)), 'paid', 'the checkout is paid');
select is((select p.charged_subunits from public.payments p join t_co using (reference)), 500, 'no fees: charged = requested');
select results_eq($$ select budget_version, sync_status from public.api_keys where user_id = '05000000-0000-4000-8000-00000000000a' $$,
                  $$ values (1::bigint, 'pending'::text) $$, 'the ledger change bumps the key''s budget version and marks it for a push');
select results_eq($$ select outcome, reason from private.webhook_deliveries where id = (select max(id) from private.webhook_deliveries) $$,
                  $$ values ('credited'::text, null::text) $$, 'the delivery is marked credited');

-- the same payment again (webhook retry, or webhook + callback verify)
do $$ begin perform private.record_delivery('charge.success', (select reference from t_co), true, '{}'::jsonb, null, null); end $$;
create temp table t_pay2 as
select * from private.apply_payment((select reference from t_co), 'success', 500, 500, 'USD', 'test', 'test', 4001, now(),
                                    (select max(id) from private.webhook_deliveries));
select results_eq($$ select outcome, is_new, target_max_budget from t_pay2 $$,
                  $$ values ('duplicate'::text, false, 12.00::numeric) $$,
                  'applying the same payment twice: outcome duplicate, is_new false, same target');
select is((select count(*)::int from public.credit_ledger where user_id = '05000000-0000-4000-8000-00000000000a' and kind = 'purchase'), 1,
          'the duplicate grants nothing');
select is((select sum(amount) from public.credit_ledger where user_id = '05000000-0000-4000-8000-00000000000a'), 12.00::numeric,
          'the user has 12.00 granted in total');
select is((select count(*)::int from public.payments where user_id = '05000000-0000-4000-8000-00000000000a'), 1, 'one payment row');
select is((select budget_version from public.api_keys where user_id = '05000000-0000-4000-8000-00000000000a'), 1::bigint,
          'the duplicate does not bump the budget version');
select results_eq($$ select outcome, reason from private.webhook_deliveries where id = (select max(id) from private.webhook_deliveries) $$,
                  $$ values ('duplicate'::text, 'already credited'::text) $$, 'the duplicate delivery is marked duplicate');

-- fees passed to the customer: Paystack's amount includes them, requested_amount is the plan price
create temp table t_co_fee as select * from private.create_checkout('05000000-0000-4000-8000-00000000000a', 'pro');
select results_eq(
  $$ select r.outcome, r.target_max_budget from t_co_fee c,
            private.apply_payment(c.reference, 'success', 1540, 1500, 'USD', 'test', 'test', 4002, now()) r $$,
  $$ values ('credited'::text, 42.00::numeric) $$,
  'a second pack (pro, fees on top of the requested 1500) is credited against requested_amount: target 42.00'
);
select results_eq($$ select p.amount_subunits, p.charged_subunits, p.credit from public.payments p join t_co_fee using (reference) $$,
                  $$ values (1500, 1540, 30.00::numeric) $$,
                  'both amounts are stored: requested 1500 (the price the credit was bought for) and charged 1540 (fees included)');
select results_eq($$ select m.amount_subunits, m.charged_subunits from public.my_payments m join t_co_fee using (reference) $$,
                  $$ values (1500, 1540) $$, 'my_payments shows both');

-- ---------------------------------------------------------------- rejections: nothing granted, reason kept
-- One checkout per case; each delivery is recorded first and passed in.
create function pg_temp.reject_case(p_plan text, p_status text, p_amount integer, p_currency text, p_domain text,
                                    p_unknown_reference boolean default false)
returns table (reference text, outcome text, reason text, is_new boolean, checkout_status text, checkout_reason text,
               delivery_outcome text, delivery_reason text)
language plpgsql as $$
declare
  v_ref text;
  v_delivery bigint;
  r record;
begin
  if p_unknown_reference then
    v_ref := 'lc-never-created-by-us';
  else
    select c.reference into v_ref from private.create_checkout('05000000-0000-4000-8000-00000000000a', p_plan) c;
  end if;
  v_delivery := private.record_delivery('charge.success', v_ref, true, '{}'::jsonb, null, null);
  select * into r from private.apply_payment(v_ref, p_status, p_amount, p_amount, p_currency, p_domain, 'test', 5000, now(), v_delivery);
  return query
  select v_ref, r.outcome, r.reason, r.is_new, c.status, c.status_reason, d.outcome, d.reason
    from private.webhook_deliveries d left join public.checkouts c on c.reference = v_ref
   where d.id = v_delivery;
end
$$;

create temp table t_ledger_before as select count(*) as n, sum(amount) as total from public.credit_ledger
 where user_id = '05000000-0000-4000-8000-00000000000a';
create temp table t_payments_before as select count(*) as n from public.payments;

create temp table t_amount as select * from pg_temp.reject_case('starter', 'success', 499, 'USD', 'test');
select results_eq($$ select outcome, reason, is_new from t_amount $$,
                  $$ values ('rejected'::text, 'amount_mismatch: 499 <> 500'::text, false) $$, 'amount 499 for a 500 plan is rejected');
select results_eq($$ select checkout_status, checkout_reason from t_amount $$,
                  $$ values ('rejected'::text, 'amount_mismatch: 499 <> 500'::text) $$, 'amount 499: the checkout is rejected with the reason');
select results_eq($$ select delivery_outcome, delivery_reason from t_amount $$,
                  $$ values ('rejected'::text, 'amount_mismatch: 499 <> 500'::text) $$, 'amount 499: the delivery records outcome and reason');

create temp table t_currency as select * from pg_temp.reject_case('starter', 'success', 500, 'NGN', 'test');
select results_eq($$ select outcome, reason, is_new from t_currency $$,
                  $$ values ('rejected'::text, 'currency_mismatch: NGN <> USD'::text, false) $$, '500 NGN for a USD plan is rejected');
select results_eq($$ select checkout_status, checkout_reason, delivery_outcome, delivery_reason from t_currency $$,
                  $$ values ('rejected'::text, 'currency_mismatch: NGN <> USD'::text, 'rejected'::text, 'currency_mismatch: NGN <> USD'::text) $$,
                  'currency: checkout and delivery record the reason');

create temp table t_status as select * from pg_temp.reject_case('starter', 'failed', 500, 'USD', 'test');
select results_eq($$ select outcome, reason, is_new from t_status $$,
                  $$ values ('rejected'::text, 'verify_status_failed'::text, false) $$, 'verify status failed is rejected');
select results_eq($$ select checkout_status, checkout_reason, delivery_outcome, delivery_reason from t_status $$,
                  $$ values ('rejected'::text, 'verify_status_failed'::text, 'rejected'::text, 'verify_status_failed'::text) $$,
                  'status: checkout and delivery record the reason');

create temp table t_domain as select * from pg_temp.reject_case('starter', 'success', 500, 'USD', 'live');
select results_eq($$ select outcome, reason, is_new from t_domain $$,
                  $$ values ('rejected'::text, 'domain_mismatch: live payment, test mode'::text, false) $$,
                  'a live payment while running in test mode is rejected');
select results_eq($$ select checkout_status, checkout_reason, delivery_outcome, delivery_reason from t_domain $$,
                  $$ values ('rejected'::text, 'domain_mismatch: live payment, test mode'::text,
                             'rejected'::text, 'domain_mismatch: live payment, test mode'::text) $$,
                  'domain: checkout and delivery record the reason');

create temp table t_unknown as select * from pg_temp.reject_case('starter', 'success', 500, 'USD', 'test', true);
select results_eq($$ select outcome, reason, is_new from t_unknown $$,
                  $$ values ('rejected'::text, 'unknown_reference'::text, false) $$, 'an unknown reference is rejected');
select results_eq($$ select checkout_status, delivery_outcome, delivery_reason from t_unknown $$,
                  $$ values (null::text, 'rejected'::text, 'unknown_reference'::text) $$,
                  'unknown reference: no checkout, the delivery records the reason');
select is_empty($$ select 1 from public.checkouts where reference = 'lc-never-created-by-us' $$,
                'an unknown reference creates no checkout');

-- requested_amount wins over amount: a short payment with fees on top is still short
create temp table t_short_co as select * from private.create_checkout('05000000-0000-4000-8000-00000000000a', 'starter');
select results_eq(
  $$ select r.outcome, r.reason from t_short_co c, private.apply_payment(c.reference, 'success', 500, 499, 'USD', 'test', 'test', 5004, now()) r $$,
  $$ values ('rejected'::text, 'amount_mismatch: 499 <> 500'::text) $$,
  'a requested_amount of 499 is rejected even if the charged amount is 500'
);
select results_eq(
  $$ select r.outcome, r.reason from private.apply_payment(null, 'success', 500, 500, 'USD', 'test', 'test', 5005, now()) r $$,
  $$ values ('rejected'::text, 'unknown_reference'::text) $$,
  'a missing reference is rejected'
);

-- Underpaid: the verified amount is below the requested price (the requested_amount alone says nothing
-- about what was collected).
create temp table t_under_co as select * from private.create_checkout('05000000-0000-4000-8000-00000000000a', 'starter');
do $$ begin perform private.record_delivery('charge.success', (select reference from t_under_co), true, '{}'::jsonb, null, null); end $$;
create temp table t_under as
select r.* from t_under_co c,
       private.apply_payment(c.reference, 'success', 400, 500, 'USD', 'test', 'test', 5007, now(), (select max(id) from private.webhook_deliveries)) r;
select results_eq($$ select outcome, reason, is_new from t_under $$,
                  $$ values ('rejected'::text, 'underpaid: charged 400 < 500'::text, false) $$,
                  'verified amount 400 < requested 500: rejected (underpaid), whatever requested_amount says');
select results_eq($$ select d.event, d.outcome, d.reason from public.admin_rejected_deliveries d join t_under_co c using (reference) $$,
                  $$ values ('charge.success'::text, 'rejected'::text, 'underpaid: charged 400 < 500'::text) $$,
                  'the shortfall is in the admin view with its reason (npm run admin -- rejected)');
select results_eq($$ select c.status, c.status_reason from public.checkouts c join t_under_co using (reference) $$,
                  $$ values ('rejected'::text, 'underpaid: charged 400 < 500'::text) $$, 'and on the checkout');
select results_eq(
  $$ select r.outcome, r.reason from t_under_co c, private.apply_payment(c.reference, 'success', 500, null, 'USD', 'test', 'test', 5008, now()) r $$,
  $$ values ('rejected'::text, 'requested_amount_missing'::text) $$,
  'a verify without requested_amount is rejected (Paystack always sends it)'
);
select results_eq(
  $$ select r.outcome, r.reason from t_under_co c, private.apply_payment(c.reference, 'success', 0, 500, 'USD', 'test', 'test', 5009, now()) r $$,
  $$ values ('rejected'::text, 'underpaid: charged 0 < 500'::text) $$,
  'nothing collected: rejected'
);

select results_eq(
  $$ select count(*), sum(amount) from public.credit_ledger where user_id = '05000000-0000-4000-8000-00000000000a' $$,
  $$ select n, total from t_ledger_before $$,
  'the rejected payments added no ledger row'
);
select is((select count(*) from public.payments), (select n from t_payments_before), 'the rejected payments created no payment row');
select is(private.key_target_budget((select id from public.api_keys where user_id = '05000000-0000-4000-8000-00000000000a')),
          42.00::numeric, 'the target is still 42.00');

-- a reference rejected as failed that later verifies as success is credited (abandoned, then paid)
select results_eq(
  $$ select r.outcome, r.is_new from t_status s,
            private.apply_payment(s.reference, 'success', 500, 500, 'USD', 'test', 'test', 5006, now()) r $$,
  $$ values ('credited'::text, true) $$,
  'a checkout first rejected as failed is credited when a later verify says success'
);
select results_eq($$ select c.status, c.status_reason from public.checkouts c join t_status s using (reference) $$,
                  $$ values ('paid'::text, null::text) $$, 'that checkout is now paid and its old reason is cleared');
select is(private.key_target_budget((select id from public.api_keys where user_id = '05000000-0000-4000-8000-00000000000a')),
          52.00::numeric, 'the target rises by exactly one starter pack');

-- The locked deal wins (issue 14): a plan deactivated, or repriced, between checkout and payment still
-- sells what the checkout locked; only the locked price is accepted.
create temp table t_inactive_co as select * from private.create_checkout('05000000-0000-4000-8000-00000000000a', 'max');
update public.plans set active = false where code = 'max';
select results_eq(
  $$ select r.outcome, r.reason from t_inactive_co c,
            private.apply_payment(c.reference, 'success', 2000, 2000, 'USD', 'test', 'test', 5001, now()) r $$,
  $$ values ('credited'::text, null::text) $$,
  'a payment for a plan deactivated after its checkout is credited (locked deal)');
select results_eq($$ select c.status, c.status_reason from public.checkouts c join t_inactive_co using (reference) $$,
                  $$ values ('paid'::text, null::text) $$, 'inactive plan: the checkout is paid');
select throws_ok($$ select * from private.create_checkout('05000000-0000-4000-8000-00000000000a', 'max') $$,
                 'P0001', null, 'no new checkout for an inactive plan');
update public.plans set active = true where code = 'max';

create temp table t_changed_co as select * from private.create_checkout('05000000-0000-4000-8000-00000000000a', 'max');
update public.plan_prices set amount_subunits = 2500 where plan = 'max' and currency = 'USD';
select results_eq(
  $$ select r.outcome, r.reason from t_changed_co c,
            private.apply_payment(c.reference, 'success', 2500, 2500, 'USD', 'test', 'test', 5003, now()) r $$,
  $$ values ('rejected'::text, 'amount_mismatch: 2500 <> 2000'::text) $$,
  'paying the new price on an old checkout is rejected (not the price locked at checkout)'
);
select results_eq(
  $$ select r.outcome, r.target_max_budget from t_changed_co c,
            private.apply_payment(c.reference, 'success', 2000, 2000, 'USD', 'test', 'test', 5002, now()) r $$,
  $$ values ('credited'::text, 132.00::numeric) $$,
  'the price locked at checkout, paid after the plan''s price changed, is credited: 52 + 2 x 40'
);

select * from finish();
rollback;
