-- Saved cards and auto top-up (20261202000710, 20261202000720): only reusable card authorizations of
-- credited payments are saved, one per card; settings are validated; a crossing below the threshold starts
-- one attempt (once per crossing, one in flight, each charged at most once: claim, lease, verify-only after
-- a crash); the payment of its reference settles it; the monthly cap and 2 failures switch it off; users
-- without a card get one low-balance notification per crossing; the balance back above re-arms.
begin;
select plan(46);

create function pg_temp.spend(p_user uuid, p_spend numeric) returns void language sql as $$
  update public.api_keys set spend = p_spend, spend_observed_at = now() where user_id = p_user and status <> 'retired'
$$;
create function pg_temp.card(p_user uuid, p_reference text, p_sig text default 'SIG_one') returns jsonb language sql as $$
  select jsonb_build_object('authorization_code', 'AUTH_' || replace(left(p_user::text, 8), '-', '') || right(p_sig, 3),
                            'bin', '408408', 'last4', '4081', 'exp_month', '12', 'exp_year', '2030', 'channel', 'card',
                            'card_type', 'visa ', 'bank', 'TEST BANK', 'country_code', 'NG', 'brand', 'visa',
                            'reusable', true, 'signature', p_sig, 'account_name', null)
$$;
-- What the webhook or the function's verify does for a successful charge of an attempt's reference.
create function pg_temp.pay(p_reference text) returns text language sql as $$
  select r.outcome from public.checkouts c,
         private.apply_payment(c.reference, 'success', c.amount_subunits, c.amount_subunits, c.currency, 'test', 'test', 7, now()) r
   where c.reference = p_reference
$$;
create function pg_temp.attempts(p_user uuid) returns table (status text, reference text) language sql as $$
  select a.status, a.reference from private.auto_topup_attempts a where a.user_id = p_user order by a.id
$$;
-- What auto top-up told the user (receipts and the 20 % / 5 % alerts come from other triggers: 21_notifications).
create function pg_temp.kinds(p_user uuid) returns text[] language sql as $$
  select coalesce(array_agg(n.kind order by n.id), '{}') from public.notifications n
   where n.user_id = p_user and (n.kind like 'auto_topup%' or n.event_key like 'topup-threshold:%')
$$;

-- RWF off, whatever an operator (or the demo) enabled on this database; rolled back with the file.
update public.currencies set enabled = false where code = 'RWF' and not is_default;
insert into auth.users (id, email, aud, role, email_confirmed_at)
select ('21000000-0000-4000-8000-00000000000' || n)::uuid, 'topup-' || n || '@pgtap.test', 'authenticated', 'authenticated', now()
  from generate_series(1, 4) n;
-- users 1, 2: card payers; 3: pays by mobile money (nothing reusable); 4: another user. 12.00 granted each.
do $$
declare
  v_ref text;
begin
  perform private.complete_provisioning(j.id, 1, 2.00) from private.provisioning_jobs j where j.user_id::text like '21000000-%';
  perform private.save_payment_method(tests.buy('21000000-0000-4000-8000-000000000001', 'starter'),
                                      pg_temp.card('21000000-0000-4000-8000-000000000001', 'x'));
  perform private.save_payment_method(tests.buy('21000000-0000-4000-8000-000000000002', 'starter'),
                                      pg_temp.card('21000000-0000-4000-8000-000000000002', 'x', 'SIG_two'));
  v_ref := tests.buy('21000000-0000-4000-8000-000000000003', 'starter');
  perform private.save_payment_method(v_ref, jsonb_build_object('authorization_code', 'AUTH_momo1', 'channel', 'mobile_money',
                                              'reusable', false, 'signature', null, 'brand', 'mobile_money'));
  perform tests.buy('21000000-0000-4000-8000-000000000004', 'starter');
end
$$;

-- ---------------------------------------------------------------- saved payment methods
select results_eq($$ select user_id, channel, brand, last4, exp_month, exp_year, bank, reusable from public.payment_methods
                      where user_id::text like '21000000-%' order by user_id $$,
                  $$ values ('21000000-0000-4000-8000-000000000001'::uuid, 'card'::text, 'visa'::text, '4081'::text, 12, 2030, 'TEST BANK'::text, true),
                            ('21000000-0000-4000-8000-000000000002'::uuid, 'card'::text, 'visa'::text, '4081'::text, 12, 2030, 'TEST BANK'::text, true) $$,
                  'reusable card authorizations are saved (brand, last4, expiry, bank); mobile money is not');
select is(private.save_payment_method('no-such-reference', pg_temp.card('21000000-0000-4000-8000-000000000004', 'x')), null,
          'an authorization of a reference we never credited is not saved');
