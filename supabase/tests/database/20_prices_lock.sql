-- The checkout locks the deal (issue 14): currency, price, credit, channels and rate are fixed when the
-- user starts paying; verify is compared with that row only (a later price, credit or currency change
-- never changes what a paid checkout buys); a wrong currency is a recorded rejection; unknown and disabled
-- currencies and missing prices are refused at checkout; refunds are computed in the charged currency;
-- receipts show all of it, to their owner only.
begin;
select plan(39);

-- Why user A's checkout of a plan in a currency is refused (null: it is not).
create function pg_temp.start_hint(p_plan text, p_currency text) returns text language sql as $$
  select tests.error_hint(format('select private.start_checkout(%L, %L, null, %L)',
                                 '20100000-0000-4000-8000-00000000000a', p_plan, p_currency))
$$;

insert into auth.users (id, email, aud, role, email_confirmed_at) values
  ('20100000-0000-4000-8000-00000000000a', 'lock-a@pgtap.test', 'authenticated', 'authenticated', now()),
  ('20100000-0000-4000-8000-00000000000b', 'lock-b@pgtap.test', 'authenticated', 'authenticated', now());
select lives_ok($$ select private.set_currency('NGN', true, false, array['card', 'bank_transfer']) $$, 'NGN enabled');
select lives_ok($$ select private.derive_prices('NGN', 1550, 50) $$,
                'NGN prices derived at 1550 per USD, in steps of 50');
select lives_ok($$ select private.set_currency('GHS', true) $$, 'GHS enabled, without prices');
select lives_ok($$ select private.set_merchant_name('Lagos LLM Credits Ltd') $$, 'the shop has a name');

-- ---------------------------------------------------------------- the lock
create temp table t_ngn as
select * from private.start_checkout('20100000-0000-4000-8000-00000000000a', 'starter', null, 'NGN');
-- Paystack's verify answer for the NGN checkout: status success, test domain.
create function pg_temp.pay(p_amount integer, p_requested integer, p_currency text, p_id bigint,
                            p_channel text default null)
returns table (outcome text, reason text, target numeric) language sql as $$
  select r.outcome, r.reason, r.target_max_budget
    from t_ngn c, private.apply_payment(c.reference, 'success', p_amount, p_requested, p_currency, 'test', 'test', p_id,
                                        now(), null, p_channel) r
$$;
select results_eq(
  $$ select outcome, amount_subunits, currency, credit, exponent, channels from t_ngn $$,
  $$ values ('created'::text, 775000, 'NGN'::text, 10.00::numeric, 2, array['bank_transfer', 'card']) $$,
  'start_checkout in NGN: 7750 NGN (5 USD x 1550), 10 USD of credit, exponent and channels'
);
select results_eq(
  $$ select c.currency, c.amount_subunits, c.credit, c.exponent, c.channels, c.fx_rate, c.usd_value
       from public.checkouts c join t_ngn using (reference) $$,
  $$ values ('NGN'::text, 775000, 10.00::numeric, 2, array['bank_transfer', 'card'], 1550::numeric, 5.00::numeric) $$,
  'the checkout row locks currency, price, credit, channels, the rate and the USD value'
);
select results_eq(
  $$ select currency, amount_subunits
       from private.create_checkout('20100000-0000-4000-8000-00000000000a', 'starter') $$,
  $$ values ('NGN'::text, 775000) $$,
  'with no currency given, the user''s last choice (NGN)'
);
select results_eq(
  $$ select currency, amount_subunits
       from private.create_checkout('20100000-0000-4000-8000-00000000000b', 'pro') $$,
  $$ values ('USD'::text, 1500) $$,
  'a user without checkouts gets the default (USD)'
);
select is(pg_temp.start_hint('starter', 'JPY'), 'unknown_currency', 'an unknown currency is refused');
select is(pg_temp.start_hint('starter', 'KES'), 'currency_disabled', 'a disabled currency is refused');
select is(pg_temp.start_hint('starter', 'GHS'), 'no_price',
          'an enabled currency without a price for the plan is refused');
