-- Notification events and email delivery (20261202000740): each event recorded once whatever repeats it
-- (duplicate webhooks, re-run rotation steps, later reconcile runs), RLS (own rows, read_at only), and the
-- email outbox (one per notification, lease, back-off, give up, skip, never two sends).
begin;
select plan(58);

select tests.use_test_vault_secrets();
update private.settings set value = '0' where key = 'rotation_settle_seconds';
select tests.create_user('21000000-0000-4000-8000-00000000000a', 'notify-a@pgtap.test');
select tests.create_user('21000000-0000-4000-8000-00000000000b', 'notify-b@pgtap.test');
do $$
begin
  perform private.complete_provisioning(j.id, 1, 2.00) from private.provisioning_jobs j where j.user_id::text like '21000000-%';
end
$$;

create function pg_temp.notes(p_user uuid, p_kind text)
returns table (event_key text, title text, body text, link text) language sql as $$
  select n.event_key, n.title, n.body, n.link from public.notifications n where n.user_id = p_user and n.kind = p_kind order by n.id
$$;
create function pg_temp.kicks() returns integer language sql as $$
  select count(*)::int from net.http_request_queue q where q.url = 'https://project.pgtap.test/functions/v1/send-notifications'
$$;

-- ---------------------------------------------------------------- money in the text
select is(private.format_subunits(750000, 'NGN', 2), 'NGN 7500.00', 'an amount in subunits, with the currency''s digits');
select is(private.format_subunits(500000, 'XOF', 2), 'XOF 5000', 'a whole-unit currency shows no subunit digits');

-- ---------------------------------------------------------------- payment receipt
create temp table t_ref as select tests.buy('21000000-0000-4000-8000-00000000000a', 'starter') as reference;
grant select on t_ref to authenticated;
select results_eq(
  $$ select * from pg_temp.notes('21000000-0000-4000-8000-00000000000a', 'payment_receipt') $$,
  $$ select reference, 'Receipt: 10.00 USD of credit added'::text,
            'We received your payment of USD 5.00 for the Starter plan: 10.00 USD of credit was added to your account.'::text,
            '#/receipt/' || reference from t_ref $$,
  'a purchase records one receipt: the reference as event key, exact amounts, a link to the receipt page');
select is((select outcome from private.apply_payment((select reference from t_ref), 'success', 500, 500, 'USD', 'test', 'test', 1, now())),
          'duplicate', 'the same payment verified again (a duplicate webhook) ...');
select is((select count(*)::int from public.notifications where kind = 'payment_receipt' and user_id = '21000000-0000-4000-8000-00000000000a'), 1,
          '... adds no second receipt');
select is((select count(*)::int from public.notifications where kind = 'payment_receipt' and user_id = '21000000-0000-4000-8000-00000000000b'), 0,
          'the other user got nothing');
select is_empty($$ select 1 from public.notifications where kind <> 'payment_receipt' and user_id = '21000000-0000-4000-8000-00000000000a' $$,
                'the sign-up grant notifies nothing (only purchases have receipts)');

-- ---------------------------------------------------------------- emails queued with the notification
select results_eq(
  $$ select e.status, e.attempts, e.idempotency_key from private.notification_emails e
       join public.notifications n on n.id = e.notification_id where e.user_id = '21000000-0000-4000-8000-00000000000a' $$,
  $$ select 'pending'::text, 0, 'notification/21000000-0000-4000-8000-00000000000a/' || n.id
       from public.notifications n where n.user_id = '21000000-0000-4000-8000-00000000000a' $$,
  'one pending email per notification, with its own idempotency key');
select is(pg_temp.kicks(), 1, 'the notification asked pg_net to call send-notifications (sent after commit)');
-- Another notification (with its email) while that call still waits in the queue; undone afterwards (a
-- subtransaction), so the rest of this file sees one notification.
create function pg_temp.kicks_after_another_notification(p_kind text) returns integer language plpgsql as $$
declare
  v_kicks integer;
begin
  perform private.notify('21000000-0000-4000-8000-00000000000a', p_kind, 'while-queued', 't', 'b');
  if not exists (select 1 from private.notification_emails e join public.notifications n on n.id = e.notification_id
                  where n.event_key = 'while-queued') then
    return null; -- no email queued: nothing to show
  end if;
  v_kicks := pg_temp.kicks();
  raise exception 'undo' using errcode = 'P0001';
exception when sqlstate 'P0001' then
  return v_kicks;
end
$$;
select is(pg_temp.kicks_after_another_notification('low_balance'), 1,
          'a low-balance email queued while that call waits joins it (its run takes the kick after this commits)');
select is(pg_temp.kicks_after_another_notification('auto_topup_failed'), 1,
          'so does any other kind (20261202000740: kicks are shared; 24_webhook_path.sql)');
