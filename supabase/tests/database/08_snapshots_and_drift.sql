-- Spend snapshots and drift (invariants 3 and 4): record_spend_batch takes what LiteLLM reported for a
-- chunk of keys, writes a snapshot only where something changed, flags keys changed behind our back and
-- returns the keys whose LiteLLM budget differs from the ledger target.
begin;
select plan(35);

-- The suite runs against a live stack whose other users (the demo user, integration tests) may own
-- active keys in the same chunks: take them out of reconciliation for this (rolled-back) transaction.
update public.api_keys set status = 'failed' where status = 'active' and user_id::text not like '08000000-%';

-- LiteLLM observations are built from the keys' real tokens; record_spend_batch runs per reconcile
-- chunk, so the helper covers every chunk holding one of this file's keys (seq numbers are not reset
-- between runs, so the keys may straddle a chunk boundary) and merges the results.
create function pg_temp.obs(p_user uuid, p_spend numeric, p_max_budget numeric, p_blocked boolean) returns jsonb
language sql as $$
  select jsonb_build_object('token', k.key_token, 'spend', p_spend, 'max_budget', p_max_budget, 'blocked', p_blocked)
    from public.api_keys k where k.user_id = p_user and k.status <> 'retired'
$$;
create function pg_temp.observe(p_rows jsonb) returns jsonb language plpgsql as $$
declare
  v_chunk integer;
  r jsonb;
  acc jsonb := '{"keys": 0, "found": 0, "missing": 0, "snapshots": 0, "drift": [], "block": []}'::jsonb;
begin
  for v_chunk in select distinct k.reconcile_chunk from public.api_keys k
                  where k.status = 'active' and k.user_id::text like '08000000-%' loop
    r := private.record_spend_batch(v_chunk, p_rows);
    acc := jsonb_build_object(
      'keys', (acc ->> 'keys')::int + (r ->> 'keys')::int,
      'found', (acc ->> 'found')::int + (r ->> 'found')::int,
      'missing', (acc ->> 'missing')::int + (r ->> 'missing')::int,
      'snapshots', (acc ->> 'snapshots')::int + (r ->> 'snapshots')::int,
      'drift', (acc -> 'drift') || (r -> 'drift'),
      'block', (acc -> 'block') || (r -> 'block'));
  end loop;
  return acc;
end
$$;
create function pg_temp.key_of(p_user uuid) returns uuid language sql as $$
  select id from public.api_keys where user_id = p_user and status <> 'retired'
$$;

insert into auth.users (id, email, aud, role, email_confirmed_at)
select ('08000000-0000-4000-8000-00000000000' || n)::uuid, 'snap-' || n || '@pgtap.test', 'authenticated', 'authenticated', now()
  from generate_series(1, 5) n;
-- Keys 1-4 provisioned: LiteLLM confirmed the 2.00 sign-up budget.
do $$
begin
  perform private.complete_provisioning(j.id, 1, 2.00) from private.provisioning_jobs j
   where j.user_id in ('08000000-0000-4000-8000-000000000001', '08000000-0000-4000-8000-000000000002',
                       '08000000-0000-4000-8000-000000000003', '08000000-0000-4000-8000-000000000004');
end
$$;

-- reconcile claims chunks; each claimed chunk lists the tokens of its active keys
create temp table t_claim as select * from private.claim_reconcile_chunks(1000, 120, true);
select ok((select bool_and(exists (select 1 from t_claim c, jsonb_array_elements(c.keys) e where e ->> 'token' = k.key_token))
             from public.api_keys k where k.user_id::text like '08000000-%' and k.status = 'active'),
          'claim_reconcile_chunks lists the token of every active key');
select ok(not exists (select 1 from t_claim c, jsonb_array_elements(c.keys) e, public.api_keys k
                       where k.user_id = '08000000-0000-4000-8000-000000000005' and e ->> 'token' = k.key_token),
          'a pending key is not reconciled');

-- ---------------------------------------------------------------- first observation: everything is new
create temp table t_o1 as select pg_temp.observe(jsonb_build_array(
  pg_temp.obs('08000000-0000-4000-8000-000000000001', 0, 2.00, false),
  pg_temp.obs('08000000-0000-4000-8000-000000000002', 0, 2.00, false),
  pg_temp.obs('08000000-0000-4000-8000-000000000003', 0, 2.00, false),
  pg_temp.obs('08000000-0000-4000-8000-000000000004', 0, 2.00, false))) as r;
