-- Currencies and prices (issue 14): Paystack's subunit rules and minimums, one default, prices per
-- currency (set, derived from USD with a recorded rate, rounded up), what the dashboard lists
-- (public.prices), the user's currency (public.my_currency), and who may read what.
begin;
select plan(60);

-- ---------------------------------------------------------------- Paystack's currencies
select results_eq(
  $$ select code, exponent, whole_units, min_subunits from public.currencies order by code $$,
  $$ values ('EGP'::text, 2, false, 100::bigint), ('GHS', 2, false, 10), ('KES', 2, false, 300),
            ('NGN', 2, false, 5000), ('RWF', 2, true, 100), ('USD', 2, false, 200), ('XOF', 2, true, 100),
            ('ZAR', 2, false, 100) $$,
  'eight Paystack currencies, amounts in subunits x 100 (XOF and RWF in whole units), Paystack''s minimums'
);
-- This file's own starting state, whatever the demo or earlier tests left on sale (rolled back at the end):
-- the migrations' seed, USD alone on sale and the default.
update public.currencies set enabled = (code = 'USD'), channels = '{}';
delete from public.plan_prices where currency <> 'USD';
select results_eq(
  $$ select plan, currency, amount_subunits, fx_rate from public.plan_prices order by amount_subunits $$,
  $$ values ('starter'::text, 'USD'::text, 500::bigint, null::numeric), ('pro', 'USD', 1500, null),
            ('max', 'USD', 2000, null) $$,
  'today''s plans are the USD prices'
);
select results_eq($$ select code, credit from public.plans order by sort_order $$,
                  $$ values ('starter'::text, 10.00::numeric), ('pro', 30.00), ('max', 40.00) $$,
                  'plans keep their USD credit');

-- ---------------------------------------------------------------- one default
select throws_ok($$ update public.currencies set is_default = true, enabled = true where code = 'NGN' $$,
                 '23505', null, 'two defaults at once are refused');
create function pg_temp.no_default() returns void language plpgsql as $$
begin
  update public.currencies set is_default = false where code = 'USD';
  set constraints currencies_one_default_check immediate;
end
$$;
select throws_ok($$ select pg_temp.no_default() $$, '23514', null, 'no default at all is refused (checked at commit)');
select throws_ok($$ update public.currencies set enabled = false where code = 'USD' $$, '23514', null,
                 'the default cannot be disabled');
select is(tests.error_hint($$ select private.set_currency('USD', false) $$), 'invalid_default',
          'set_currency refuses to disable the default, naming why');
select is(tests.error_hint($$ select private.set_currency('XYZ', true) $$), 'unknown_currency',
          'set_currency: unknown currency');
select is(tests.error_hint($$ select private.set_currency('GHS', true, false, array['mobile_money', 'pigeon']) $$),
          'invalid_channel', 'set_currency: an unknown channel is refused');

-- ---------------------------------------------------------------- prices, exact and per currency
select results_eq($$ select amount_subunits, fx_rate from private.set_price('starter', 'NGN', 7500) $$,
                  $$ values (750000::bigint, null::numeric) $$, 'NGN 7500 is 750000 kobo');
select results_eq($$ select amount_subunits from private.set_price('pro', 'ngn', 22499.99) $$,
                  $$ values (2249999::bigint) $$,
                  'NGN 22499.99: exact to the kobo (the code in any case)');
select is(tests.error_hint($$ select private.set_price('starter', 'NGN', 49.99) $$), 'invalid_price',
          'below Paystack''s NGN minimum (50.00) is refused');
select is(tests.error_hint($$ select private.set_price('starter', 'NGN', 100.001) $$), 'invalid_amount',
          'a third decimal is refused (no rounding)');
select is(tests.error_hint($$ select private.set_price('starter', 'XOF', 3000.50) $$), 'invalid_price',
          'XOF is priced in whole units');
select results_eq($$ select amount_subunits from private.set_price('starter', 'XOF', 3000) $$,
                  $$ values (300000::bigint) $$,
                  'XOF 3000 is sent to Paystack as 300000 (x 100 although XOF has no subunit)');
select is(tests.error_hint($$ select private.set_price('platinum', 'NGN', 100) $$), 'unknown_plan',
          'set_price: unknown plan');
select is(tests.error_hint($$ select private.set_price('starter', 'JPY', 100) $$), 'unknown_currency',
          'set_price: unknown currency');
select is(tests.error_hint($$ select private.set_price('starter', 'NGN', 0) $$), 'invalid_amount',
          'set_price: zero is refused');
