-- The provisioning queue (a private jobs table with SKIP LOCKED leases, attempts and run_after) and
-- budget push versioning.
begin;
select plan(36);

create function pg_temp.job_of(p_user uuid) returns bigint language sql as $$
  select id from private.provisioning_jobs where user_id = p_user order by id desc limit 1
$$;
create function pg_temp.key_of(p_user uuid) returns uuid language sql as $$
  select id from public.api_keys where user_id = p_user and status <> 'retired'
$$;
-- Claims as the provision-key function does, keeping only this file's jobs.
create function pg_temp.claim(p_lease_seconds integer default 60) returns setof uuid language sql as $$
  select c.user_id from private.claim_provisioning_jobs(100, p_lease_seconds) c where c.user_id::text like '09000000-%'
$$;

insert into auth.users (id, email, aud, role, email_confirmed_at)
select ('09000000-0000-4000-8000-00000000000' || n)::uuid, 'prov-' || n || '@pgtap.test', 'authenticated', 'authenticated', now()
  from generate_series(1, 3) n;

-- ---------------------------------------------------------------- claiming
select ok((select prosrc ~* 'for\s+update\s+skip\s+locked' from pg_proc where oid = 'private.claim_provisioning_jobs(integer, integer)'::regprocedure),
          'claim_provisioning_jobs locks with FOR UPDATE SKIP LOCKED (concurrent workers never wait on or share a job)');
create temp table t_claim1 as
select c.* from private.claim_provisioning_jobs(100, 60) c where c.user_id::text like '09000000-%';
select set_eq($$ select user_id from t_claim1 $$,
              $$ select ('09000000-0000-4000-8000-00000000000' || n)::uuid from generate_series(1, 3) n $$,
              'the three new jobs are claimed');
select is_empty($$ select 1 from t_claim1 c join public.api_keys k on k.id = c.key_id
                    where c.key_value <> k.key_value or c.key_alias <> k.key_alias or c.attempts <> 0 $$,
                'a claim carries the key value and alias chosen at sign-up');
select is((select count(*)::int from private.provisioning_jobs where user_id::text like '09000000-%'
            and status = 'running' and locked_until = now() + interval '60 seconds'), 3,
          'claimed jobs are running under a 60 s lease');
select is_empty($$ select * from pg_temp.claim() $$, 'a claimed job is not claimed again while its lease runs');

-- the worker holding job 1 died: its lease expires
update private.provisioning_jobs set locked_until = now() - interval '1 second'
 where id = pg_temp.job_of('09000000-0000-4000-8000-000000000001');
select set_eq($$ select * from pg_temp.claim() $$, $$ values ('09000000-0000-4000-8000-000000000001'::uuid) $$,
              'a job whose lease expired is claimed again, and only that one');

-- ---------------------------------------------------------------- failing and backing off
update private.settings set value = '2' where key = 'provision_max_attempts';
select is(private.fail_provisioning(pg_temp.job_of('09000000-0000-4000-8000-000000000001'), 1, 'litellm: 503'), 'queued',
          'a first failure re-queues the job');
select results_eq(
  $$ select status, attempts, last_error, locked_until from private.provisioning_jobs
      where id = pg_temp.job_of('09000000-0000-4000-8000-000000000001') $$,
  $$ values ('queued'::text, 1, 'litellm: 503'::text, null::timestamptz) $$,
  'the failure is counted and remembered, the lease released');
select ok((select run_after > now() and run_after <= now() + interval '5 seconds' from private.provisioning_jobs
            where id = pg_temp.job_of('09000000-0000-4000-8000-000000000001')),
          'the retry is backed off (run_after in the future, at most base 5 s for the first retry)');
select is((select last_sync_error from public.api_keys where id = pg_temp.key_of('09000000-0000-4000-8000-000000000001')),
          'litellm: 503', 'the key shows the provisioning error');
select is_empty($$ select * from pg_temp.claim() $$, 'a backed-off job is not claimed before its run_after');

select is(private.fail_provisioning(pg_temp.job_of('09000000-0000-4000-8000-000000000001'), 1, 'litellm: 503 again'), 'dead',
          'after provision_max_attempts (2) failures the job is dead');
select results_eq(
  $$ select j.status, j.attempts, k.status from private.provisioning_jobs j join public.api_keys k on k.id = j.key_id
      where j.id = pg_temp.job_of('09000000-0000-4000-8000-000000000001') $$,
  $$ values ('dead'::text, 2, 'failed'::text) $$, 'the job is dead and the key failed');
select ok((select finished_at is not null from private.provisioning_jobs where id = pg_temp.job_of('09000000-0000-4000-8000-000000000001')),
          'a dead job has a finish time');
select tests.authenticate_as_service_role();
select results_eq($$ select user_id, attempts, last_error from public.admin_dead_jobs where user_id::text like '09000000-%' $$,
                  $$ values ('09000000-0000-4000-8000-000000000001'::uuid, 2, 'litellm: 503 again'::text) $$,
                  'admin_dead_jobs shows the dead job and why');
select tests.clear_authentication();
update private.settings set value = '8' where key = 'provision_max_attempts';