select results_eq($$ select (r ->> 'keys')::int, (r ->> 'found')::int, (r ->> 'missing')::int, (r ->> 'snapshots')::int, r -> 'drift' from t_o1 $$,
                  $$ values (4, 4, 0, 4, '[]'::jsonb) $$,
                  'first observation of 4 keys: 4 snapshots, none missing, no drift');
select is((select count(*)::int from public.reconcile_chunks c where c.chunk in (select reconcile_chunk from public.api_keys where user_id::text like '08000000-%')
            and c.last_finished_at is not null and c.lease_until is null), (select count(distinct reconcile_chunk)::int from public.api_keys where user_id::text like '08000000-%'),
          'the chunk lease is released and its finish time recorded');

-- ---------------------------------------------------------------- the same values again: nothing written
create temp table t_o2 as select pg_temp.observe(jsonb_build_array(
  pg_temp.obs('08000000-0000-4000-8000-000000000001', 0, 2.00, false),
  pg_temp.obs('08000000-0000-4000-8000-000000000002', 0, 2.00, false),
  pg_temp.obs('08000000-0000-4000-8000-000000000003', 0, 2.00, false),
  pg_temp.obs('08000000-0000-4000-8000-000000000004', 0, 2.00, false))) as r;
select results_eq($$ select (r ->> 'snapshots')::int, r -> 'drift' from t_o2 $$, $$ values (0, '[]'::jsonb) $$,
                  'unchanged values: no snapshot, no drift');
select is((select count(*)::int from public.spend_snapshots where user_id::text like '08000000-%'), 4,
          'unchanged values add no snapshot row');

-- ---------------------------------------------------------------- spend moves on two keys, one key disappears
create temp table t_snap_before as select max(id) as id from public.spend_snapshots;
create temp table t_o3 as select pg_temp.observe(jsonb_build_array(
  pg_temp.obs('08000000-0000-4000-8000-000000000001', 0.5, 2.00, false),
  pg_temp.obs('08000000-0000-4000-8000-000000000002', 1.25, 2.00, false),
  pg_temp.obs('08000000-0000-4000-8000-000000000003', 0, 2.00, false))) as r;
select results_eq($$ select (r ->> 'found')::int, (r ->> 'missing')::int, (r ->> 'snapshots')::int from t_o3 $$,
                  $$ values (3, 1, 2) $$, 'two keys changed, one missing: 2 snapshots');
select set_eq(
  $$ select user_id, spend, max_budget from public.spend_snapshots where id > (select id from t_snap_before) $$,
  $$ values ('08000000-0000-4000-8000-000000000001'::uuid, 0.5::numeric, 2.00::numeric),
            ('08000000-0000-4000-8000-000000000002'::uuid, 1.25::numeric, 2.00::numeric) $$,
  'exactly one snapshot per changed key, with what LiteLLM reported');
select results_eq($$ select spend from public.api_keys where id = pg_temp.key_of('08000000-0000-4000-8000-000000000002') $$,
                  $$ values (1.25::numeric) $$, 'the key''s current spend is updated');
select results_eq($$ select flag, sync_status, last_sync_error from public.api_keys where id = pg_temp.key_of('08000000-0000-4000-8000-000000000004') $$,
                  $$ values ('deleted_externally'::text, 'failed'::text, 'key not found on LiteLLM'::text) $$,
                  'a key LiteLLM does not know is flagged deleted_externally');
select is_empty($$ select 1 from public.spend_snapshots where id > (select id from t_snap_before)
                     and key_id = pg_temp.key_of('08000000-0000-4000-8000-000000000004') $$,
                'a missing key gets no snapshot');
select is((select flag from public.api_keys where id = pg_temp.key_of('08000000-0000-4000-8000-000000000001')), null,
          'a key seen normally has no flag');

-- ---------------------------------------------------------------- blocks
-- Key 2 has an open dispute (we want it blocked); key 3 gets blocked on LiteLLM by someone else.
update public.api_keys set blocked = true where id = pg_temp.key_of('08000000-0000-4000-8000-000000000002');
create temp table t_snap_before4 as select max(id) as id from public.spend_snapshots;
create temp table t_o4 as select pg_temp.observe(jsonb_build_array(
  pg_temp.obs('08000000-0000-4000-8000-000000000001', 0.5, 2.00, false),
  pg_temp.obs('08000000-0000-4000-8000-000000000002', 1.25, 2.00, false),
  pg_temp.obs('08000000-0000-4000-8000-000000000003', 0, 2.00, true),
  pg_temp.obs('08000000-0000-4000-8000-000000000004', 0, 2.00, false))) as r;
