-- Posts refused at the webhook's gate keep only hash, size, time and reason (migration 20261202000420), in a
-- table capped at webhook_rejected_max_rows (the oldest are dropped), listed by admin_rejected_deliveries.
begin;
select plan(9);

select columns_are('private', 'rejected_webhook_posts', array['id', 'provider', 'received_at', 'body_sha256', 'body_bytes', 'reason'],
                   'a rejected post keeps its hash, size, time and reason, and nothing of its body');
select is((select value from private.settings where key = 'webhook_rejected_max_rows'), '10000'::jsonb,
          'the cap is an operator setting, 10000 rows by default');

update private.settings set value = '5' where key = 'webhook_rejected_max_rows';
create temp table t_ids as
select private.record_rejected_post(repeat(to_hex(n % 16), 64), 1000 * n, 'signature mismatch') as id
  from generate_series(1, 8) n;
select is((select count(*)::int from private.rejected_webhook_posts), 5, 'eight posts with a cap of 5: five rows kept');
select set_eq($$ select id from private.rejected_webhook_posts $$, $$ select id from t_ids order by id desc limit 5 $$,
              'the five newest are kept, the oldest dropped');
select results_eq(
  $$ select body_sha256, body_bytes, reason from private.rejected_webhook_posts where id = (select max(id) from t_ids) $$,
  $$ values (repeat('8', 64), 8000, 'signature mismatch') $$,
  'a row holds the body''s sha256, its size and the reason');
select throws_ok($$ select private.record_rejected_post('not-a-hash', 10, 'x') $$, '23514', null, 'only a sha256 hex digest is stored as the hash');
select throws_ok($$ select private.record_rejected_post(repeat('a', 64), 10, repeat('r', 101)) $$, '23514', null, 'the reason is bounded');

select results_eq(
  $$ select signature_valid, outcome, reason, body_bytes, event, reference from public.admin_rejected_deliveries
      where body_bytes = 8000 $$,
  $$ values (false, 'rejected'::text, 'signature mismatch'::text, 8000, null::text, null::text) $$,
  'admin_rejected_deliveries lists rejected posts (no event or reference)');

select tests.authenticate_as_service_role();
select throws_ok($$ select 1 from private.rejected_webhook_posts $$, '42501', null,
                 'no API role reads the table itself, service_role included (admin_rejected_deliveries is the way in)');
select tests.clear_authentication();

select * from finish();
rollback;
