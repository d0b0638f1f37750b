-- Low-balance alerts (20261126001000): one event per crossing of 20 % and 5 % of what was granted,
-- not one per reconcile run; re-armed when the balance goes back above the level; delivery bookkeeping
-- (lease, retries with back-off, give up, skip when no webhook); the dashboard's low_balance_level.
begin;
select plan(33);

-- What reconcile does when LiteLLM reports new spend: an UPDATE of api_keys.spend.
create function pg_temp.spend(p_user uuid, p_spend numeric) returns void language sql as $$
  update public.api_keys set spend = p_spend, spend_observed_at = now() where user_id = p_user and status <> 'retired'
$$;
create function pg_temp.events(p_user uuid) returns table (level integer, open boolean, delivery_status text) language sql as $$
  select e.level, e.rearmed_at is null, e.delivery_status from private.alert_events e where e.user_id = p_user order by e.id
$$;

insert into auth.users (id, email, aud, role, email_confirmed_at)
select ('11000000-0000-4000-8000-00000000000' || n)::uuid, 'alert-' || n || '@pgtap.test', 'authenticated', 'authenticated', now()
  from generate_series(1, 3) n;
do $$
begin
  perform private.complete_provisioning(j.id, 1, 2.00) from private.provisioning_jobs j where j.user_id::text like '11000000-%';
  perform tests.buy('11000000-0000-4000-8000-000000000001', 'starter'); -- user 1: 12.00 granted
end
$$;

select has_trigger('public', 'credit_ledger', 'credit_ledger_balance_change', 'ledger inserts re-evaluate the balance');
select has_trigger('public', 'api_keys', 'api_keys_balance_change', 'spend updates re-evaluate the balance');
select is_empty($$ select * from pg_temp.events('11000000-0000-4000-8000-000000000001') $$, 'a full balance has no alert');

-- ---------------------------------------------------------------- falling through 20 %
do $$ begin perform pg_temp.spend('11000000-0000-4000-8000-000000000001', 9.00); end $$; -- 3.00 of 12.00 = 25 %
select is_empty($$ select * from pg_temp.events('11000000-0000-4000-8000-000000000001') $$, '25 % left: no alert');
do $$ begin perform pg_temp.spend('11000000-0000-4000-8000-000000000001', 9.60); end $$; -- 2.40 = exactly 20 %
select results_eq($$ select * from pg_temp.events('11000000-0000-4000-8000-000000000001') $$,
                  $$ values (20, true, 'pending'::text) $$, 'exactly 20 % left: one 20 % alert, pending delivery');
select results_eq($$ select granted, spent, remaining from private.alert_events where user_id = '11000000-0000-4000-8000-000000000001' $$,
                  $$ values (12.00::numeric, 9.60::numeric, 2.40::numeric) $$, 'the event records the balance at the crossing');
select results_eq($$ select remaining_percent, low_balance_level from public.my_account where user_id = '11000000-0000-4000-8000-000000000001' $$,
                  $$ values (20.0::numeric, 20) $$, 'my_account.low_balance_level = 20 (the dashboard banner)');

-- the next reconcile runs see the same or a slightly lower balance: nothing new
do $$ begin perform pg_temp.spend('11000000-0000-4000-8000-000000000001', 9.60); end $$;
do $$ begin perform pg_temp.spend('11000000-0000-4000-8000-000000000001', 9.75); end $$;
update public.api_keys set sync_status = sync_status where user_id = '11000000-0000-4000-8000-000000000001';
select is((select count(*)::int from private.alert_events where user_id = '11000000-0000-4000-8000-000000000001'), 1,
          'later runs below 20 % (same or more spend, unrelated updates) add no second 20 % alert');
select is(private.evaluate_low_balance(array['11000000-0000-4000-8000-000000000001'::uuid]), 0,
          'evaluating again directly fires nothing');

-- ---------------------------------------------------------------- falling through 5 %
do $$ begin perform pg_temp.spend('11000000-0000-4000-8000-000000000001', 11.40); end $$; -- 0.60 = 5 %
select results_eq($$ select * from pg_temp.events('11000000-0000-4000-8000-000000000001') $$,
                  $$ values (20, true, 'pending'::text), (5, true, 'pending'::text) $$, 'at 5 % a 5 % alert is added; the 20 % one stays open');
select is((select low_balance_level from public.my_account where user_id = '11000000-0000-4000-8000-000000000001'), 5, 'banner level 5');
do $$ begin perform pg_temp.spend('11000000-0000-4000-8000-000000000001', 12.30); end $$; -- over budget
select is((select count(*)::int from private.alert_events where user_id = '11000000-0000-4000-8000-000000000001'), 2,
          'going further down (even past 0) adds nothing');

-- ---------------------------------------------------------------- a purchase re-arms; the next fall is a new crossing
do $$ begin perform tests.buy('11000000-0000-4000-8000-000000000001', 'starter'); end $$; -- 22.00 granted, 9.70 left = 44 %
select results_eq($$ select * from pg_temp.events('11000000-0000-4000-8000-000000000001') $$,
                  $$ values (20, false, 'pending'::text), (5, false, 'pending'::text) $$, 'a purchase lifts the balance above both levels: both re-armed');
select is((select low_balance_level from public.my_account where user_id = '11000000-0000-4000-8000-000000000001'), null::integer, 'no banner');
do $$ begin perform pg_temp.spend('11000000-0000-4000-8000-000000000001', 18.00); end $$; -- 4.00 = 18 %
select results_eq($$ select level, open from pg_temp.events('11000000-0000-4000-8000-000000000001') where open $$,
                  $$ values (20, true) $$, 'falling below 20 % again is a new crossing: a new 20 % alert');