select throws_ok($$ insert into public.plan_prices (plan, currency, amount_subunits) values ('max', 'GHS', 9) $$,
                 '23514', null, 'the table itself refuses a price below the minimum (GHS 0.09 < 0.10)');
select results_eq($$ select amount_subunits from private.set_price('starter', 'USD', 6) $$, $$ values (600::bigint) $$,
                  'a new USD price');
select is((select price_subunits from public.plans where code = 'starter'), 600,
          'the plan''s own USD price follows it');
select lives_ok($$ select private.set_price('starter', 'USD', 5) $$, 'and back to 5 USD');

-- derived from USD at a rate the operator gives, rounded up, the rate recorded
select results_eq(
  $$ select plan, usd_subunits, amount_subunits, fx_rate from private.derive_prices('NGN', 1550.5, 100)
      order by usd_subunits $$,
  $$ values ('starter'::text, 500::bigint, 780000::bigint, 1550.5::numeric), ('pro', 1500, 2330000, 1550.5),
            ('max', 2000, 3110000, 1550.5) $$,
  'NGN at 1550.5 per USD, rounded up to 100: 7752.50 -> 7800, 23257.50 -> 23300, 31010 -> 31100'
);
select results_eq($$ select amount_subunits from private.derive_prices('KES', 129.333) where plan = 'starter' $$,
                  $$ values (64667::bigint) $$,
                  'KES at 129.333 with no step: 646.665 rounds up to the next cent, 646.67');
select results_eq($$ select amount_subunits from private.derive_prices('XOF', 601.25) where plan = 'starter' $$,
                  $$ values (300700::bigint) $$, 'XOF at 601.25: 3006.25 rounds up to a whole franc, 3007');
select is(tests.error_hint($$ select private.derive_prices('GHS', 15, 0.001) $$), 'invalid_amount',
          'a rounding step finer than a pesewa is refused');
select is(tests.error_hint($$ select private.derive_prices('USD', 1) $$), 'unknown_currency',
          'USD is not derived from itself');
select is(tests.error_hint($$ select private.derive_prices('NGN', -3) $$), 'invalid_amount', 'a rate must be positive');

-- ---------------------------------------------------------------- what the dashboard lists
select results_eq($$ select currency from public.prices group by currency $$, $$ values ('USD'::text) $$,
                  'prices in a disabled currency are not listed');
select results_eq($$ select code, is_default, channels
                       from private.set_currency('NGN', true, false, array['card', 'bank_transfer', 'card']) $$,
                  $$ values ('NGN'::text, false, array['bank_transfer', 'card']) $$,
                  'NGN enabled with two channels (deduplicated)');
select results_eq(
  $$ select plan, name, currency, amount_subunits, exponent, amount, fraction_digits, credit, channels
       from public.prices where currency = 'NGN' order by sort_order $$,
  $$ values ('starter'::text, 'Starter'::text, 'NGN'::text, 780000::bigint, 2, 7800.00::numeric, 2, 10.00::numeric,
             array['bank_transfer', 'card']),
            ('pro', 'Pro', 'NGN', 2330000, 2, 23300.00, 2, 30.00, array['bank_transfer', 'card']),
            ('max', 'Max', 'NGN', 3110000, 2, 31100.00, 2, 40.00, array['bank_transfer', 'card']) $$,
  'public.prices: each plan''s NGN price, its exact amount, exponent and USD credit'
);
select lives_ok($$ select private.set_currency('XOF', true) $$, 'XOF enabled');
select results_eq($$ select amount, fraction_digits from public.prices where currency = 'XOF' and plan = 'starter' $$,
                  $$ values (3007.00::numeric, 0) $$, 'XOF is shown without decimals');
update public.plan_prices set active = false where plan = 'pro' and currency = 'NGN';
select results_eq($$ select plan from public.prices where currency = 'NGN' order by sort_order $$,
                  $$ values ('starter'::text), ('max') $$,
                  'an inactive price is not listed');
select is(tests.error_hint($$ select private.set_currency('NGN', true, false, null, 10000) $$), 'invalid_price',
          'a minimum above an active price is refused (NGN 10000 > the starter''s 7800)');
select results_eq($$ select min_subunits from private.set_currency('NGN', true, false, null, 60) $$,
                  $$ values (6000::bigint) $$,
                  'the operator can set a currency''s minimum (major units)');

