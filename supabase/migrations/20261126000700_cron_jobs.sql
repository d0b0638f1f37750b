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

-- Housekeeping: pg_net responses after 6 h (as pg_net does); accepted deliveries after 30 days,
-- rejected ones after 90; rejected webhook posts after 30 days (20261202000420: the row cap bounds them
-- sooner under a flood); rate-limit windows (20261202000410) after a day; cron's own run log after 7 days.
select cron.schedule('cleanup', '17 * * * *', $$
  delete from net._http_response where created < now() - interval '6 hours';
  delete from private.webhook_deliveries
   where (outcome in ('credited', 'duplicate', 'ignored', 'refunded', 'dispute') and received_at < now() - interval '30 days')
      or received_at < now() - interval '90 days';
  delete from private.rejected_webhook_posts where received_at < now() - interval '30 days';
  delete from private.rate_limit_hits where window_start < now() - interval '1 day';
  delete from cron.job_run_details where end_time < now() - interval '7 days';
$$);