select is(pg_temp.start_hint('platinum', 'NGN'), 'unknown_plan', 'an unknown plan is still refused first');
select is((select count(*)::int from public.checkouts where user_id = '20100000-0000-4000-8000-00000000000a'), 2,
          'refused checkouts created nothing');

-- the operator changes the price, the plan's credit, and disables NGN, all after the checkout
select lives_ok($$ select private.set_price('starter', 'NGN', 9000) $$, 'the NGN starter price becomes 9000');
update public.plans set credit = 12.00 where code = 'starter';
select lives_ok($$ select private.set_currency('NGN', false) $$, 'NGN disabled');
select is(pg_temp.start_hint('starter', 'NGN'), 'currency_disabled', 'no new NGN checkout');
select results_eq($$ select outcome, reason from pg_temp.pay(900000, 900000, 'NGN', 9001) $$,
                  $$ values ('rejected'::text, 'amount_mismatch: 900000 <> 775000'::text) $$,
                  'paying the new price on the old checkout is rejected');
select results_eq($$ select outcome, reason from pg_temp.pay(775000, 775000, 'GHS', 9002) $$,
                  $$ values ('rejected'::text, 'currency_mismatch: GHS <> NGN'::text) $$,
                  'the locked amount in another currency is rejected (currency_mismatch)');
select results_eq($$ select c.status, c.status_reason from public.checkouts c join t_ngn using (reference) $$,
                  $$ values ('rejected'::text, 'currency_mismatch: GHS <> NGN'::text) $$, 'the checkout records why');
select is((select count(*)::int from public.payments where user_id = '20100000-0000-4000-8000-00000000000a'), 0,
          'the rejections created no payment');
select results_eq($$ select outcome, target from pg_temp.pay(775000, 775000, 'NGN', 9003, 'bank_transfer') $$,
                  $$ values ('credited'::text, 12.00::numeric) $$,
                  'the locked 7750 NGN buys the locked 10.00 USD (not the new price, credit or currency): 2 + 10');
select results_eq(
  $$ select p.currency, p.amount_subunits, p.exponent, p.credit, p.channel, p.fx_rate, p.usd_value, p.merchant_name
       from public.payments p join t_ngn using (reference) $$,
  $$ values ('NGN'::text, 775000, 2, 10.00::numeric, 'bank_transfer'::text, 1550::numeric, 5.00::numeric,
             'Lagos LLM Credits Ltd'::text) $$,
  'the payment keeps what the checkout locked, the channel Paystack reported and the shop''s name'
);
select results_eq($$ select outcome from pg_temp.pay(775000, 775000, 'NGN', 9003) $$, $$ values ('duplicate'::text) $$,
                  'once only');
update public.plans set credit = 10.00 where code = 'starter';

-- ---------------------------------------------------------------- refunds in NGN
-- 7750 NGN charged for 10.00 USD: refunds move the credit taken back to 10 x refunded / charged.
create function pg_temp.refund(p_amounts integer[])
returns table (outcome text, refunded_subunits bigint, refunded_credit numeric) language sql as $$
  select r.outcome, r.refunded_subunits, r.refunded_credit
    from t_ngn c, private.apply_refunds(c.reference, tests.refund_list(c.reference, p_amounts)) r
$$;
select results_eq($$ select * from pg_temp.refund(array[250000]) $$,
                  $$ values ('refunded'::text, 250000::bigint, 3.23::numeric) $$,
                  'a refund of 2500 NGN of 7750 takes back 3.23 USD (10 x 2500 / 7750 = 3.2258)');
select results_eq($$ select * from pg_temp.refund(array[250000, 250000]) $$,
                  $$ values ('refunded'::text, 500000::bigint, 6.45::numeric) $$,
                  'a second 2500 NGN: 6.45 in all (6.4516), so this one took 3.22');
