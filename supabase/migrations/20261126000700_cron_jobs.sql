-- Scheduled work (pg_cron, 5-field schedules: Debian's pg_cron has no sub-minute jobs).
-- cron.schedule upserts by job name, so re-running this is harmless.

-- Provisioning sweep: picks up jobs whose immediate call failed or is backing off.
select cron.schedule('provision-key-sweep', '* * * * *', $$
  select private.invoke_function('provision-key', '{"source":"cron"}'::jsonb)
   where exists (select 1 from private.provisioning_jobs
                  where (status = 'queued' and run_after <= now() + interval '1 minute')
                     or (status = 'running' and locked_until < now()))
$$);

-- Reconcile: enough invocations that every chunk is covered each minute.
select cron.schedule('reconcile-spend', '* * * * *', $$ select private.kick_reconcile() $$);

-- Housekeeping: the hourly cleanup job is in 20261202001010_retention.sql (it runs the bounded prune there).