-- a job that fails several times in one call (the function's own retries) counts them all
select is(private.fail_provisioning(pg_temp.job_of('09000000-0000-4000-8000-000000000003'), 3, 'timeout'), 'queued',
          'three tries below the limit of 8 re-queue the job');
select ok((select attempts = 3 and run_after >= now() + interval '10 seconds' and run_after <= now() + interval '20 seconds'
             from private.provisioning_jobs where id = pg_temp.job_of('09000000-0000-4000-8000-000000000003')),
          'the backoff doubles per attempt (attempt 3: 10 to 20 s)');
select throws_ok($$ select private.fail_provisioning(-1, 1, 'x') $$, 'P0002', null, 'failing an unknown job raises');

-- ---------------------------------------------------------------- re-queueing dead jobs
select is(private.requeue_provisioning(), 1, 'requeue_provisioning() re-queues the dead job in one call');
select results_eq(
  $$ select j.status, j.attempts, j.finished_at, k.status, k.last_sync_error
       from private.provisioning_jobs j join public.api_keys k on k.id = j.key_id
      where j.id = pg_temp.job_of('09000000-0000-4000-8000-000000000001') $$,
  $$ values ('queued'::text, 0, null::timestamptz, 'pending'::text, null::text) $$,
  'the job starts over and the key is pending again');
select tests.authenticate_as_service_role();
select is_empty($$ select 1 from public.admin_dead_jobs where user_id::text like '09000000-%' $$, 'admin_dead_jobs is empty again');
select tests.clear_authentication();
select is(private.requeue_provisioning(), 0, 're-queueing again finds nothing to do');
select set_eq($$ select * from pg_temp.claim() $$, $$ values ('09000000-0000-4000-8000-000000000001'::uuid) $$,
              'the re-queued job is claimed at once');

-- ---------------------------------------------------------------- completing
select lives_ok($$ select private.complete_provisioning(pg_temp.job_of('09000000-0000-4000-8000-000000000001'), 1, 2.00) $$,
                'complete_provisioning with the confirmed budget');
select results_eq(
  $$ select j.status, j.attempts, j.locked_until, k.status, k.sync_status, k.litellm_max_budget, k.last_sync_error
       from private.provisioning_jobs j join public.api_keys k on k.id = j.key_id
      where j.id = pg_temp.job_of('09000000-0000-4000-8000-000000000001') $$,
  $$ values ('done'::text, 1, null::timestamptz, 'active'::text, 'synced'::text, 2.00::numeric, null::text) $$,
  'the job is done; the key is active and synced at the 2.00 target');
select ok((select activated_at is not null from public.api_keys where id = pg_temp.key_of('09000000-0000-4000-8000-000000000001')),
          'the key records when it became active');
do $$ begin perform private.complete_provisioning(pg_temp.job_of('09000000-0000-4000-8000-000000000002'), 1, 1.00); end $$;
select results_eq($$ select status, sync_status from public.api_keys where id = pg_temp.key_of('09000000-0000-4000-8000-000000000002') $$,
                  $$ values ('active'::text, 'pending'::text) $$,
                  'a key confirmed at a budget other than its target is active but still pending a push');
select is(private.enqueue_provisioning(pg_temp.key_of('09000000-0000-4000-8000-000000000003')), false,
          'enqueue_provisioning is a no-op while the key has an open job');
do $$ begin perform private.complete_provisioning(pg_temp.job_of('09000000-0000-4000-8000-000000000003'), 1, null); end $$;
select results_eq($$ select status, sync_status, litellm_max_budget from public.api_keys where id = pg_temp.key_of('09000000-0000-4000-8000-000000000003') $$,
                  $$ values ('active'::text, 'pending'::text, null::numeric) $$,
                  'a key whose budget LiteLLM did not confirm is active, nothing is recorded as confirmed, and it is pushed again');

-- ---------------------------------------------------------------- budget push versioning
-- A push reads the target (version v), a payment lands (version v + 1), then the push is confirmed.
create temp table t_push1 as select * from private.budget_push_target(pg_temp.key_of('09000000-0000-4000-8000-000000000001'));
select results_eq($$ select target_max_budget, status, blocked from t_push1 $$,
                  $$ values (2.00::numeric, 'active'::text, false) $$, 'budget_push_target: the absolute target and key state');
do $$
declare
  v_ref text;
begin
  select reference into v_ref from private.create_checkout('09000000-0000-4000-8000-000000000001', 'starter');
  perform private.apply_payment(v_ref, 'success', 500, 500, 'USD', 'test', 'test', 1, now());
end
$$;
select is(private.confirm_budget_push(pg_temp.key_of('09000000-0000-4000-8000-000000000001'), (select budget_version from t_push1), 2.00),
          false, 'confirm_budget_push returns false when a newer ledger change happened after the target was read');
select results_eq($$ select sync_status, litellm_max_budget from public.api_keys where id = pg_temp.key_of('09000000-0000-4000-8000-000000000001') $$,
                  $$ values ('pending'::text, 2.00::numeric) $$, 'the stale push is recorded as what LiteLLM has, still pending');
create temp table t_push2 as select * from private.budget_push_target(pg_temp.key_of('09000000-0000-4000-8000-000000000001'));
select results_eq($$ select target_max_budget, budget_version from t_push2 $$,
                  $$ select 12.00::numeric, budget_version + 1 from t_push1 $$, 'the fresh read has the new target and version');
select is(private.confirm_budget_push(pg_temp.key_of('09000000-0000-4000-8000-000000000001'), (select budget_version from t_push2), 11.00),
          false, 'a confirmation of the wrong amount is not a success');
select is(private.confirm_budget_push(pg_temp.key_of('09000000-0000-4000-8000-000000000001'), (select budget_version from t_push2), 12.00),
          true, 'confirming the current version at the target succeeds');
select results_eq($$ select sync_status, litellm_max_budget from public.api_keys where id = pg_temp.key_of('09000000-0000-4000-8000-000000000001') $$,
                  $$ values ('synced'::text, 12.00::numeric) $$, 'the key is synced at 12.00');

select * from finish();
rollback;
