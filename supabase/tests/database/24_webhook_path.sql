-- The webhook path (20261202000710): private.apply_verified_payment credits, saves the card and returns the
-- key's push target in one call; send-notifications kicks are shared by the transactions that join them.
begin;
select plan(25);

select tests.use_test_vault_secrets();
-- A wide join window, so the steps below never outlast it on a slow machine; one test ages a kick past it.
update private.settings set value = '60' where key = 'notification_kick_join_seconds';
select tests.create_user('24000000-0000-4000-8000-00000000000a', 'webhook-a@pgtap.test');
select tests.create_user('24000000-0000-4000-8000-00000000000b', 'webhook-b@pgtap.test');
do $$
begin
  perform private.complete_provisioning(j.id, 1, 2.00) from private.provisioning_jobs j where j.user_id::text like '24000000-%';
end
$$;

create function pg_temp.card(p_sig text) returns jsonb language sql as $$
  select jsonb_build_object('authorization_code', 'AUTH_pgtap24', 'channel', 'card', 'reusable', true, 'signature', p_sig,
                            'brand', 'visa', 'last4', '4081', 'exp_month', '12', 'exp_year', '2030', 'bank', 'TEST BANK')
$$;
create function pg_temp.apply(p_ref text, p_authorization jsonb, p_amount integer default 500)
returns table (outcome text, reason text, card_saved boolean, card_error text, key_id uuid, key_value text,
               target_max_budget numeric, budget_version bigint, status text, sync_status text, litellm_max_budget numeric)
language sql as $$
  select outcome, reason, card_saved, card_error, key_id, key_value, target_max_budget, budget_version, status, sync_status,
         litellm_max_budget
    from private.apply_verified_payment(p_ref, 'success', p_amount, p_amount, 'USD', 'test', 'test', 2401, now(), null, 'card',
                                        p_authorization)
$$;

-- ---------------------------------------------------------------- one call: credit, card, push target
create temp table t_co as
  select c.reference from private.create_checkout('24000000-0000-4000-8000-00000000000a', 'starter') c;
create temp table t_first as
  select * from pg_temp.apply((select reference from t_co), pg_temp.card('sig-a')) r;
select results_eq($$ select outcome, reason, card_saved, card_error, target_max_budget from t_first $$,
                  $$ values ('credited'::text, null::text, true, null::text, 12.00::numeric) $$,
                  'a verified payment is credited and its reusable card saved, in one call');
select results_eq(
  $$ select key_id, key_value, budget_version, status, sync_status, litellm_max_budget from t_first $$,
  $$ select id, key_value, budget_version, status, sync_status, litellm_max_budget from public.api_keys
      where user_id = '24000000-0000-4000-8000-00000000000a' and status <> 'retired' $$,
  'it returns the key''s push target as the transaction left it (what budget_push_target reads)');
select results_eq(
  $$ select key_id, key_value, target_max_budget, budget_version, status, sync_status, litellm_max_budget from t_first $$,
  $$ select key_id, key_value, target_max_budget, budget_version, status, sync_status, litellm_max_budget
       from private.budget_push_target((select key_id from t_first)) $$,
  'the same row private.budget_push_target gives');
select is((select sync_status from t_first), 'pending', 'the credited key waits for its push');
select results_eq($$ select m.brand, m.last4, m.exp_month, m.exp_year from public.payment_methods m
                      where m.user_id = '24000000-0000-4000-8000-00000000000a' $$,
                  $$ values ('visa'::text, '4081'::text, 12, 2030) $$, 'the card is in payment_methods');
select is((select count(*)::int from public.credit_ledger where kind = 'purchase'
            and idempotency_key = 'payment:paystack:' || (select reference from t_co)), 1, 'one purchase row');

select results_eq(
  $$ select r.outcome, r.card_saved, r.target_max_budget
       from pg_temp.apply((select reference from t_co), pg_temp.card('sig-a')) r $$,
  $$ values ('duplicate'::text, true, 12.00::numeric) $$,
  'the same payment again: duplicate, same target, the card refreshed (not a second one)');