select results_eq($$ select flag, flag_detail from public.api_keys where id = pg_temp.key_of('08000000-0000-4000-8000-000000000003') $$,
                  $$ values ('blocked_externally'::text, 'blocked on LiteLLM, not by a dispute'::text) $$,
                  'a key blocked on LiteLLM without a dispute is flagged blocked_externally');
select results_eq($$ select r -> 'block' -> 0 ->> 'key_id', jsonb_array_length(r -> 'block') from t_o4 $$,
                  $$ values (pg_temp.key_of('08000000-0000-4000-8000-000000000002')::text, 1) $$,
                  'a disputed key LiteLLM has not blocked yet is returned to be blocked');
select results_eq($$ select flag, sync_status from public.api_keys where id = pg_temp.key_of('08000000-0000-4000-8000-000000000004') $$,
                  $$ values (null::text, 'synced'::text) $$, 'the deleted_externally flag clears once LiteLLM has the key again');
select set_eq($$ select key_id from public.spend_snapshots where id > (select id from t_snap_before4) $$,
              $$ select pg_temp.key_of('08000000-0000-4000-8000-000000000003') $$,
              'only the key whose block state changed gets a snapshot');
create temp table t_o5 as select pg_temp.observe(jsonb_build_array(
  pg_temp.obs('08000000-0000-4000-8000-000000000001', 0.5, 2.00, false),
  pg_temp.obs('08000000-0000-4000-8000-000000000002', 1.25, 2.00, true),
  pg_temp.obs('08000000-0000-4000-8000-000000000003', 0, 2.00, true),
  pg_temp.obs('08000000-0000-4000-8000-000000000004', 0, 2.00, false))) as r;
select is((select flag from public.api_keys where id = pg_temp.key_of('08000000-0000-4000-8000-000000000002')), null,
          'a key blocked on LiteLLM because of a dispute is not flagged');
select is((select r -> 'block' from t_o5), '[]'::jsonb, 'nothing left to block');

-- ---------------------------------------------------------------- drift
-- Key 1's user buys a pack (target 12.00, LiteLLM still says 2.00); key 2's budget was changed on
-- LiteLLM by hand (5.00 instead of 2.00); keys 3 and 4 match their 2.00 target.
do $$
declare
  v_ref text;
begin
  select reference into v_ref from private.create_checkout('08000000-0000-4000-8000-000000000001', 'starter');
  perform private.apply_payment(v_ref, 'success', 500, 500, 'USD', 'test', 'test', 1, now());
end
$$;
create temp table t_o6 as select pg_temp.observe(jsonb_build_array(
  pg_temp.obs('08000000-0000-4000-8000-000000000001', 0.5, 2.00, false),
  pg_temp.obs('08000000-0000-4000-8000-000000000002', 1.25, 5.00, true),
  pg_temp.obs('08000000-0000-4000-8000-000000000003', 0, 2.00, true),
  pg_temp.obs('08000000-0000-4000-8000-000000000004', 0, 2.00, false))) as r;
select set_eq(
  $$ select (e ->> 'key_id')::uuid as key_id, (e ->> 'target')::numeric as target, (e ->> 'observed')::numeric as observed from t_o6, jsonb_array_elements(r -> 'drift') e $$,
  $$ values (pg_temp.key_of('08000000-0000-4000-8000-000000000001'), 12.00::numeric, 2.00::numeric),
            (pg_temp.key_of('08000000-0000-4000-8000-000000000002'), 2.00::numeric, 5.00::numeric) $$,
  'the drift list holds exactly the keys whose LiteLLM max_budget differs from the ledger target'
);
select is((select (e ->> 'version')::bigint from t_o6, jsonb_array_elements(r -> 'drift') e
            where (e ->> 'key_id')::uuid = pg_temp.key_of('08000000-0000-4000-8000-000000000001')),
          (select budget_version from public.api_keys where id = pg_temp.key_of('08000000-0000-4000-8000-000000000001')),
          'each drift entry carries the budget version the repair push must confirm');
select results_eq($$ select (r ->> 'snapshots')::int from t_o6 $$, $$ values (1) $$,
                  'a changed max_budget is a change: one snapshot (key 2)');
select set_eq($$ select key_id from public.admin_drift where user_id::text like '08000000-%' $$,
              $$ values (pg_temp.key_of('08000000-0000-4000-8000-000000000001')), (pg_temp.key_of('08000000-0000-4000-8000-000000000002')) $$,
              'admin_drift lists exactly the keys whose confirmed budget differs from the ledger target');