select results_eq(
  $$ select l.amount from public.credit_ledger l join public.payments p on p.id = l.payment_id
      where p.reference = (select reference from t_ngn) and l.kind = 'refund' order by l.id $$,
  $$ values (-3.23::numeric), (-3.22) $$,
  'two ledger rows, rounded so that their sum is exact'
);
select results_eq($$ select outcome, refunded_credit from pg_temp.refund(array[250000, 250000]) $$,
                  $$ values ('duplicate'::text, 6.45::numeric) $$, 'the same list again takes back nothing more');
select results_eq(
  $$ select r.outcome, r.reason from t_ngn c, private.apply_refunds(c.reference, jsonb_build_array(jsonb_build_object(
       'id', 99, 'transaction', 9003, 'amount', 100, 'currency', 'USD', 'status', 'processed'))) r $$,
  $$ values ('rejected'::text, 'currency_mismatch'::text) $$,
  'a refund in another currency is rejected'
);
select results_eq($$ select * from pg_temp.refund(array[250000, 250000, 275000]) $$,
                  $$ values ('refunded'::text, 775000::bigint, 10.00::numeric) $$,
                  'the rest (2750 NGN): the whole 10.00 back');
select is(private.key_target_budget((select k.id from public.api_keys k
                                      where k.user_id = '20100000-0000-4000-8000-00000000000a')),
          2.00::numeric, 'the key''s target: the sign-up credit, nothing left of the pack');

-- ---------------------------------------------------------------- receipts and the USD cost of a pack
select lives_ok($$ select private.set_currency('NGN', true) $$, 'NGN enabled again');
create temp table t_max as
select * from private.start_checkout('20100000-0000-4000-8000-00000000000a', 'max', null, 'NGN');
select results_eq(
  $$ select r.outcome from t_max c,
            private.apply_payment(c.reference, 'success', 3110000, 3100000, 'NGN', 'test', 'test', 9004, now(), null,
                                  'card') r $$,
  $$ values ('credited'::text) $$, 'a Max pack: 31000 NGN asked, 31100 charged (fees passed on)'
);
select results_eq($$ select p.usd_value from public.payments p join t_max using (reference) $$,
                  $$ values (20.00::numeric) $$, 'its USD value: 31000 / 1550 = 20.00');

set local role authenticated;
set local request.jwt.claims = '{"sub": "20100000-0000-4000-8000-00000000000a", "role": "authenticated"}';
select results_eq(
  $$ select currency, exponent, amount_subunits, charged_subunits, channel, credit, refunded_subunits, credit_reversed,
            fx_rate, status, merchant_name, plan_name
       from public.my_receipts order by amount_subunits $$,
  $$ values ('NGN'::text, 2, 775000, 775000, 'bank_transfer'::text, 10.00::numeric, 775000, 10.00::numeric,
             1550::numeric, 'refunded'::text, 'Lagos LLM Credits Ltd'::text, 'Starter'::text),
            ('NGN', 2, 3100000, 3110000, 'card', 40.00, 0, 0, 1550, 'credited', 'Lagos LLM Credits Ltd', 'Max') $$,
  'A''s receipts: currency, amounts, channel, USD credit, refunds, credit reversed, rate, status, the shop'
);
select results_eq($$ select amount, exponent, channel from public.my_payments order by amount $$,
                  $$ values (7750.00::numeric(12, 2), 2, 'bank_transfer'::text), (31000.00, 2, 'card') $$,
                  'my_payments in major units of the currency paid, with exponent and channel');
select results_eq($$ select kind, cost from public.my_lots where kind = 'purchase' order by lot_id $$,
                  $$ values ('purchase'::text, 0.00::numeric), ('purchase', 20.00) $$,
                  'lots cost their USD value (the refunded pack: nothing left, nothing paid)');
select results_eq($$ select paid from public.my_account $$, $$ values (20.00::numeric) $$, '"You paid" is in USD');
reset role;
set local role authenticated;
set local request.jwt.claims = '{"sub": "20100000-0000-4000-8000-00000000000b", "role": "authenticated"}';
select is_empty($$ select 1 from public.my_receipts $$, 'B sees none of A''s receipts');
select is_empty($$ select 1 from public.my_payments $$, 'nor A''s payments');
reset role;

select * from finish();
rollback;