select is((select count(*)::int from public.payment_methods where user_id = '24000000-0000-4000-8000-00000000000a'), 1,
          'still one saved card');
select is((select count(*)::int from public.credit_ledger where kind = 'purchase'
            and idempotency_key = 'payment:paystack:' || (select reference from t_co)), 1, 'and still one purchase row');

-- ---------------------------------------------------------------- a card that cannot be saved
create temp table t_co2 as
  select c.reference from private.create_checkout('24000000-0000-4000-8000-00000000000b', 'starter') c;
create temp table t_bad as
  select * from pg_temp.apply((select reference from t_co2), pg_temp.card(repeat('s', 201))) r;
select results_eq($$ select outcome, card_saved, card_error is not null, target_max_budget from t_bad $$,
                  $$ values ('credited'::text, false, true, 12.00::numeric) $$,
                  'a card the table refuses (a 201-character signature) is not saved, and the payment stands');
select is_empty($$ select 1 from public.payment_methods where user_id = '24000000-0000-4000-8000-00000000000b' $$,
                'nothing of that card is stored');
select is((select count(*)::int from public.credit_ledger where kind = 'purchase'
            and idempotency_key = 'payment:paystack:' || (select reference from t_co2)), 1, 'its credit is in the ledger');

select results_eq(
  $$ select r.outcome, r.card_saved, r.key_id, r.key_value
       from pg_temp.apply('no-such-reference', pg_temp.card('sig-x')) r $$,
  $$ values ('rejected'::text, false, null::uuid, null::text) $$,
  'a rejected payment saves no card and names no key');

-- ---------------------------------------------------------------- shared kicks
create function pg_temp.calls() returns integer language sql as $$
  select count(*)::int from net.http_request_queue q where q.url = 'https://project.pgtap.test/functions/v1/send-notifications'
$$;
-- The two receipts above, in this one transaction: the first made a kick, the second joined it.
select is((select count(*)::int from private.notification_kicks), 1, 'two receipts within the join window share one kick ...');
select is(pg_temp.calls(), 1, '... and one pg_net call');
select is((select convert_from(q.body, 'utf8')::jsonb from net.http_request_queue q
            where q.url like '%/send-notifications'),
          (select jsonb_build_object('source', 'notify', 'kick', k.id) from private.notification_kicks k),
          'the call names its kick');
select isnt(private.notify('24000000-0000-4000-8000-00000000000a', 'low_balance', 'kick-1', 't', 'b'), null,
            'a low-balance notification ...');
select is(pg_temp.calls(), 1, '... joins the same kick');

update private.notification_kicks set created_at = clock_timestamp() - interval '61 seconds';
select isnt(private.notify('24000000-0000-4000-8000-00000000000a', 'auto_topup_failed', 'kick-2', 't', 'b'), null,
            'a notification once the kick is older than notification_kick_join_seconds ...');
select is(pg_temp.calls(), 2, '... queues a call of its own (a run never waits for joiners for long)');
select is((select count(*)::int from private.notification_kicks), 2, 'with its own kick');

-- The run takes its kick (deleting it), and kicks older than ten minutes whose call never ran.
update private.notification_kicks set created_at = clock_timestamp() - interval '11 minutes'
 where id = (select min(id) from private.notification_kicks);
select lives_ok($$ select private.take_notification_kick((select max(id) from private.notification_kicks)) $$,
                'a run takes its kick');
select is_empty($$ select 1 from private.notification_kicks $$, 'its kick and the stale one are gone');

-- No vault secrets: no call can be queued, so no kick is left for others to join.
delete from vault.secrets where name = 'cron_secret';
select isnt(private.notify('24000000-0000-4000-8000-00000000000b', 'auto_topup_failed', 'kick-3', 't', 'b'), null,
            'a notification without the vault secrets ...');
select is_empty($$ select 1 from private.notification_kicks $$, '... leaves no kick without a call');

select * from finish();
rollback;
