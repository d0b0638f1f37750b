-- LiteLLM state loss (20261202000500): a decrease in LiteLLM's spend for a key is a reset. The key's offset
-- grows by (recorded - reported), the recorded spend never goes down, and the max_budget pushed to LiteLLM
-- is the ledger target minus the offset, so LiteLLM's own counter still stops the user at the right total.
begin;
select plan(25);

update public.api_keys set settled_at = now() where status = 'retired' and settled_at is null and user_id::text not like '19000000-%';
update private.settings set value = '0' where key = 'rotation_settle_seconds';
update private.settings set value = '900' where key = 'retired_key_settle_seconds';
do $$ begin perform tests.active_users('19000000-0000-4000-8000-', 2); end $$;

-- What LiteLLM reports for a user's keys (token -> spend), through reconcile's one call per chunk.
create function pg_temp.key_of(p_n integer, p_status text default 'active') returns public.api_keys language sql as $$
  select * from public.api_keys where user_id = ('19000000-0000-4000-8000-' || lpad(p_n::text, 12, '0'))::uuid and status = p_status
$$;
create function pg_temp.observe(p_key public.api_keys, p_spend numeric) returns jsonb language sql as $$
  select private.record_spend_batch(p_key.reconcile_chunk, jsonb_build_array(
    jsonb_build_object('token', p_key.key_token, 'spend', p_spend::text, 'max_budget', p_key.litellm_max_budget, 'blocked', p_key.litellm_blocked)))
$$;
create function pg_temp.resets_of(p_n integer) returns bigint language sql as $$
  select count(*) from private.spend_resets where user_id = ('19000000-0000-4000-8000-' || lpad(p_n::text, 12, '0'))::uuid
$$;
create temp table t_open_before as select spend_resets from private.health_status();

-- ---------------------------------------------------------------- the example of the issue: 2.00 granted
select is((select granted from public.remaining_credit((select user_id from pg_temp.key_of(1)))), 2.00::numeric, 'user 1 was granted 2.00');
select is((select pg_temp.observe(pg_temp.key_of(1), 1.50) ->> 'resets'), '0', 'spend rising is no reset');
create temp table t_r1 as select pg_temp.observe(pg_temp.key_of(1), 0.10) as r;
select is((select r ->> 'resets' from t_r1), '1', 'LiteLLM reporting 0.10 after 1.50 is a reset');
select results_eq($$ select spend_offset, spend from pg_temp.key_of(1) $$, $$ values (1.40::numeric, 1.50::numeric) $$,
                  'the offset is 1.40 and the recorded spend stays 1.50');
select is((select remaining from public.remaining_credit((select user_id from pg_temp.key_of(1)))), 0.50::numeric,
          'no credit regained: 0.50 remaining');
select is(private.key_target_budget((select id from pg_temp.key_of(1))), 0.60::numeric,
          'the max_budget for LiteLLM is the target minus the offset: 0.60');
select results_eq($$ select (e ->> 'target')::numeric from t_r1, jsonb_array_elements(r -> 'drift') e $$, $$ values (0.60::numeric) $$,
                  'the batch asks for a push of the lowered max_budget');
select results_eq($$ select recorded_spend, litellm_spend, offset_before, offset_after, spend_lost_by_litellm
                      from public.admin_spend_resets where key_id = (select id from pg_temp.key_of(1)) $$,
                  $$ values (1.50::numeric, 0.10::numeric, 0::numeric, 1.40::numeric, 1.40::numeric) $$,
                  'the reset is recorded with what was found');
select is((select spend_resets from private.health_status()) - (select spend_resets from t_open_before), 1,
          'health counts the reset until an operator acknowledges it');

-- After the reset, LiteLLM's counter rises from 0.10: the recorded spend is offset + LiteLLM's spend.
select is((select pg_temp.observe(pg_temp.key_of(1), 0.30) ->> 'resets'), '0', 'spend rising after the reset is no reset');
select results_eq($$ select spend_offset, spend from pg_temp.key_of(1) $$, $$ values (1.40::numeric, 1.70::numeric) $$,
                  'recorded spend 1.70 = 1.40 + 0.30');
