-- Key rotation (20261126000900): the SQL state machine step by step, stopping after every step as a
-- killed run would, and rerunning each step (idempotent). The credit moves to the new key exactly:
-- new target = ledger total - spend of the retired keys; nothing is granted twice.
begin;
select plan(46);

create function pg_temp.live(p_user uuid) returns public.api_keys language sql as $$
  select * from public.api_keys where user_id = p_user and status <> 'retired'
$$;
create function pg_temp.rot(p_user uuid) returns private.key_rotations language sql as $$
  select * from private.key_rotations where user_id = p_user order by id desc limit 1
$$;

update private.settings set value = '0' where key = 'rotation_settle_seconds';
insert into auth.users (id, email, aud, role, email_confirmed_at)
select ('10000000-0000-4000-8000-00000000000' || n)::uuid, 'rot-' || n || '@pgtap.test', 'authenticated', 'authenticated', now()
  from generate_series(1, 5) n;
-- Users 1, 3, 4, 5 provisioned at 2.00; user 2's key is still pending.
do $$
begin
  perform private.complete_provisioning(j.id, 1, 2.00) from private.provisioning_jobs j
   where j.user_id in ('10000000-0000-4000-8000-000000000001', '10000000-0000-4000-8000-000000000003',
                       '10000000-0000-4000-8000-000000000004', '10000000-0000-4000-8000-000000000005');
  perform tests.buy('10000000-0000-4000-8000-000000000001', 'starter');
end
$$;
-- User 1: 12.00 granted, 3.50 spent as reconcile last saw it.
update public.api_keys set spend = 3.5, spend_observed_at = now() where user_id = '10000000-0000-4000-8000-000000000001';
create temp table t_old as select * from pg_temp.live('10000000-0000-4000-8000-000000000001');

-- ---------------------------------------------------------------- step 1: open
select throws_ok($$ select * from private.start_key_rotation('10000000-0000-4000-8000-000000000002', 'pgtap') $$,
                 'P0001', null, 'a key that is not active yet cannot be rotated');
select throws_ok($$ select * from private.start_key_rotation('10000000-0000-4000-8000-0000000000ff', 'pgtap') $$,
                 'P0001', null, 'an unknown user cannot be rotated');
create temp table t_s1 as select * from private.start_key_rotation('10000000-0000-4000-8000-000000000001', 'pgtap');
select results_eq($$ select state, claimed, is_new from t_s1 $$, $$ values ('opened'::text, true, true) $$,
                  'start_key_rotation opens a rotation and takes its lease');
select results_eq($$ select r.old_key_id, r.new_key_alias, r.new_key_id from private.key_rotations r where r.id = (select rotation_id from t_s1) $$,
                  $$ select id, key_alias || '-2', null::uuid from t_old $$,
                  'the rotation names the old key and a new alias; the new key value is chosen now');
select ok((select new_key_value ~ '^sk-[A-Za-z0-9_-]{32}$' and new_key_value <> (select key_value from t_old)
             from private.key_rotations where id = (select rotation_id from t_s1)), 'the new key value is a fresh sk- key');
select results_eq($$ select rotation_id, state, claimed, is_new from private.start_key_rotation('10000000-0000-4000-8000-000000000001', 'pgtap') $$,
                  $$ select rotation_id, 'opened'::text, false, false from t_s1 $$,
                  'starting again continues the same rotation, and does not take a lease another run holds');
select is((select count(*)::int from public.api_keys where user_id = '10000000-0000-4000-8000-000000000001' and status <> 'retired'), 1,
          'while opened the user still has exactly one live key (the old one)');
select throws_ok($$ insert into private.key_rotations (user_id, old_key_id, new_key_value, new_key_alias, requested_by)
                    select user_id, id, private.new_key_value(), 'dup-alias', 'pgtap' from t_old $$,
                 '23505', null, 'a second unfinished rotation of the same user is refused by the database');

