-- Spend in flight during a key rotation (20261202000320): the retired key stays under reconciliation until
-- its LiteLLM spend has not moved for retired_key_settle_seconds; late spend is charged (the live key's
-- target drops); callback hints for it are accepted; then it is settled (deleted on LiteLLM by
-- reconcile-spend) and left alone. It calls record_spend_batch_as_reported (20261126000500) and
-- record_spend_hints_as_reported (20261126001200); the reset rule wrapped around them (20261202000500) is 19_spend_resets.sql's.
begin;
select plan(25);

-- Other users' settling keys on this live stack share chunks with ours: settle them for this (rolled back)
-- transaction so the lists below hold only this file's keys.
update public.api_keys set settled_at = now() where status = 'retired' and settled_at is null and user_id::text not like '16000000-%';
update private.settings set value = '0' where key = 'rotation_settle_seconds';
update private.settings set value = '900' where key = 'retired_key_settle_seconds';

do $$
begin
  perform tests.active_users('16000000-0000-4000-8000-', 2);
  perform tests.buy('16000000-0000-4000-8000-000000000001', 'starter'); -- 12.00
end
$$;
update public.api_keys set spend = 3.00, spend_observed_at = now() where user_id = '16000000-0000-4000-8000-000000000001';

-- A rotation of user 1, run through its SQL steps as rotate-key does (LiteLLM said 3.00 when retired).
create temp table t_old as select * from public.api_keys where user_id = '16000000-0000-4000-8000-000000000001';
do $$ begin perform tests.rotate('16000000-0000-4000-8000-000000000001', 3.00); end $$;
create temp table t_new as select * from public.api_keys where user_id = '16000000-0000-4000-8000-000000000001' and status = 'active';
create function pg_temp.old_row() returns public.api_keys language sql as $$ select * from public.api_keys where id = (select id from t_old) $$;
-- What LiteLLM reports for the old key, through the chunk's reconcile batch (the new key unchanged at 9.00).
create function pg_temp.observe(p_old_spend numeric) returns jsonb language sql as $$
  select private.record_spend_batch_as_reported((select reconcile_chunk from t_old), jsonb_build_array(
    jsonb_build_object('token', (select key_token from t_old), 'spend', p_old_spend, 'max_budget', 12.00, 'blocked', true),
    jsonb_build_object('token', (select key_token from t_new), 'spend', 0, 'max_budget', 9.00, 'blocked', false)))
$$;

select results_eq($$ select status, retired_spend, settled_at from pg_temp.old_row() $$,
                  $$ values ('retired'::text, 3.00::numeric, null::timestamptz) $$,
                  'the rotation is done; the old key is retired with the 3.00 read at retirement, not settled');
select is((select state from private.key_rotations where old_key_id = (select id from t_old)), 'done', 'the rotation is done');
select ok(exists (select 1 from private.claim_reconcile_chunks(1000, 1, true) c, jsonb_array_elements(c.keys) e
                   where (e ->> 'id')::uuid = (select id from t_old)),
          'reconcile still reads the retired key from LiteLLM');
update public.reconcile_chunks set lease_until = null;

-- ---------------------------------------------------------------- late spend is charged
create temp table t_late as select pg_temp.observe(3.7500000001) as r;
select results_eq($$ select retired_spend, spend from pg_temp.old_row() $$,
                  $$ values (3.75000001::numeric, 3.75000001::numeric) $$,
                  'requests that ended after the swap: the retired key''s spend rises to what LiteLLM reports (rounded up to 1e-8)');
select is((select (r -> 'retired' ->> 'late_spend')::int from t_late), 1, 'the batch reports the late spend');
select is(private.key_target_budget((select id from t_new)), 8.24999999::numeric,
          'the live key''s target drops by the same amount (12.00 - 3.75000001)');
select results_eq($$ select (e ->> 'key_id')::uuid, (e ->> 'target')::numeric from t_late, jsonb_array_elements(r -> 'drift') e $$,
                  $$ select id, 8.24999999::numeric from t_new $$,
                  'the live key (9.00 on LiteLLM) is returned for a push of its new target');