select ok(exists (select 1 from public.spend_snapshots where key_id = (select id from pg_temp.key_of(1)) and spend = 1.70),
          'the snapshot holds the recorded spend (daily usage stays monotonic)');

-- A callback hint is LiteLLM's spend too.
select is((private.record_spend_hints(jsonb_build_array(jsonb_build_object('token', (select key_token from pg_temp.key_of(1)), 'spend', 0.35))) ->> 'updated'),
          '1', 'a hint above the recorded spend is taken');
select is((select hinted_spend from pg_temp.key_of(1)), 1.75::numeric, 'the hint counts as offset + 0.35 = 1.75');
select is((private.record_spend_hints(jsonb_build_array(jsonb_build_object('token', (select key_token from pg_temp.key_of(1)), 'auth_spend', 0.10, 'cost', 0.05))) ->> 'updated'),
          '0', 'a hint of 1.40 + 0.15 is below what is known: ignored');

-- ---------------------------------------------------------------- resets stack
select is((select pg_temp.observe(pg_temp.key_of(1), 0.05) ->> 'resets'), '1', 'a second reset (0.30 -> 0.05)');
select results_eq($$ select spend_offset, spend, private.key_target_budget(id) from pg_temp.key_of(1) $$,
                  $$ values (1.65::numeric, 1.70::numeric, 0.35::numeric) $$,
                  'offsets stack: 1.40 + 0.25 = 1.65; spend stays 1.70; max_budget 2.00 - 1.65 = 0.35');
select is(pg_temp.resets_of(1), 2::bigint, 'each reset is recorded');
select is((select pg_temp.observe(pg_temp.key_of(1), 0.05) ->> 'resets'), '0', 'the same lower value again is not a new reset');

-- ---------------------------------------------------------------- a reset during a rotation (user 2, 2.00)
do $$ begin perform pg_temp.observe(pg_temp.key_of(2), 1.20); end $$;
do $$ begin perform pg_temp.observe(pg_temp.key_of(2), 0.20); end $$; -- restored: offset 1.00
create temp table t_old as select * from pg_temp.key_of(2);
-- rotate-key reads LiteLLM's 0.30 at retirement (0.10 more since the restore): the freeze keeps 1.20
do $$ begin perform tests.rotate('19000000-0000-4000-8000-000000000002', 0.30); end $$;
select results_eq($$ select retired_spend, spend_offset from public.api_keys where id = (select id from t_old) $$,
                  $$ values (1.20::numeric, 1.00::numeric) $$, 'the retired key keeps the recorded spend and its offset');
select is(private.key_target_budget((select id from pg_temp.key_of(2))), 0.80::numeric,
          'the new key (no offset) gets the ledger minus the retired spend: 0.80');
-- reconcile reads the settling retired key: LiteLLM 0.30 is offset + 0.30 = 1.30, late spend
do $$ begin perform pg_temp.observe((select k from public.api_keys k where k.id = (select id from t_old)), 0.30); end $$;
select results_eq($$ select retired_spend, private.key_target_budget((select id from pg_temp.key_of(2))) from public.api_keys where id = (select id from t_old) $$,
                  $$ values (1.30::numeric, 0.70::numeric) $$,
                  'the spend LiteLLM counted after its restore is charged as late spend (live key 0.70)');
-- LiteLLM restored again while the old key settles: a reset of the retired key, no credit back
do $$ begin perform pg_temp.observe((select k from public.api_keys k where k.id = (select id from t_old)), 0); end $$;
select results_eq($$ select retired_spend, spend_offset, private.key_target_budget((select id from pg_temp.key_of(2)))
                      from public.api_keys where id = (select id from t_old) $$,
                  $$ values (1.30::numeric, 1.30::numeric, 0.70::numeric) $$,
                  'a reset of a retired key: its spend stays 1.30, the live key''s target is unchanged');

-- ---------------------------------------------------------------- acknowledged
select cmp_ok(private.acknowledge_spend_resets('pgtap'), '>=', 4, 'an operator acknowledges the open resets');
select is((select spend_resets from private.health_status()), 0, 'health no longer counts them');

select * from finish();
rollback;