-- out-of-order steps are refused
select throws_ok(format('select * from private.rotation_retire_old(%s, 3.5)', (select rotation_id from t_s1)),
                 'P0001', null, 'the old key cannot be retired before it is blocked');
select throws_ok(format('select private.rotation_new_key_active(%s, 8.5)', (select rotation_id from t_s1)),
                 'P0001', null, 'the new key cannot be activated before the old one is retired');
select throws_ok(format('select private.rotation_finish(%s)', (select rotation_id from t_s1)),
                 'P0001', null, 'a rotation cannot finish before the new key is active');

-- ---------------------------------------------------------------- step 2: block
select lives_ok(format('select private.rotation_block_intent(%s)', (select rotation_id from t_s1)), 'block intent recorded');
select results_eq($$ select blocked, block_synced from public.api_keys where id = (select id from t_old) $$,
                  $$ values (true, false) $$, 'we now want the old key blocked (reconcile would push it, never flag it)');
select is(private.rotation_old_blocked((select rotation_id from t_s1)), 0::numeric,
          'LiteLLM blocked it: with rotation_settle_seconds 0 there is nothing to wait for');
select results_eq($$ select r.state, k.litellm_blocked, k.block_synced from private.key_rotations r join public.api_keys k on k.id = r.old_key_id
                      where r.id = (select rotation_id from t_s1) $$,
                  $$ values ('blocked'::text, true, true) $$, 'state blocked; the block is confirmed');
select lives_ok(format('select private.rotation_old_blocked(%s)', (select rotation_id from t_s1)), 'blocking again (a rerun) is harmless');

-- the settle time holds the retirement back while LiteLLM may still be writing spend
update private.settings set value = '20' where key = 'rotation_settle_seconds';
select is((select settle_remaining_seconds from private.key_rotation_context((select rotation_id from t_s1))), 20::numeric,
          'the context says how long to wait for the spend to settle');
select throws_like(format('select * from private.rotation_retire_old(%s, 3.5)', (select rotation_id from t_s1)),
                   '%spend may still be arriving%', 'retiring before the settle time is refused');
update private.settings set value = '0' where key = 'rotation_settle_seconds';

-- a payment lands mid-rotation: it is on the old key's ledger total, and moves with the credit
select lives_ok($$ select tests.buy('10000000-0000-4000-8000-000000000001', 'starter') $$, 'a payment during the rotation is credited');

-- ---------------------------------------------------------------- step 3: retire with the final spend
create temp table t_r3 as select * from private.rotation_retire_old((select rotation_id from t_s1), 3.75);
select is((select target_max_budget from t_r3), 18.25::numeric,
          'the new key''s target is the ledger (22.00) minus the old key''s final spend (3.75): the remaining credit exactly');
select results_eq($$ select status, retired_spend, spend from public.api_keys where id = (select id from t_old) $$,
                  $$ values ('retired'::text, 3.75::numeric, 3.75::numeric) $$,
                  'the old key is retired with the final spend LiteLLM reported');
select ok(exists (select 1 from public.spend_snapshots where key_id = (select id from t_old) and spend = 3.75),
          'the spend written after the last reconcile is kept as a snapshot (daily usage stays complete)');
select results_eq($$ select k.id, k.status, k.key_value, k.key_alias from public.api_keys k where k.user_id = '10000000-0000-4000-8000-000000000001' and k.status <> 'retired' $$,
                  $$ select r.new_key_id, 'pending'::text, r.new_key_value, r.new_key_alias from private.key_rotations r where r.id = (select rotation_id from t_s1) $$,
                  'in the same transaction the new key row appears, pending, with the value chosen at step 1: still one live key');
select results_eq($$ select * from private.rotation_retire_old((select rotation_id from t_s1), 9.99) $$,
                  $$ select new_key_id, target_max_budget from t_r3 $$,
                  'retiring again (a rerun) changes nothing, whatever spend it brings');