select is(private.save_payment_method((select reference from public.payments where user_id = '21000000-0000-4000-8000-000000000004'),
                                      pg_temp.card('21000000-0000-4000-8000-000000000004', 'x') || '{"reusable": false}'),
          null, 'a card authorization that is not reusable is not saved');
do $$
begin
  perform private.save_payment_method(tests.buy('21000000-0000-4000-8000-000000000001', 'starter'),
                                      pg_temp.card('21000000-0000-4000-8000-000000000001', 'x') || '{"exp_year": "2031", "authorization_code": "AUTH_newer1"}');
end
$$;
select results_eq($$ select count(*)::int, max(m.exp_year), max(s.authorization_code) from public.payment_methods m
                      join private.payment_method_secrets s on s.payment_method_id = m.id
                     where m.user_id = '21000000-0000-4000-8000-000000000001' $$,
                  $$ values (1, 2031, 'AUTH_newer1'::text) $$, 'the same card (signature) paying again refreshes its one row');
select results_eq($$ select authorization_code from private.reusable_payment_method('21000000-0000-4000-8000-000000000001') $$,
                  $$ values ('AUTH_newer1'::text) $$, 'the card to charge is the newest authorization');

select tests.authenticate_as('21000000-0000-4000-8000-000000000001');
select results_eq($$ select last4 from public.payment_methods $$, $$ values ('4081'::text) $$, 'a user sees their own card');
select throws_ok($$ select * from private.reusable_payment_method('21000000-0000-4000-8000-000000000001') $$, '42501', null,
                 'a user cannot get the authorization code');
-- ---------------------------------------------------------------- settings: RLS and validation
select lives_ok($$ insert into public.auto_topup_settings (threshold_usd, plan_code, currency, monthly_max_count)
                   values (1.00, 'starter', 'USD', 2) $$, 'a user sets their own auto top-up (user_id from the token)');
select is(tests.error_hint($$ update public.auto_topup_settings set plan_code = 'gold' $$), 'unknown_plan', 'an unknown plan is refused');
select is(tests.error_hint($$ update public.auto_topup_settings set currency = 'RWF' $$), 'currency_disabled',
          'a currency that is not enabled is refused');
select throws_ok($$ update public.auto_topup_settings set monthly_max_count = null $$, '23514', null,
                 'a monthly cap (count or amount) is required');
select throws_ok($$ update public.auto_topup_settings set threshold_usd = 0 $$, '23514', null, 'the threshold is positive');
select tests.authenticate_as('21000000-0000-4000-8000-000000000004');
select is_empty($$ select 1 from public.auto_topup_settings $$, 'another user does not see it');
select tests.clear_authentication();
update public.plans set active = false where code = 'max';
select is(tests.error_hint($$ insert into public.auto_topup_settings (user_id, threshold_usd, plan_code, currency, monthly_max_count)
                               values ('21000000-0000-4000-8000-000000000004', 1, 'max', 'USD', 1) $$),
          'unknown_plan', 'an inactive plan is refused');
update public.plans set active = true where code = 'max';
insert into public.auto_topup_settings (user_id, threshold_usd, plan_code, currency, monthly_max_count) values
  ('21000000-0000-4000-8000-000000000002', 1.00, 'starter', 'USD', 5),
  ('21000000-0000-4000-8000-000000000003', 1.00, 'starter', 'USD', 5);

-- ---------------------------------------------------------------- a crossing starts one attempt
select has_trigger('public', 'api_keys', 'api_keys_balance_change', 'spend updates evaluate auto top-up');
select has_trigger('public', 'credit_ledger', 'credit_ledger_balance_change', 'ledger inserts evaluate auto top-up');
do $$ begin perform pg_temp.spend('21000000-0000-4000-8000-000000000001', 20.50); end $$; -- 22.00 granted: 1.50 left
select is_empty($$ select * from pg_temp.attempts('21000000-0000-4000-8000-000000000001') $$, 'above the threshold: nothing');
do $$ begin perform pg_temp.spend('21000000-0000-4000-8000-000000000001', 21.10); end $$; -- 0.90 left
select results_eq($$ select a.status, c.plan_code, c.currency, c.amount_subunits, c.credit, c.usd_value
                       from private.auto_topup_attempts a join public.checkouts c on c.reference = a.reference
                      where a.user_id = '21000000-0000-4000-8000-000000000001' $$,
                  $$ values ('queued'::text, 'starter'::text, 'USD'::text, 500, 10.00::numeric, 5.00::numeric) $$,
                  'below the threshold: one queued attempt whose checkout row locks the pack');
