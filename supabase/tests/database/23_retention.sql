-- Retention (20261202001010): the prune job deletes old operational rows in bounded steps and keeps what the
-- money needs: each key's last snapshot of every day (daily usage unchanged, the latest snapshot kept), a
-- disputed payment's webhook deliveries, the newest successful reconcile run, each key's newest repair.
begin;
select plan(17);

select isnt_empty($$ select 1 from cron.job where jobname = 'retention-prune' and schedule = '* * * * *'
                     and command like '%private.prune_operational()%' $$, 'the prune job runs every minute');
select is((select count(*)::int from private.settings where key like 'retention\_%'), 6, 'its settings are rows of private.settings');

-- ---------------------------------------------------------------- spend snapshots
select tests.active_users('23000000-0000-4000-8000-', 2);
create temp table t_key as select k.id, k.user_id from public.api_keys k
 where k.user_id in ('23000000-0000-4000-8000-000000000001', '23000000-0000-4000-8000-000000000002') and k.status = 'active';
-- Cumulative spend, oldest first (ids grow with time, as reconcile writes them): key 1 on three old days and
-- twice recently; key 2 once, long ago (its only and latest snapshot).
insert into public.spend_snapshots (key_id, user_id, spend, max_budget, observed_at)
select k.id, k.user_id, v.spend, 2, (date_trunc('day', now() at time zone 'utc') at time zone 'utc') - v.age
  from t_key k, (values
    ('23000000-0000-4000-8000-000000000002'::uuid, 0.40::numeric, interval '9 days' - interval '3 hours'),
    ('23000000-0000-4000-8000-000000000001', 0.10, interval '6 days' - interval '1 hour'),
    ('23000000-0000-4000-8000-000000000001', 0.20, interval '6 days' - interval '5 hours'),
    ('23000000-0000-4000-8000-000000000001', 0.30, interval '6 days' - interval '23 hours'),
    ('23000000-0000-4000-8000-000000000001', 0.35, interval '5 days' - interval '2 hours'),
    ('23000000-0000-4000-8000-000000000001', 0.50, interval '4 days' - interval '1 hour'),
    ('23000000-0000-4000-8000-000000000001', 0.55, interval '4 days' - interval '20 hours')
  ) v(user_id, spend, age)
 where k.user_id = v.user_id
 order by v.age desc;
insert into public.spend_snapshots (key_id, user_id, spend, max_budget, observed_at)
select k.id, k.user_id, v.spend, 2, now() - v.age
  from t_key k, (values (0.60::numeric, interval '2 hours'), (0.70, interval '1 hour')) v(spend, age)
 where k.user_id = '23000000-0000-4000-8000-000000000001';