select is((select count(*)::int from public.api_keys where user_id = '10000000-0000-4000-8000-000000000001'), 2, 'no third key row');
select results_eq($$ select granted, spent, remaining from public.my_account where user_id = '10000000-0000-4000-8000-000000000001' $$,
                  $$ values (22.00::numeric, 3.75::numeric, 18.25::numeric) $$,
                  'my_account: remaining = granted - spent over both keys, unchanged by the rotation');
create temp table t_reconciled as
select (e ->> 'id')::uuid as id from private.claim_reconcile_chunks(1000, 1, true) c, jsonb_array_elements(c.keys) e;
select results_eq($$ select k.status from t_reconciled r join public.api_keys k using (id)
                      where k.user_id = '10000000-0000-4000-8000-000000000001' $$,
                  $$ values ('retired'::text) $$,
                  'the pending new key is not reconciled; the retired key is, until its spend has settled (late spend is charged)');
update public.reconcile_chunks set lease_until = null;

-- ---------------------------------------------------------------- step 4-5: the new key is confirmed on LiteLLM
select lives_ok(format('select private.rotation_new_key_active(%s, 18.25)', (select rotation_id from t_s1)), 'new key active');
select results_eq($$ select status, sync_status, litellm_max_budget from pg_temp.live('10000000-0000-4000-8000-000000000001') $$,
                  $$ values ('active'::text, 'synced'::text, 18.25::numeric) $$, 'the new key is active and synced at the target');
select lives_ok(format('select private.rotation_new_key_active(%s, 18.25)', (select rotation_id from t_s1)), 'activating again is a no-op');
select is((select state from pg_temp.rot('10000000-0000-4000-8000-000000000001')), 'activated', 'state activated');

-- ---------------------------------------------------------------- step 6-7: old key deleted, done
select lives_ok(format('select private.rotation_finish(%s)', (select rotation_id from t_s1)), 'rotation finished');
select results_eq($$ select state, locked_until, finished_at is not null from pg_temp.rot('10000000-0000-4000-8000-000000000001') $$,
                  $$ values ('done'::text, null::timestamptz, true) $$, 'done, lease released');
select lives_ok(format('select private.rotation_finish(%s)', (select rotation_id from t_s1)), 'finishing again is a no-op');

-- ---------------------------------------------------------------- a second rotation
select throws_like($$ select * from private.start_key_rotation('10000000-0000-4000-8000-000000000001', 'user', true) $$,
                   '%rotated less than%', 'a user cannot start another rotation within rotation_user_min_interval_seconds');
create temp table t_s2 as select * from private.start_key_rotation('10000000-0000-4000-8000-000000000001', 'admin:pgtap');
select is((select is_new from t_s2), true, 'an operator can (no rate limit)');
update public.api_keys set spend = 1.25 where id = (select old_key_id from private.key_rotations where id = (select rotation_id from t_s2));
do $$
declare
  v_id bigint := (select rotation_id from t_s2);
begin
  perform private.rotation_block_intent(v_id);
  perform private.rotation_old_blocked(v_id);
end
$$;
select is((select target_max_budget from private.rotation_retire_old((select rotation_id from t_s2), 1.25)), 17.00::numeric,
          'the second new key gets 22.00 - 3.75 - 1.25 = 17.00: every retired key''s spend counts once');
select is((select new_key_alias from private.key_rotations where id = (select rotation_id from t_s2)),
          'lc-10000000-0000-4000-8000-000000000001-3', 'the third key has its own alias');

-- ---------------------------------------------------------------- precision, missing keys, disputes, clamping
do $$ begin perform private.start_key_rotation('10000000-0000-4000-8000-000000000003', 'pgtap');
            perform private.rotation_block_intent((select id from pg_temp.rot('10000000-0000-4000-8000-000000000003')));
            perform private.rotation_old_blocked((select id from pg_temp.rot('10000000-0000-4000-8000-000000000003'))); end $$;