do $$ begin perform pg_temp.spend('21000000-0000-4000-8000-000000000001', 21.50); end $$;
do $$ begin perform pg_temp.spend('21000000-0000-4000-8000-000000000001', 21.60); end $$;
select is(private.evaluate_auto_topup(array['21000000-0000-4000-8000-000000000001'::uuid]), 0, 'evaluating again opens nothing');
select is((select count(*)::int from private.auto_topup_attempts where user_id = '21000000-0000-4000-8000-000000000001'), 1,
          'later spend in the same crossing adds no attempt');
-- a crossing forced closed while the attempt is in flight: the next one finds it in flight
update private.topup_crossings set rearmed_at = now() where user_id = '21000000-0000-4000-8000-000000000001';
do $$ begin perform pg_temp.spend('21000000-0000-4000-8000-000000000001', 21.70); end $$;
select results_eq($$ select outcome from private.topup_crossings where user_id = '21000000-0000-4000-8000-000000000001' order by id $$,
                  $$ values ('attempt'::text), ('in_flight'::text) $$, 'at most one attempt in flight per user');

-- ---------------------------------------------------------------- claim: charged at most once
select results_eq($$ select action, authorization_code, amount_subunits, currency, email from private.claim_auto_topups(10)
                      where user_id = '21000000-0000-4000-8000-000000000001' $$,
                  $$ values ('charge'::text, 'AUTH_newer1'::text, 500, 'USD'::text, 'topup-1@pgtap.test'::text) $$,
                  'a queued attempt is claimed to charge, with the card''s code');
select results_eq($$ select status, charge_tries from private.auto_topup_attempts where user_id = '21000000-0000-4000-8000-000000000001' $$,
                  $$ values ('charging'::text, 1) $$, 'it is recorded charging before the call');
select is_empty($$ select * from private.claim_auto_topups(10) where user_id = '21000000-0000-4000-8000-000000000001' $$,
                'a second run does not take it while leased');
update private.auto_topup_attempts set locked_until = now() - interval '1 second' where user_id = '21000000-0000-4000-8000-000000000001';
select results_eq($$ select action, authorization_code from private.claim_auto_topups(10) where user_id = '21000000-0000-4000-8000-000000000001' $$,
                  $$ values ('verify'::text, null::text) $$, 'after the run died (lease over) it is only verified, never charged again');

-- ---------------------------------------------------------------- the payment settles it
select is(pg_temp.pay((select reference from private.auto_topup_attempts where user_id = '21000000-0000-4000-8000-000000000001')),
          'credited', 'its reference is credited by apply_payment');
select results_eq($$ select * from pg_temp.attempts('21000000-0000-4000-8000-000000000001') $$,
                  $$ select 'succeeded'::text, reference from private.auto_topup_attempts where user_id = '21000000-0000-4000-8000-000000000001' $$,
                  'the attempt succeeded');
select is(pg_temp.pay((select reference from private.auto_topup_attempts where user_id = '21000000-0000-4000-8000-000000000001')),
          'duplicate', 'crediting again is a duplicate');
select results_eq($$ select kind, link from public.notifications where user_id = '21000000-0000-4000-8000-000000000001' and kind like 'auto_topup%' $$,
                  $$ select 'auto_topup_succeeded'::text, '#/receipt/' || reference from private.auto_topup_attempts
                      where user_id = '21000000-0000-4000-8000-000000000001' $$,
                  'one auto_topup_succeeded notification, linking to the receipt');
select is((select count(*)::int from private.topup_crossings where user_id = '21000000-0000-4000-8000-000000000001' and rearmed_at is null),
          0, 'the credit lifts the balance above the threshold: re-armed');

-- ---------------------------------------------------------------- a second drop charges again; the third hits the cap
do $$
declare
  v_ref text;
begin
  perform pg_temp.spend('21000000-0000-4000-8000-000000000001', 31.50); -- 32.00 granted: 0.50 left
  select reference into v_ref from private.auto_topup_attempts where user_id = '21000000-0000-4000-8000-000000000001' and status = 'queued';
  perform pg_temp.pay(v_ref);
  perform pg_temp.spend('21000000-0000-4000-8000-000000000001', 41.50); -- 42.00 granted: 0.50 left
end
$$;
select results_eq($$ select status from pg_temp.attempts('21000000-0000-4000-8000-000000000001') $$,
                  $$ values ('succeeded'::text), ('succeeded'::text) $$, 'a second drop was charged; the third is refused (cap 2 a month)');