select results_eq($$ select litellm_max_budget, target_max_budget from public.admin_drift
                      where key_id = pg_temp.key_of('08000000-0000-4000-8000-000000000001') $$,
                  $$ values (2.00::numeric, 12.00::numeric) $$, 'admin_drift shows the confirmed budget and the target');

-- the repair: push 12.00 to key 1 and 2.00 to key 2; the next observation agrees
select ok(private.confirm_budget_push(pg_temp.key_of('08000000-0000-4000-8000-000000000001'),
                                      (select budget_version from public.api_keys where id = pg_temp.key_of('08000000-0000-4000-8000-000000000001')),
                                      12.00), 'confirming the repair push of key 1 succeeds');
select set_eq($$ select key_id from public.admin_drift where user_id::text like '08000000-%' $$,
              $$ values (pg_temp.key_of('08000000-0000-4000-8000-000000000002')) $$,
              'after the push key 1 leaves admin_drift');
create temp table t_o7 as select pg_temp.observe(jsonb_build_array(
  pg_temp.obs('08000000-0000-4000-8000-000000000001', 0.5, 12.00, false),
  pg_temp.obs('08000000-0000-4000-8000-000000000002', 1.25, 2.00, true),
  pg_temp.obs('08000000-0000-4000-8000-000000000003', 0, 2.00, true),
  pg_temp.obs('08000000-0000-4000-8000-000000000004', 0, 2.00, false))) as r;
select is((select r -> 'drift' from t_o7), '[]'::jsonb, 'when LiteLLM agrees with every target the drift list is empty');
select is_empty($$ select 1 from public.admin_drift where user_id::text like '08000000-%' $$, 'and admin_drift is empty');
select is((select count(*)::int from public.api_keys where user_id::text like '08000000-%' and status = 'active' and sync_status = 'synced'), 4,
          'every key is synced');
select is((select flag from public.api_keys where id = pg_temp.key_of('08000000-0000-4000-8000-000000000003')), 'blocked_externally',
          'the external block is still flagged for a person (never silently undone)');

-- ---------------------------------------------------------------- what the user sees
select tests.authenticate_as('08000000-0000-4000-8000-000000000002');
select results_eq($$ select spent, remaining, stale from public.my_account $$,
                  $$ values (1.25::numeric, 0.75::numeric, false) $$, 'the dashboard shows the observed spend, not stale');
select ok((select last_synced_at is not null from public.my_account), 'the dashboard knows when the key was last synced');
select results_eq($$ select max_budget, spend, blocked from public.my_key $$,
                  $$ values (2.00::numeric, 1.25::numeric, true) $$, 'my_key shows the confirmed budget, spend and block');
select tests.clear_authentication();

-- ---------------------------------------------------------------- my_daily_usage: snapshot deltas per UTC day
insert into public.spend_snapshots (key_id, user_id, spend, max_budget, observed_at)
select k.id, k.user_id, v.spend, 2.00, v.at
  from public.api_keys k,
       (values (1.00, '2026-01-01 08:00+00'::timestamptz), (2.50, '2026-01-01 20:00+00'), (4.00, '2026-01-02 09:00+00'),
               (4.00, '2026-01-03 10:00+00'), (3.90, '2026-01-04 10:00+00'), (4.40, '2026-01-04 23:59+00')) v(spend, at)
 where k.user_id = '08000000-0000-4000-8000-000000000005';
select tests.authenticate_as('08000000-0000-4000-8000-000000000005');
select results_eq(
  $$ select day, spend from public.my_daily_usage order by day $$,
  $$ values ('2026-01-01'::date, 2.50::numeric), ('2026-01-02', 1.50), ('2026-01-03', 0.00), ('2026-01-04', 0.50) $$,
  'my_daily_usage sums snapshot deltas per UTC day (a drop counts as 0)'
);
select is((select sum(spend) from public.my_daily_usage), 4.50::numeric,
          'the daily sums add up to the spend growth seen (1.00 + 1.50 + 1.50 + 0.50)');
select tests.authenticate_as('08000000-0000-4000-8000-000000000001');
select results_eq($$ select spend from public.my_daily_usage $$, $$ values (0.5::numeric) $$,
                  'another user sees only their own usage (key 1: 0.50 today)');
select tests.clear_authentication();

select * from finish();
rollback;