create temp table t_r3p as
select * from private.rotation_retire_old((select id from pg_temp.rot('10000000-0000-4000-8000-000000000003')), 0.1234567891234);
select results_eq(
  $$ select r.target_max_budget, k.retired_spend
       from t_r3p r, public.api_keys k where k.user_id = '10000000-0000-4000-8000-000000000003' and k.status = 'retired' $$,
  $$ values (1.87654321::numeric, 0.12345679::numeric) $$,
  'a float spend is rounded up to 1e-8 USD, so the target has at most 8 decimals (exact through LiteLLM''s float)');

-- user 4: the old key is gone from LiteLLM (deleted behind our back) and a dispute is open
update public.api_keys set spend = 0.5 where user_id = '10000000-0000-4000-8000-000000000004';
do $$
declare
  v_ref text := tests.buy('10000000-0000-4000-8000-000000000004', 'starter');
begin
  perform private.apply_dispute(10004, v_ref, 'create', null);
  perform private.start_key_rotation('10000000-0000-4000-8000-000000000004', 'pgtap');
  perform private.rotation_block_intent((select id from pg_temp.rot('10000000-0000-4000-8000-000000000004')));
  perform private.rotation_old_blocked((select id from pg_temp.rot('10000000-0000-4000-8000-000000000004')), true);
  perform private.rotation_retire_old((select id from pg_temp.rot('10000000-0000-4000-8000-000000000004')), null);
end
$$;
select results_eq($$ select retired_spend from public.api_keys where user_id = '10000000-0000-4000-8000-000000000004' and status = 'retired' $$,
                  $$ values (0.5::numeric) $$, 'an old key LiteLLM no longer knows is retired with the spend reconcile last saw');
select results_eq($$ select blocked, block_synced from pg_temp.live('10000000-0000-4000-8000-000000000004') $$,
                  $$ values (true, false) $$, 'an open dispute keeps the new key blocked (to be pushed)');

-- user 5: the old key overshot its budget (LiteLLM lets the last request overshoot)
update public.api_keys set spend = 2.0004 where user_id = '10000000-0000-4000-8000-000000000005';
do $$
begin
  perform private.start_key_rotation('10000000-0000-4000-8000-000000000005', 'pgtap');
  perform private.rotation_block_intent((select id from pg_temp.rot('10000000-0000-4000-8000-000000000005')));
  perform private.rotation_old_blocked((select id from pg_temp.rot('10000000-0000-4000-8000-000000000005')));
end
$$;
select is((select target_max_budget from private.rotation_retire_old((select id from pg_temp.rot('10000000-0000-4000-8000-000000000005')), 2.0004)),
          0::numeric, 'the target never goes below 0 (LiteLLM refuses a negative max_budget; 0 blocks the key)');

-- ---------------------------------------------------------------- a run that stops: lease, back-off, sweep
select is(private.rotation_failed((select id from pg_temp.rot('10000000-0000-4000-8000-000000000003')), 'LiteLLM /x 500'), 'retired',
          'rotation_failed records the error and says where the rotation stands');
select results_eq($$ select attempts, locked_until, last_error, next_attempt_at > now() from pg_temp.rot('10000000-0000-4000-8000-000000000003') $$,
                  $$ values (1, null::timestamptz, 'LiteLLM /x 500'::text, true) $$, 'attempt counted, lease released, retry backed off');
select ok(not exists (select 1 from private.claim_stalled_rotations(100) c where c.user_id = '10000000-0000-4000-8000-000000000003'),
          'the sweep does not take it before its retry time');
update private.key_rotations set next_attempt_at = now() - interval '1 second' where user_id = '10000000-0000-4000-8000-000000000003';
select results_eq($$ select c.state from private.claim_stalled_rotations(100) c where c.user_id = '10000000-0000-4000-8000-000000000003' $$,
                  $$ values ('retired'::text) $$, 'then the sweep claims it, from where it stopped');

select * from finish();
rollback;