-- ---------------------------------------------------------------- the default moves
select results_eq($$ select code, is_default from private.set_currency('NGN', true, true) $$, $$ values ('NGN'::text,
                  true) $$,
                  'NGN becomes the default');
select results_eq($$ select code from public.currencies where is_default $$, $$ values ('NGN'::text) $$,
                  '... and the only one');
select lives_ok($$ set constraints currencies_one_default_check immediate $$,
                'one default: the check at commit passes');
select results_eq($$ select code, enabled from private.set_currency('USD', false) $$, $$ values ('USD'::text, false) $$,
                  'USD, no longer the default, can be disabled');

-- ---------------------------------------------------------------- the user's currency
insert into auth.users (id, email, aud, role, email_confirmed_at) values
  ('20000000-0000-4000-8000-00000000000a', 'cur-a@pgtap.test', 'authenticated', 'authenticated', now()),
  ('20000000-0000-4000-8000-00000000000b', 'cur-b@pgtap.test', 'authenticated', 'authenticated', now());
select lives_ok($$ select private.set_currency('USD', true) $$, 'USD enabled again (NGN stays the default)');
select is(public.preferred_currency('20000000-0000-4000-8000-00000000000a'), 'NGN',
          'no checkout yet: the operator''s default');
-- A's checkouts: USD, then (later) XOF.
select lives_ok($$ select private.create_checkout('20000000-0000-4000-8000-00000000000a', 'starter', 'USD') $$,
                'A checks out in USD');
update public.checkouts set created_at = created_at - interval '1 hour'
 where user_id = '20000000-0000-4000-8000-00000000000a';
select lives_ok($$ select private.create_checkout('20000000-0000-4000-8000-00000000000a', 'starter', 'XOF') $$,
                'then in XOF');
select is(public.preferred_currency('20000000-0000-4000-8000-00000000000a'), 'XOF', 'the last checkout''s currency');
select lives_ok($$ select private.create_checkout('20000000-0000-4000-8000-00000000000b', 'starter', 'USD') $$,
                'B checks out in USD');

set local role authenticated;
set local request.jwt.claims = '{"sub": "20000000-0000-4000-8000-00000000000a", "role": "authenticated"}';
select results_eq($$ select currency, exponent from public.my_currency $$, $$ values ('XOF'::text, 2) $$,
                  'A''s my_currency is XOF');
select is(public.preferred_currency('20000000-0000-4000-8000-00000000000b'), 'NGN',
          'asking about B (RLS hides B''s USD checkout) gives only the default');
reset role;
select lives_ok($$ select private.set_currency('XOF', false) $$, 'XOF disabled');
set local role authenticated;
set local request.jwt.claims = '{"sub": "20000000-0000-4000-8000-00000000000a", "role": "authenticated"}';
select results_eq($$ select currency from public.my_currency $$, $$ values ('NGN'::text) $$,
                  'the last checkout''s currency is disabled: the default, not an older choice');
select results_eq($$ select code from public.currencies order by code $$, $$ values ('NGN'::text), ('USD') $$,
                  'users read enabled currencies only');
select results_eq($$ select plan, currency from public.plan_prices where currency = 'NGN' order by plan $$,
                  $$ values ('max'::text, 'NGN'::text), ('starter', 'NGN') $$, 'users read active prices only');
select throws_ok($$ update public.plan_prices set amount_subunits = 1 $$, '42501', null, 'users cannot change prices');
select throws_ok($$ select private.set_price('starter', 'NGN', 1) $$, '42501', null, 'users cannot call set_price');
reset role;
set local role anon;
set local request.jwt.claims = '{"role": "anon"}';
select results_eq($$ select currency, count(*)::int from public.prices group by currency order by currency $$,
                  $$ values ('NGN'::text, 2), ('USD', 3) $$, 'anon reads the price list of enabled currencies');
select throws_ok($$ select * from public.my_currency $$, '42501', null, 'anon has no my_currency');
select throws_ok($$ update public.currencies set enabled = true $$, '42501', null, 'anon cannot change currencies');
reset role;

-- ---------------------------------------------------------------- the merchant's name (receipts)
select is(private.setting('merchant_name') #>> '{}', 'litellm-credits',
          'the merchant name defaults to litellm-credits');
select is(private.set_merchant_name('  Ada''s AI Shop  '), 'Ada''s AI Shop', 'the operator names the shop (trimmed)');
select is(tests.error_hint($$ select private.set_merchant_name('   ') $$), 'invalid_name', 'an empty name is refused');

select * from finish();
rollback;