select tests.create_user('21000000-0000-4000-8000-00000000000c', '');
select isnt(private.notify('21000000-0000-4000-8000-00000000000c', 'low_balance', 'no-address', 't', 'b'), null,
            'a user without an email address is notified ...');
select is_empty($$ select 1 from private.notification_emails where user_id = '21000000-0000-4000-8000-00000000000c' $$,
                '... in the dashboard only (no email queued)');
select is(private.notify('21000000-0000-4000-8000-00000000000a', 'payment_receipt', (select reference from t_ref), 'x', 'y'), null,
          'notify again for a recorded event returns null');
select is((select count(*)::int from private.notification_emails where user_id = '21000000-0000-4000-8000-00000000000a'), 1,
          'and queues no second email');

-- ---------------------------------------------------------------- disputes
select lives_ok($$ select private.apply_dispute(2101, (select reference from t_ref), 'create', null) $$, 'a dispute is opened');
select lives_ok($$ select private.apply_dispute(2101, (select reference from t_ref), 'remind', null) $$, 'a reminder arrives');
select lives_ok($$ select private.apply_dispute(2101, (select reference from t_ref), 'create', null) $$, 'the create arrives again');
select results_eq($$ select event_key, link from pg_temp.notes('21000000-0000-4000-8000-00000000000a', 'dispute_opened') $$,
                  $$ select '2101'::text, '#/receipt/' || reference from t_ref $$, 'one dispute_opened, keyed by the dispute id');
select lives_ok($$ select private.apply_dispute(2101, (select reference from t_ref), 'resolve', 'declined') $$, 'it is resolved (won)');
select lives_ok($$ select private.apply_dispute(2101, (select reference from t_ref), 'resolve', 'declined') $$, 'the resolve arrives again');
select lives_ok($$ select private.apply_dispute(2101, (select reference from t_ref), 'create', null) $$, 'a late create arrives');
select results_eq($$ select event_key from pg_temp.notes('21000000-0000-4000-8000-00000000000a', 'dispute_resolved') $$,
                  $$ values ('2101:resolve'::text) $$, 'one dispute_resolved');
select is((select count(*)::int from public.notifications where kind = 'dispute_opened'), 1, 'the late create opened nothing again');
select matches((select body from pg_temp.notes('21000000-0000-4000-8000-00000000000a', 'dispute_resolved')),
               'the payment stands', 'a won dispute says the credit stays');

-- ---------------------------------------------------------------- key rotation
create temp table t_rot as select tests.rotate('21000000-0000-4000-8000-00000000000b', 0.50) as id;
select results_eq($$ select event_key, link from pg_temp.notes('21000000-0000-4000-8000-00000000000b', 'key_rotated') $$,
                  $$ select id::text, '#/'::text from t_rot $$, 'a finished rotation records one key_rotated');
select lives_ok($$ select private.rotation_finish((select id from t_rot)) $$, 'the last step runs again (a retried run)');
select is((select count(*)::int from public.notifications where kind = 'key_rotated'), 1, 'no second key_rotated');

-- ---------------------------------------------------------------- low balance
-- B: 2.00 granted, 0.50 spent on the retired key. A fall straight to 5 % records the 20 % level as superseded.
update public.api_keys set spend = 1.45, spend_observed_at = now()
 where user_id = '21000000-0000-4000-8000-00000000000b' and status <> 'retired';
select results_eq($$ select event_key, link from pg_temp.notes('21000000-0000-4000-8000-00000000000b', 'low_balance') $$,
                  $$ select 'alert:' || e.id, '#/buy'::text from private.alert_events e
                      where e.user_id = '21000000-0000-4000-8000-00000000000b' and e.level = 5 $$,
                  'a fall to 5 % records one low_balance (the superseded 20 % one is skipped), linking to the packs');
select matches((select body from pg_temp.notes('21000000-0000-4000-8000-00000000000b', 'low_balance')),
               '^You have 0\.05 USD of credit left, 2\.5 %', 'the text gives the exact balance');
update public.api_keys set spend = 1.48, spend_observed_at = now()
 where user_id = '21000000-0000-4000-8000-00000000000b' and status <> 'retired';
select is((select count(*)::int from public.notifications where kind = 'low_balance' and user_id = '21000000-0000-4000-8000-00000000000b'), 1,
          'a later reconcile run below the level adds nothing (one per crossing)');

-- ---------------------------------------------------------------- RLS: own rows, read_at only
select tests.authenticate_as('21000000-0000-4000-8000-00000000000a');
select is((select count(*)::int from public.my_notifications), 3, 'A sees their three notifications');
select is((select count(*)::int from public.my_notifications where unread), 3, 'all unread');
update public.notifications set read_at = now() where kind = 'payment_receipt';
select is((select count(*)::int from public.my_notifications where unread), 2, 'A marks one read');
update public.notifications set read_at = now() where user_id = '21000000-0000-4000-8000-00000000000b';
select throws_ok($$ update public.notifications set body = 'changed' $$, '42501', null, 'A cannot change the text');
select throws_ok($$ update public.notifications set user_id = '21000000-0000-4000-8000-00000000000b' $$, '42501', null,
                 'A cannot move a notification to another user');
