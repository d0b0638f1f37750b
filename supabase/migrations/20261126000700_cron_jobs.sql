-- Scheduled work (pg_cron, 5-field schedules: Debian's pg_cron has no sub-minute jobs).
-- cron.schedule upserts by job name, so re-running this is harmless.

-- The sweeps: a job every minute that calls the Edge Function p_function only while p_due (a boolean SQL
-- expression) holds, so an idle project makes no calls. Used here and by later migrations (ops-sweep,
-- auto-topup, send-notifications, usage-pull). Runs as its caller (no SECURITY DEFINER): it grants nothing.
create function private.schedule_sweep(p_job text, p_function text, p_due text) returns bigint
language sql volatile set search_path = '' as $$
  select cron.schedule(p_job, '* * * * *',
                       format('select private.invoke_function(%L, ''{"source":"cron"}''::jsonb) where %s', p_function, p_due))
$$;

-- Provisioning sweep: picks up jobs whose immediate call failed or is backing off.
select private.schedule_sweep('provision-key-sweep', 'provision-key', $$
  exists (select 1 from private.provisioning_jobs
           where (status = 'queued' and run_after <= now() + interval '1 minute')
              or (status = 'running' and locked_until < now()))
$$);

-- Reconcile: enough invocations that every chunk is covered each minute.
select cron.schedule('reconcile-spend', '* * * * *', $$ select private.kick_reconcile() $$);

-- Housekeeping: the hourly cleanup job is in 20261202001010_retention.sql (it runs the bounded prune there).
