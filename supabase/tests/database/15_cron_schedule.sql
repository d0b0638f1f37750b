-- What our migrations rely on from pg_cron, on every engine the suite runs on (real pg_cron on the local
-- stack, the stand-in of scripts/pg17 on PostgreSQL 17): scheduling a job name again replaces that job,
-- unscheduling by name removes it, and a malformed schedule is refused.
begin;
select plan(5);

create temp table t_first as select cron.schedule('pgtap-cron-probe', '*/5 * * * *', 'select 1') as jobid;
select is(cron.schedule('pgtap-cron-probe', '17 3 * * *', 'select 2'), (select jobid from t_first),
          'scheduling an existing job name keeps its job id');
select results_eq(
  $$ select schedule, command from cron.job where jobname = 'pgtap-cron-probe' $$,
  $$ values ('17 3 * * *'::text, 'select 2'::text) $$,
  'the job holds the latest schedule and command, once'
);
select ok(cron.unschedule('pgtap-cron-probe'), 'unscheduling by name answers true');
select is_empty($$ select 1 from cron.job where jobname = 'pgtap-cron-probe' $$, 'unscheduling by name removes the job');
select throws_ok($$ select cron.schedule('pgtap-cron-bad', 'every minute', 'select 1') $$, '22023', null,
                 'a malformed schedule is refused');

select * from finish();
rollback;