select results_eq($$ select enabled, disabled_reason from public.auto_topup_settings where user_id = '21000000-0000-4000-8000-000000000001' $$,
                  $$ values (false, 'the monthly cap is reached'::text) $$, 'the cap switches auto top-up off and says why');
select ok('auto_topup_disabled' = any (pg_temp.kinds('21000000-0000-4000-8000-000000000001')), 'the user is told it was switched off');
select is((select count(*)::int from public.checkouts where user_id = '21000000-0000-4000-8000-000000000001' and status_reason = 'auto top-up'),
          0, 'no checkout is left behind for the refused one (the paid ones are marked paid)');

-- ---------------------------------------------------------------- failures: 2 in a row switch it off
do $$ begin perform pg_temp.spend('21000000-0000-4000-8000-000000000002', 11.50); end $$; -- 0.50 left
select is(private.auto_topup_result((select id from private.auto_topup_attempts where user_id = '21000000-0000-4000-8000-000000000002'),
                                    'failed', 'Insufficient Funds'), 'failed', 'a declined charge is recorded failed');
select results_eq($$ select c.status, a.failure_reason, s.consecutive_failures, s.enabled
                       from private.auto_topup_attempts a join public.checkouts c on c.reference = a.reference
                       join public.auto_topup_settings s on s.user_id = a.user_id
                      where a.user_id = '21000000-0000-4000-8000-000000000002' $$,
                  $$ values ('failed'::text, 'Insufficient Funds'::text, 1, true) $$, 'its reason is kept, its checkout failed, one failure counted');
do $$ begin perform pg_temp.spend('21000000-0000-4000-8000-000000000002', 11.60); end $$;
select is(private.auto_topup_result((select id from private.auto_topup_attempts where user_id = '21000000-0000-4000-8000-000000000002' and status = 'queued'),
                                    'pending'), 'pending', 'a charge Paystack has not decided is followed up later');
select ok((select next_run_at > now() and verify_tries = 1 from private.auto_topup_attempts
            where user_id = '21000000-0000-4000-8000-000000000002' and status = 'pending'), 'after a backoff');
select is(private.auto_topup_result((select id from private.auto_topup_attempts where user_id = '21000000-0000-4000-8000-000000000002' and status = 'pending'),
                                    'failed', 'Declined'), 'failed', 'then declined');
select results_eq($$ select enabled, disabled_reason from public.auto_topup_settings where user_id = '21000000-0000-4000-8000-000000000002' $$,
                  $$ values (false, '2 charges failed in a row'::text) $$, 'two failures in a row switch auto top-up off');
select is(pg_temp.kinds('21000000-0000-4000-8000-000000000002'),
          array['auto_topup_failed', 'auto_topup_failed', 'auto_topup_disabled'], 'the user is told of each failure and of the switch-off');
update public.auto_topup_settings set enabled = true where user_id = '21000000-0000-4000-8000-000000000002';
select results_eq($$ select enabled, disabled_reason, consecutive_failures from public.auto_topup_settings where user_id = '21000000-0000-4000-8000-000000000002' $$,
                  $$ values (true, null::text, 0) $$, 'turning it on again clears the reason and the count');

-- ---------------------------------------------------------------- no reusable card: one low-balance notification per crossing
do $$ begin perform pg_temp.spend('21000000-0000-4000-8000-000000000003', 11.50); end $$;
do $$ begin perform pg_temp.spend('21000000-0000-4000-8000-000000000003', 11.60); end $$;
do $$ begin perform pg_temp.spend('21000000-0000-4000-8000-000000000003', 11.70); end $$;
select results_eq($$ select kind, link from public.notifications
                      where user_id = '21000000-0000-4000-8000-000000000003' and event_key like 'topup-threshold:%' $$,
                  $$ values ('low_balance'::text, '#/buy?plan=starter&currency=USD'::text) $$,
                  'a user without a reusable card gets one low_balance notification (one tap to the same pack), not one per cycle');
select is_empty($$ select * from pg_temp.attempts('21000000-0000-4000-8000-000000000003') $$, 'and is never charged');
do $$
begin
  perform tests.buy('21000000-0000-4000-8000-000000000003', 'starter'); -- back above: re-armed
  perform pg_temp.spend('21000000-0000-4000-8000-000000000003', 21.50);
end
$$;
select is(pg_temp.kinds('21000000-0000-4000-8000-000000000003'), array['low_balance', 'low_balance'], 'the next crossing notifies again');

-- ---------------------------------------------------------------- the sweep
select is((select count(*)::int from cron.job where jobname = 'auto-topup' and schedule = '* * * * *'), 1,
          'a cron job sweeps due attempts every minute');

select * from finish();
rollback;