select results_eq($$ select spent, remaining from public.my_account where user_id = '16000000-0000-4000-8000-000000000001' $$,
                  $$ values (3.75000001::numeric, 8.24999999::numeric) $$, 'the account shows it spent');
select ok(exists (select 1 from public.spend_snapshots where key_id = (select id from t_old) and spend = 3.75000001),
          'a snapshot keeps the daily usage complete');
select is((select r -> 'retired' -> 'settle' from t_late), '[]'::jsonb, 'it moved just now: not settled');

select is((select r -> 'retired' ->> 'late_spend' from (select pg_temp.observe(3.5) as r) x), '0',
          'a lower (stale) read never lowers it');
select is((select retired_spend from pg_temp.old_row()), 3.75000001::numeric, 'still 3.75000001');

select results_eq($$ select (e ->> 'key_id')::uuid from jsonb_array_elements(pg_temp.observe(4.00) -> 'retired' -> 'late') e $$,
                  $$ select id from t_new $$,
                  'more late spend (4.00): the live key is returned for a push of its lower target, whatever chunk it is in');

-- ---------------------------------------------------------------- callback hints for the retired key
select is(private.record_spend_hints_as_reported(jsonb_build_array(jsonb_build_object('token', (select key_token from t_old),
                                                                          'auth_spend', 4.00, 'cost', 0.125))),
          '{"matched": 1, "updated": 1}'::jsonb, 'a callback hint for the retired key is accepted (spend at admission + cost, added in SQL)');
select is(public.key_spend(k), 4.125::numeric, 'and shown at once') from pg_temp.old_row() k;
select is(private.key_target_budget((select id from t_new)), 8.00::numeric, 'hints never move a target (pulled 4.00 does)');

-- ---------------------------------------------------------------- settled after the window
update public.api_keys set spend_observed_at = now() - interval '901 seconds', retired_at = now() - interval '950 seconds'
 where id = (select id from t_old);
create temp table t_settle as select pg_temp.observe(4.00) as r;
select results_eq($$ select (e ->> 'key_id')::uuid, e ->> 'key' from t_settle, jsonb_array_elements(r -> 'retired' -> 'settle') e $$,
                  $$ select id, key_value from t_old $$,
                  'unchanged for retired_key_settle_seconds: returned to be deleted on LiteLLM');
select is((select settled_at from pg_temp.old_row()), null::timestamptz, 'settled only once deleted');
select ok(private.retired_key_settled((select id from t_old)), 'deleted: settled');
select ok(not private.retired_key_settled((select id from t_old)), 'settling again changes nothing');
select ok(not exists (select 1 from private.claim_reconcile_chunks(1000, 1, true) c, jsonb_array_elements(c.keys) e
                       where (e ->> 'id')::uuid = (select id from t_old)),
          'a settled key is no longer read');
update public.reconcile_chunks set lease_until = null;
select is(private.record_spend_hints_as_reported(jsonb_build_array(jsonb_build_object('token', (select key_token from t_old), 'spend', 9))),
          '{"matched": 0, "updated": 0}'::jsonb, 'nor hinted');
select is((select retired_spend from pg_temp.old_row()), 4.00::numeric, 'its spend is final');

-- ---------------------------------------------------------------- a retired key LiteLLM no longer knows
do $$ begin perform tests.rotate('16000000-0000-4000-8000-000000000002', 0.5, false); end $$;
select is((private.record_spend_batch_as_reported(k.reconcile_chunk, '[]'::jsonb) -> 'retired' ->> 'gone')::int, 1,
          'a retired key missing on LiteLLM cannot spend any more')
  from public.api_keys k where k.user_id = '16000000-0000-4000-8000-000000000002' and k.status = 'retired';
select ok((select settled_at is not null from public.api_keys where user_id = '16000000-0000-4000-8000-000000000002' and status = 'retired'),
          'it is settled at once');

select * from finish();
rollback;