select is((select count(*)::int from private.alert_events where user_id = '11000000-0000-4000-8000-000000000001' and level = 20), 2,
          'two 20 % alerts in all, one per crossing');
-- a grant that lifts above 5 % but not 20 % re-arms only 5 % (here: nothing was open at 5 %)
do $$ begin perform pg_temp.spend('11000000-0000-4000-8000-000000000001', 21.00); end $$; -- 1.00 = 4.5 %
do $$ begin perform private.adjust_credit('11000000-0000-4000-8000-000000000001', 1.00, 'goodwill pgtap', 'pgtap'); end $$; -- 2.00 of 23.00 = 8.7 %
select results_eq($$ select level, open from pg_temp.events('11000000-0000-4000-8000-000000000001') order by 1 desc, 2 $$,
                  $$ values (20, false), (20, true), (5, false), (5, false) $$,
                  'a grant to 8.7 %: the 5 % alert re-arms, the 20 % one stays open');

-- ---------------------------------------------------------------- straight from above 20 % to under 5 %
do $$ begin perform pg_temp.spend('11000000-0000-4000-8000-000000000002', 1.95); end $$; -- 0.05 of 2.00 = 2.5 %
select results_eq($$ select * from pg_temp.events('11000000-0000-4000-8000-000000000002') $$,
                  $$ values (20, true, 'superseded'::text), (5, true, 'pending'::text) $$,
                  'one fall through both levels: both recorded, only the 5 % one is sent');

-- user 3: nothing granted (the sign-up grant taken back) -> no alert, no banner
do $$ begin perform private.adjust_credit('11000000-0000-4000-8000-000000000003', -2.00, 'pgtap: no credit', 'pgtap'); end $$;
select is_empty($$ select * from pg_temp.events('11000000-0000-4000-8000-000000000003') $$, 'granted 0: no alert (no percentage of nothing)');
select is((select low_balance_level from public.my_account where user_id = '11000000-0000-4000-8000-000000000003'), null::integer,
          'granted 0: no banner');

-- ---------------------------------------------------------------- the banner and the alert use one rule
select is_empty($$
  with cases(granted, spent) as (values (10.00, 7.99), (10.00, 8.00), (10.00, 8.01), (10.00, 9.49), (10.00, 9.50), (10.00, 9.51), (3.00, 2.40))
  select * from cases
   where (case when (granted - spent) * 100 <= granted * 5 then 5 when (granted - spent) * 100 <= granted * 20 then 20 end)
         is distinct from (case when spent >= granted * 0.95 then 5 when spent >= granted * 0.80 then 20 end) $$,
  'the level boundaries are inclusive and exact (no float rounding at 20 % and 5 %)');

-- ---------------------------------------------------------------- delivery bookkeeping
update private.alert_events set delivery_status = 'delivered' where delivery_status = 'pending' and user_id::text not like '11000000-%';
create temp table t_claim as select * from private.claim_alert_deliveries(100, 60);
select bag_eq($$ select user_id, level from t_claim $$,
              $$ values ('11000000-0000-4000-8000-000000000001'::uuid, 20), ('11000000-0000-4000-8000-000000000001'::uuid, 20),
                        ('11000000-0000-4000-8000-000000000001'::uuid, 5), ('11000000-0000-4000-8000-000000000001'::uuid, 5),
                        ('11000000-0000-4000-8000-000000000002'::uuid, 5) $$,
              'every pending alert is claimed, re-armed ones included (superseded ones never are)');
select ok((select bool_and(email like 'alert-%@pgtap.test') from t_claim), 'a claim carries the email (masked by the sender)');
select is_empty($$ select * from private.claim_alert_deliveries(100, 60) $$, 'claimed alerts are leased: a parallel run gets none');

select is(private.finish_alert_delivery((select min(alert_id) from t_claim), true, 1), 'delivered', 'a 2xx from the webhook: delivered');
select is(private.finish_alert_delivery((select min(alert_id) from t_claim), true, 1), null, 'finishing it again changes nothing');
select is(private.finish_alert_delivery((select max(alert_id) from t_claim), false, 3, 'http 500'), 'pending', 'three failed tries: still pending');
select results_eq($$ select attempts, last_error, locked_until, next_attempt_at > now() from private.alert_events where id = (select max(alert_id) from t_claim) $$,
                  $$ values (3, 'http 500'::text, null::timestamptz, true) $$, 'counted, lease released, retried later (back-off)');
update private.settings set value = '4' where key = 'alert_max_attempts';
select is(private.finish_alert_delivery((select max(alert_id) from t_claim), false, 1, 'timeout'), 'failed',
          'after alert_max_attempts the alert is given up');
select ok(private.skip_alert_deliveries('no webhook') >= 3, 'no webhook configured: skip_alert_deliveries marks the pending alerts');
select results_eq($$ select delivery_status, count(*)::int from private.alert_events where user_id::text like '11000000-%' group by 1 order by 1 $$,
                  $$ values ('delivered'::text, 1), ('failed'::text, 1), ('skipped'::text, 3), ('superseded'::text, 1) $$,
                  'the other three are skipped, not queued to flood the webhook later');

-- ---------------------------------------------------------------- where alerts go
select is(private.alert_webhook_url(), null, 'no vault secret: the function falls back to ALERT_WEBHOOK_URL');
do $$ begin perform vault.create_secret('http://127.0.0.1:9/hook', 'alert_webhook_url'); end $$;
select is(private.alert_webhook_url(), 'http://127.0.0.1:9/hook', 'a vault secret alert_webhook_url wins');

select * from finish();
rollback;