select throws_ok($$ select * from private.notification_emails $$, '42501', null, 'A cannot read the email outbox');
select throws_ok($$ select private.notify(auth.uid(), 'low_balance', 'self', 't', 'b') $$, '42501', null, 'A cannot call private.notify');
select tests.clear_authentication();
select is((select count(*)::int from public.notifications where user_id = '21000000-0000-4000-8000-00000000000b' and read_at is not null), 0,
          'A''s update of B''s rows changed nothing');

-- ---------------------------------------------------------------- delivery: lease, back-off, give up, never twice
update private.notification_emails set status = 'sent' where user_id <> '21000000-0000-4000-8000-00000000000a';
create temp table t_claim as select * from private.claim_notification_emails(10, 60);
select results_eq($$ select email, kind from t_claim order by notification_id $$,
                  $$ values ('notify-a@pgtap.test'::text, 'payment_receipt'::text), ('notify-a@pgtap.test', 'dispute_opened'),
                            ('notify-a@pgtap.test', 'dispute_resolved') $$,
                  'a run claims the due emails, with address, kind and text');
select is_empty($$ select * from private.claim_notification_emails(10, 60) $$, 'an overlapping run gets none of the leased ones');
create temp table t_one as select min(notification_id) as id from t_claim;
select is(private.finish_notification_email((select id from t_one), false, 1, 'http 500'), 'pending', 'a failed send stays pending');
select results_eq($$ select attempts, next_attempt_at - now(), locked_until from private.notification_emails where notification_id = (select id from t_one) $$,
                  $$ values (1, interval '30 seconds', null::timestamptz) $$, 'backs off 30 s (the base), lease released');
select is_empty($$ select 1 from private.claim_notification_emails(10, 60) c where c.notification_id = (select id from t_one) $$,
                'it is not claimed before its time');
update private.notification_emails set next_attempt_at = now() where notification_id = (select id from t_one);
select isnt_empty($$ select 1 from private.claim_notification_emails(10, 60) c where c.notification_id = (select id from t_one) $$, 'then it is');
select is(private.finish_notification_email((select id from t_one), false, 2, 'timeout'), 'pending', 'two more tries fail');
select is((select next_attempt_at - now() from private.notification_emails where notification_id = (select id from t_one)), interval '120 seconds',
          'the delay doubles per attempt (30 s x 2^2 after 3 attempts)');
select is(private.finish_notification_email((select id from t_one), true, 1, null, 'em_1'), 'sent', 'then it is sent');
select is(private.finish_notification_email((select id from t_one), true, 1, null, 'em_2'), null,
          'a second run finishing the same email changes nothing');
select results_eq($$ select status, provider_id, attempts from private.notification_emails where notification_id = (select id from t_one) $$,
                  $$ values ('sent'::text, 'em_1'::text, 4) $$, 'the first send is what is recorded');
update private.notification_emails set locked_until = null, next_attempt_at = now();
select is_empty($$ select 1 from private.claim_notification_emails(10, 60) c where c.notification_id = (select id from t_one) $$,
                'a sent email is never claimed again');
select is(private.finish_notification_email((select max(notification_id) from t_claim), false, 1, 'http 422', null, true), 'failed',
          'a refusal of the email itself (4xx) gives up at once');
update private.notification_emails set attempts = 7 where status = 'pending';
select is(private.finish_notification_email((select notification_id from private.notification_emails where status = 'pending'), false, 1, 'http 503'),
          'failed', 'the 8th failed attempt gives up');

select is(private.skip_notification_emails('no email provider configured'), 0, 'nothing pending is left to skip ...');
select private.notify('21000000-0000-4000-8000-00000000000b', 'low_balance', 'skip-me', 't', 'b');
select is(private.skip_notification_emails('no email provider configured'), 1, '... a new one is skipped when no provider is set');
select results_eq($$ select status, last_error from private.notification_emails e join public.notifications n on n.id = e.notification_id
                      where n.event_key = 'skip-me' $$,
                  $$ values ('skipped'::text, 'no email provider configured'::text) $$, 'kept as a record, never claimed later');
select ok(not private.notification_emails_due(), 'with nothing pending the cron job calls nothing');
select results_eq($$ select schedule, active from cron.job where jobname = 'send-notifications' $$,
                  $$ values ('* * * * *'::text, true) $$, 'the sweep is a cron job every minute');

select * from finish();
rollback;