create temp table t_snap as select s.id, s.key_id, s.spend, s.observed_at from public.spend_snapshots s join t_key k on k.id = s.key_id;
-- The thinning has caught up to these rows (earlier snapshots of this database are not this test's).
update private.retention_state set next_id = (select min(id) from t_snap) where name = 'spend_snapshots';

select tests.authenticate_as('23000000-0000-4000-8000-000000000001');
create temp table t_usage_before as select day, spend from public.my_daily_usage;
select tests.clear_authentication();

-- Bounded: a run looks at retention_prune_batch ids at most.
update private.settings set value = '2' where key = 'retention_prune_batch';
select private.prune_operational();
select is((select next_id from private.retention_state where name = 'spend_snapshots'), (select min(id) + 2 from t_snap),
          'one run looks at retention_prune_batch snapshot ids and moves the watermark past them');
select is((select count(*)::int from t_snap t where not exists (select 1 from public.spend_snapshots s where s.id = t.id)), 1,
          'and deletes only among them (key 2''s 0.40 is alone on its day; key 1''s 0.10 has later ones)');
update private.settings set value = '20000' where key = 'retention_prune_batch';
select private.prune_operational();

select results_eq(
  $$ select s.spend from public.spend_snapshots s join t_key k on k.id = s.key_id order by s.id $$,
  $$ values (0.40::numeric), (0.30), (0.35), (0.55), (0.60), (0.70) $$,
  'old snapshots are thinned to the last one per key and UTC day; the recent ones all stay'
);
select is((select next_id from private.retention_state where name = 'spend_snapshots'),
          (select id from t_snap where spend = 0.60),
          'the watermark stops at the first snapshot still inside retention_snapshot_full_days');
select is((select spend from public.spend_snapshots s join t_key k on k.id = s.key_id
            where k.user_id = '23000000-0000-4000-8000-000000000002'), 0.40::numeric,
          'a key''s latest snapshot stays, however old');
select tests.authenticate_as('23000000-0000-4000-8000-000000000001');
select set_eq($$ select day, spend from public.my_daily_usage $$, $$ select day, spend from t_usage_before $$,
              'the user''s daily usage is the same as before thinning');
select tests.clear_authentication();
select is((select sum(spend) from t_usage_before), 0.70::numeric, '(the daily usage adds up to the key''s spend)');

-- ---------------------------------------------------------------- webhook deliveries
select tests.create_user('23000000-0000-4000-8000-000000000003');
create temp table t_ref as select tests.buy('23000000-0000-4000-8000-000000000003', 'starter') as reference;
insert into private.disputes (id, payment_id, status)
select 2301, p.id, 'resolve' from public.payments p where p.reference = (select reference from t_ref);
insert into private.webhook_deliveries (event, reference, signature_valid, outcome, received_at) values
  ('charge.success', (select reference from t_ref), true, 'credited', now() - interval '200 days'),
  ('charge.success', 'retention-old-ok', true, 'credited', now() - interval '31 days'),
  ('charge.success', 'retention-new-ok', true, 'credited', now() - interval '29 days'),
  ('charge.success', 'retention-old-rejected', false, 'rejected', now() - interval '91 days');

-- ---------------------------------------------------------------- reconcile runs and repairs
insert into private.reconcile_runs (started_at, finished_at, outcome, error) values
  (now() - interval '40 days', now() - interval '40 days', 'ok', 'pgtap-retention'),
  (now() - interval '30 days', now() - interval '30 days', 'failed', 'pgtap-retention'),
  (now() - interval '1 day', now() - interval '1 day', 'failed', 'pgtap-retention');
insert into private.budget_repairs (key_id, observed_max_budget, target_max_budget, outcome, created_at)
select k.id, 1, 2, 'pushed', now() - v.age from t_key k, (values (interval '200 days'), (interval '100 days')) v(age);

-- Only the rows this test made: the newest successful run is the 40-day-old one unless the database has a newer.
create temp table t_newest_ok as select max(id) as id from private.reconcile_runs where outcome = 'ok';
select private.prune_operational();

select is((select count(*)::int from private.webhook_deliveries where reference = (select reference from t_ref)), 1,
          'a disputed payment''s delivery stays, however old');
select is((select count(*)::int from private.webhook_deliveries where reference in ('retention-old-ok', 'retention-old-rejected')), 0,
          'accepted deliveries go after 30 days, the others after 90');
select is((select count(*)::int from private.webhook_deliveries where reference = 'retention-new-ok'), 1, 'younger deliveries stay');
select is((select count(*)::int from private.reconcile_runs where error = 'pgtap-retention' and outcome = 'failed'
             and started_at < now() - interval '14 days'), 0, 'reconcile runs older than 14 days go');
select isnt_empty($$ select 1 from private.reconcile_runs where id = (select id from t_newest_ok) $$,
                  'except the newest successful one (the health check''s)');
select is((select count(*)::int from private.reconcile_runs where error = 'pgtap-retention' and started_at > now() - interval '2 days'), 1,
          'recent runs stay');
select results_eq($$ select count(*)::int, min(created_at) > now() - interval '101 days' from private.budget_repairs r join t_key k on k.id = r.key_id $$,
                  $$ values (2, true) $$, 'old budget repairs go, but each key keeps its newest');
select is(private.prune_operational() ->> 'spend_snapshots', '0', 'a run with nothing to prune deletes nothing');

select * from finish();
rollback;
