-- The hourly cleanup cron job (run here by executing its own command): old pg_net responses and old
-- webhook deliveries, rejected webhook posts and rate-limit windows go; recent ones and the ledger stay.
begin;
select plan(11);

select isnt_empty($$ select 1 from cron.job where jobname = 'cleanup' and schedule = '17 * * * *' $$, 'the cleanup job is scheduled hourly');

insert into net._http_response (id, status_code, created) values (-1, 200, now() - interval '7 hours'), (-2, 200, now() - interval '1 hour');
insert into private.webhook_deliveries (event, reference, signature_valid, outcome, received_at) values
  ('charge.success', 'cleanup-old-ok', true, 'credited', now() - interval '31 days'),
  ('charge.success', 'cleanup-new-ok', true, 'credited', now() - interval '29 days'),
  ('charge.success', 'cleanup-old-rejected', false, 'rejected', now() - interval '60 days'),
  ('charge.success', 'cleanup-ancient-rejected', false, 'rejected', now() - interval '91 days');
insert into private.rejected_webhook_posts (body_sha256, body_bytes, reason, received_at) values
  (repeat('a', 64), 1, 'cleanup-old-post', now() - interval '31 days'), (repeat('b', 64), 1, 'cleanup-new-post', now() - interval '29 days');
insert into private.rate_limit_hits (bucket, window_start, hits) values
  ('cleanup-old-window', now() - interval '25 hours', 1), ('cleanup-new-window', now() - interval '1 hour', 1);

do $$ begin execute (select command from cron.job where jobname = 'cleanup'); end $$;

select is((select count(*)::int from net._http_response where id = -1), 0, 'responses older than 6 hours are deleted');
select is((select count(*)::int from net._http_response where id = -2), 1, 'recent responses stay');
select is((select count(*)::int from private.webhook_deliveries where reference = 'cleanup-old-ok'), 0, 'accepted deliveries go after 30 days');
select is((select count(*)::int from private.webhook_deliveries where reference = 'cleanup-new-ok'), 1, 'younger accepted deliveries stay');
select is((select count(*)::int from private.webhook_deliveries where reference = 'cleanup-old-rejected'), 1, 'rejected deliveries are kept 90 days');
select is((select count(*)::int from private.webhook_deliveries where reference = 'cleanup-ancient-rejected'), 0, 'and then deleted');

select is((select count(*)::int from private.rejected_webhook_posts where reason = 'cleanup-old-post'), 0, 'rejected posts go after 30 days');
select is((select count(*)::int from private.rejected_webhook_posts where reason = 'cleanup-new-post'), 1, 'younger rejected posts stay');
select is((select count(*)::int from private.rate_limit_hits where bucket = 'cleanup-old-window'), 0, 'rate-limit windows go after a day');
select is((select count(*)::int from private.rate_limit_hits where bucket = 'cleanup-new-window'), 1, 'recent windows stay');

select * from finish();
rollback;
