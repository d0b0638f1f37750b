-- The hourly cleanup cron job (run here by executing its own command): old pg_net responses and old
-- webhook deliveries go; recent ones and the ledger stay.
begin;
select plan(7);

select isnt_empty($$ select 1 from cron.job where jobname = 'cleanup' and schedule = '17 * * * *' $$, 'the cleanup job is scheduled hourly');

insert into net._http_response (id, status_code, created) values (-1, 200, now() - interval '7 hours'), (-2, 200, now() - interval '1 hour');
insert into private.webhook_deliveries (event, reference, signature_valid, outcome, received_at) values
  ('charge.success', 'cleanup-old-ok', true, 'credited', now() - interval '31 days'),
  ('charge.success', 'cleanup-new-ok', true, 'credited', now() - interval '29 days'),
  ('charge.success', 'cleanup-old-rejected', false, 'rejected', now() - interval '60 days'),
  ('charge.success', 'cleanup-ancient-rejected', false, 'rejected', now() - interval '91 days');

do $$ begin execute (select command from cron.job where jobname = 'cleanup'); end $$;

select is((select count(*)::int from net._http_response where id = -1), 0, 'responses older than 6 hours are deleted');
select is((select count(*)::int from net._http_response where id = -2), 1, 'recent responses stay');
select is((select count(*)::int from private.webhook_deliveries where reference = 'cleanup-old-ok'), 0, 'accepted deliveries go after 30 days');
select is((select count(*)::int from private.webhook_deliveries where reference = 'cleanup-new-ok'), 1, 'younger accepted deliveries stay');
select is((select count(*)::int from private.webhook_deliveries where reference = 'cleanup-old-rejected'), 1, 'rejected deliveries are kept 90 days');
select is((select count(*)::int from private.webhook_deliveries where reference = 'cleanup-ancient-rejected'), 0, 'and then deleted');

select * from finish();
rollback;
