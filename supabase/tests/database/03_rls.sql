-- Row level security and grants: a user sees all of their own rows and none of anyone else's, writes nothing
-- directly, and cannot call private functions; anon sees nothing; admin views are for service_role only.
begin;
select plan(76);

-- Fixtures (as postgres): users A and B, each with a purchase, an active key, a snapshot and spend.
insert into auth.users (id, email, aud, role, email_confirmed_at) values
  ('03000000-0000-4000-8000-00000000000a', 'rls-a@pgtap.test', 'authenticated', 'authenticated', now()),
  ('03000000-0000-4000-8000-00000000000b', 'rls-b@pgtap.test', 'authenticated', 'authenticated', now());
do $$
declare
  u uuid;
begin
  foreach u in array array['03000000-0000-4000-8000-00000000000a', '03000000-0000-4000-8000-00000000000b']::uuid[] loop
    -- LiteLLM confirmed the 2.00 of sign-up, then the user bought a pack: the key drifts until the next push.
    perform private.complete_provisioning(j.id, 1, 2.00) from private.provisioning_jobs j where j.user_id = u;
    -- paid by card: the card is saved, and auto top-up is set (20261202000710, 20261202000720)
    perform private.save_payment_method(tests.buy(u, 'starter'), jsonb_build_object(
      'authorization_code', 'AUTH_rls' || left(u::text, 1) || right(u::text, 1), 'channel', 'card', 'reusable', true,
      'signature', 'SIG_rls', 'last4', '4081', 'exp_month', '12', 'exp_year', '2030', 'brand', 'visa'));
    insert into public.auto_topup_settings (user_id, threshold_usd, plan_code, currency, monthly_max_count)
    values (u, 1.00, 'starter', 'USD', 2);
    update public.api_keys set spend = 1.25, spend_observed_at = now() where user_id = u;
    insert into public.spend_snapshots (key_id, user_id, spend, max_budget)
    select k.id, k.user_id, 1.25, 2.00 from public.api_keys k where k.user_id = u;
    -- One request logged by the callback (usage by model, 20261202000800): 0.25 of the 1.25 on a model.
    perform private.record_usage_events(jsonb_build_array(jsonb_build_object(
      'id', 'rls-' || u, 'token', k.key_token, 'model', 'gpt-4o-mini', 'cost', 0.25, 'input_tokens', 1,
      'output_tokens', 1, 'start_time', extract(epoch from now())))) from public.api_keys k where k.user_id = u;
  end loop;
  -- An open checkout too, so checkouts has more than paid rows
  perform private.create_checkout('03000000-0000-4000-8000-00000000000b', 'pro');
  -- A rejected webhook delivery and a dead provisioning job for the admin views
  perform private.record_delivery('charge.success', 'forged', false, '{}'::jsonb, null, '203.0.113.9', 'rejected', 'bad_signature');
end
$$;

-- What the session sees, per user, in every public table and view that authenticated may read (found in the
-- catalog, so a new one is checked too), except plans, which every visitor reads.
create function pg_temp.visible_rows() returns table (relation text, user_id uuid, n integer) language plpgsql as $$
declare
  v_rel text;
begin
  for v_rel in select c.relname from pg_class c
                where c.relnamespace = 'public'::regnamespace and c.relkind in ('r', 'p', 'v', 'm')
                  -- shared catalogs, and my_currency (a preference, not a user's row)
                  and c.relname not in ('plans', 'currencies', 'plan_prices', 'prices', 'my_currency')
                  and has_table_privilege('authenticated', c.oid, 'SELECT')
                order by c.relname loop
    return query execute format('select %L::text, %I, count(*)::int from public.%I group by 2 order by 2',
                                v_rel, case v_rel when 'profiles' then 'id' else 'user_id' end, v_rel);
  end loop;
end
$$;

-- ---------------------------------------------------------------- user A, reading
select tests.authenticate_as('03000000-0000-4000-8000-00000000000a');
select results_eq($$ select * from pg_temp.visible_rows() $$,
                  $$ select r, '03000000-0000-4000-8000-00000000000a'::uuid, n
                       from (values ('api_keys'::text, 1), ('auto_topup_settings', 1), ('checkouts', 1), ('credit_ledger', 2),
                                    ('my_account', 1), ('my_daily_usage', 1), ('my_key', 1), ('my_ledger', 3), ('my_lots', 2), ('my_notifications', 1),
                                    ('my_payments', 1), ('my_receipts', 1), ('my_usage_by_model', 2), ('notifications', 1),
                                    ('payment_methods', 1), ('payments', 1), ('profiles', 1), ('spend_snapshots', 1),
                                    ('usage_by_model', 1), ('usage_counted', 1), ('usage_gaps', 1)) v(r, n) $$,
                  'A sees all of their own rows, and only those, in every table and view they can read');

select is_empty($$ select 1 from public.profiles where id <> '03000000-0000-4000-8000-00000000000a' $$, 'A cannot read B''s profile');
select is_empty($$ select 1 from public.credit_ledger where user_id <> '03000000-0000-4000-8000-00000000000a' $$, 'A cannot read B''s ledger');
select is_empty($$ select 1 from public.api_keys where user_id <> '03000000-0000-4000-8000-00000000000a' $$, 'A cannot read B''s keys');
select is_empty($$ select 1 from public.payments where user_id <> '03000000-0000-4000-8000-00000000000a' $$, 'A cannot read B''s payments');
select is_empty($$ select 1 from public.checkouts where user_id <> '03000000-0000-4000-8000-00000000000a' $$, 'A cannot read B''s checkouts');
select is_empty($$ select 1 from public.spend_snapshots where user_id <> '03000000-0000-4000-8000-00000000000a' $$, 'A cannot read B''s snapshots');
select is_empty($$ select 1 from public.my_lots where user_id <> '03000000-0000-4000-8000-00000000000a' $$, 'A cannot read B''s lots');
select is_empty($$ select 1 from public.my_account where user_id <> '03000000-0000-4000-8000-00000000000a' $$, 'A cannot read B''s account');
select is_empty($$ select 1 from public.my_key where user_id <> '03000000-0000-4000-8000-00000000000a' $$, 'A cannot read B''s key through my_key');
select is_empty($$ select 1 from public.my_payments where user_id <> '03000000-0000-4000-8000-00000000000a' $$, 'A cannot read B''s payments through my_payments');
select is_empty($$ select 1 from public.my_daily_usage where user_id <> '03000000-0000-4000-8000-00000000000a' $$, 'A cannot read B''s daily usage');
select is_empty($$ select 1 from public.my_notifications where user_id <> '03000000-0000-4000-8000-00000000000a' $$, 'A cannot read B''s notifications');
select is_empty($$ select 1 from public.usage_by_model where user_id <> '03000000-0000-4000-8000-00000000000a' $$, 'A cannot read B''s usage by model');
select is_empty($$ select 1 from public.my_usage_by_model where user_id <> '03000000-0000-4000-8000-00000000000a' $$, 'A cannot read B''s usage by model through my_usage_by_model');

-- ... while A does see their own rows (the policies are not simply closed)
select is((select count(*)::int from public.credit_ledger), 2, 'A reads their own two ledger rows');
select is((select count(*)::int from public.payments), 1, 'A reads their own payment');
select is((select count(*)::int from public.my_key), 1, 'A reads their own key');
select results_eq($$ select granted, spent, remaining from public.my_account $$,
                  $$ values (12.00::numeric, 1.25::numeric, 10.75::numeric) $$, 'A reads their own account');
select isnt_empty($$ select 1 from public.my_daily_usage $$, 'A reads their own daily usage');

-- ---------------------------------------------------------------- user A, writing (B's rows and their own)
select throws_ok($$ update public.profiles set email = 'stolen@pgtap.test' where id = '03000000-0000-4000-8000-00000000000b' $$,
                 '42501', null, 'A cannot update B''s profile');
select throws_ok($$ delete from public.profiles where id = '03000000-0000-4000-8000-00000000000b' $$,
                 '42501', null, 'A cannot delete B''s profile');
select throws_ok($$ update public.api_keys set blocked = true where user_id = '03000000-0000-4000-8000-00000000000b' $$,
                 '42501', null, 'A cannot update B''s key');
select throws_ok($$ delete from public.api_keys where user_id = '03000000-0000-4000-8000-00000000000b' $$,
                 '42501', null, 'A cannot delete B''s key');
select throws_ok($$ update public.checkouts set status = 'paid' where user_id = '03000000-0000-4000-8000-00000000000b' $$,
                 '42501', null, 'A cannot update B''s checkouts');
select throws_ok($$ insert into public.credit_ledger (user_id, kind, amount, idempotency_key)
                    values ('03000000-0000-4000-8000-00000000000a', 'adjustment', 100, 'free-money') $$,
                 '42501', null, 'A cannot insert ledger rows');
select throws_ok($$ update public.credit_ledger set amount = 1000 where user_id = '03000000-0000-4000-8000-00000000000a' $$,
                 '42501', null, 'A cannot update their ledger rows');
select throws_ok($$ delete from public.credit_ledger where user_id = '03000000-0000-4000-8000-00000000000a' $$,
                 '42501', null, 'A cannot delete their ledger rows');
select throws_ok($$ insert into public.payments (reference, user_id, plan_code, amount_subunits, currency, credit)
                    values ('fake', '03000000-0000-4000-8000-00000000000a', 'max', 2000, 'USD', 40) $$,
                 '42501', null, 'A cannot insert payments');
select throws_ok($$ update public.payments set credit = 400 where user_id = '03000000-0000-4000-8000-00000000000a' $$,
                 '42501', null, 'A cannot update their payments');
select throws_ok($$ delete from public.payments where user_id = '03000000-0000-4000-8000-00000000000a' $$,
                 '42501', null, 'A cannot delete their payments');
select throws_ok($$ insert into public.spend_snapshots (key_id, user_id, spend)
                    select id, user_id, 0 from public.api_keys where user_id = '03000000-0000-4000-8000-00000000000a' $$,
                 '42501', null, 'A cannot insert snapshots');
select throws_ok($$ update public.spend_snapshots set spend = 0 where user_id = '03000000-0000-4000-8000-00000000000a' $$,
                 '42501', null, 'A cannot update their snapshots');
select throws_ok($$ delete from public.spend_snapshots where user_id = '03000000-0000-4000-8000-00000000000a' $$,
                 '42501', null, 'A cannot delete their snapshots');
select throws_ok($$ update public.api_keys set spend = 0 where user_id = '03000000-0000-4000-8000-00000000000a' $$,
                 '42501', null, 'A cannot reset their own spend');
select throws_ok($$ insert into public.checkouts (reference, user_id, plan_code, amount_subunits, currency, credit)
                    values ('cheap', '03000000-0000-4000-8000-00000000000a', 'max', 1, 'USD', 40) $$,
                 '42501', null, 'A cannot insert a checkout with their own price');
select throws_ok($$ insert into public.auto_topup_settings (user_id, threshold_usd, plan_code, currency, monthly_max_count)
                    values ('03000000-0000-4000-8000-00000000000b', 5, 'max', 'USD', 100) $$,
                 '42501', null, 'A cannot set auto top-up for B');
select throws_ok($$ update public.auto_topup_settings set consecutive_failures = 0, disabled_reason = null $$,
                 '42501', null, 'A cannot write what the system keeps on their auto top-up (failures, reason)');
select throws_ok($$ select * from private.payment_method_secrets $$, '42501', null,
                 'A cannot read saved authorization codes (private.payment_method_secrets)');
delete from public.payment_methods where user_id = '03000000-0000-4000-8000-00000000000b';
update public.auto_topup_settings set threshold_usd = 50 where user_id = '03000000-0000-4000-8000-00000000000b';
select tests.clear_authentication();
select results_eq($$ select (select count(*)::int from public.payment_methods where user_id = '03000000-0000-4000-8000-00000000000b'),
                            (select threshold_usd from public.auto_topup_settings where user_id = '03000000-0000-4000-8000-00000000000b') $$,
                  $$ values (1, 1.00::numeric) $$, 'A''s delete of B''s card and update of B''s auto top-up touch nothing');
select tests.authenticate_as('03000000-0000-4000-8000-00000000000a');
select throws_ok($$ update public.my_key set blocked = false $$, '42501', null, 'A cannot write through the my_key view');
select throws_ok($$ insert into public.notifications (user_id, kind, event_key, title, body)
                    values ('03000000-0000-4000-8000-00000000000a', 'low_balance', 'fake', 'x', 'y') $$,
                 '42501', null, 'A cannot insert notifications');
select throws_ok($$ update public.notifications set title = 'changed' $$, '42501', null, 'A cannot change a notification''s text');
select throws_ok($$ delete from public.notifications $$, '42501', null, 'A cannot delete notifications');
select throws_ok($$ delete from public.my_key $$, '42501', null, 'A cannot delete through the my_key view');

-- ---------------------------------------------------------------- user A, private functions and tables
select throws_ok($$ select * from private.apply_payment('x', 'success', 500, null, 'USD', 'test', 'test', 1, now()) $$,
                 '42501', null, 'A cannot execute private.apply_payment');
select throws_ok($$ select * from private.create_checkout('03000000-0000-4000-8000-00000000000a', 'starter') $$,
                 '42501', null, 'A cannot execute private.create_checkout');
select throws_ok($$ select private.record_spend_batch(0, '[]'::jsonb) $$,
                 '42501', null, 'A cannot execute private.record_spend_batch');
select throws_ok($$ select * from private.apply_refunds('x', '[]'::jsonb) $$,
                 '42501', null, 'A cannot execute private.apply_refunds');
select throws_ok($$ select private.requeue_provisioning() $$,
                 '42501', null, 'A cannot execute private.requeue_provisioning');
select throws_ok($$ select private.key_target_budget(gen_random_uuid()) $$,
                 '42501', null, 'A cannot execute private.key_target_budget');
select throws_ok($$ select * from private.provisioning_jobs $$, '42501', null, 'A cannot read private.provisioning_jobs');
select throws_ok($$ select * from private.settings $$, '42501', null, 'A cannot read private.settings');
select throws_ok($$ select * from public.admin_drift $$, '42501', null, 'authenticated cannot read admin_drift');
select throws_ok($$ select * from public.admin_dead_jobs $$, '42501', null, 'authenticated cannot read admin_dead_jobs');
select throws_ok($$ select * from public.admin_sync_failures $$, '42501', null, 'authenticated cannot read admin_sync_failures');
select throws_ok($$ select * from public.admin_rejected_deliveries $$, '42501', null, 'authenticated cannot read admin_rejected_deliveries');

-- ---------------------------------------------------------------- user B, reading: the same from the other side
select tests.authenticate_as('03000000-0000-4000-8000-00000000000b');
select results_eq($$ select * from pg_temp.visible_rows() $$,
                  $$ select r, '03000000-0000-4000-8000-00000000000b'::uuid, n
                       from (values ('api_keys'::text, 1), ('auto_topup_settings', 1), ('checkouts', 2), ('credit_ledger', 2),
                                    ('my_account', 1), ('my_daily_usage', 1), ('my_key', 1), ('my_ledger', 3), ('my_lots', 2), ('my_notifications', 1),
                                    ('my_payments', 1), ('my_receipts', 1), ('my_usage_by_model', 2), ('notifications', 1),
                                    ('payment_methods', 1), ('payments', 1), ('profiles', 1), ('spend_snapshots', 1),
                                    ('usage_by_model', 1), ('usage_counted', 1), ('usage_gaps', 1)) v(r, n) $$,
                  'B sees all of their own rows (their open checkout too), and only those, in every table and view');
select tests.clear_authentication();

-- ---------------------------------------------------------------- anon
select tests.authenticate_as_anon();
select throws_ok($$ select * from public.profiles $$, '42501', null, 'anon cannot read profiles');
select throws_ok($$ select * from public.credit_ledger $$, '42501', null, 'anon cannot read credit_ledger');
select throws_ok($$ select * from public.api_keys $$, '42501', null, 'anon cannot read api_keys');
select throws_ok($$ select * from public.payments $$, '42501', null, 'anon cannot read payments');
select throws_ok($$ select * from public.checkouts $$, '42501', null, 'anon cannot read checkouts');
select throws_ok($$ select * from public.spend_snapshots $$, '42501', null, 'anon cannot read spend_snapshots');
select throws_ok($$ select * from public.my_account $$, '42501', null, 'anon cannot read my_account');
select throws_ok($$ select * from public.my_lots $$, '42501', null, 'anon cannot read my_lots');
select throws_ok($$ select * from public.my_key $$, '42501', null, 'anon cannot read my_key');
select throws_ok($$ select * from public.admin_drift $$, '42501', null, 'anon cannot read admin_drift');
select throws_ok($$ select * from public.admin_dead_jobs $$, '42501', null, 'anon cannot read admin_dead_jobs');
select throws_ok($$ select * from public.my_usage_by_model $$, '42501', null, 'anon cannot read my_usage_by_model');
select results_eq($$ select code from public.plans order by sort_order $$, $$ values ('starter'::text), ('pro'), ('max') $$,
                  'anon reads the active plans (the pricing page)');
select tests.clear_authentication();
update public.plans set active = false where code = 'max';
select tests.authenticate_as_anon();
select results_eq($$ select code from public.plans order by sort_order $$, $$ values ('starter'::text), ('pro') $$,
                  'anon does not see an inactive plan');
select tests.clear_authentication();

-- ---------------------------------------------------------------- service_role reads the admin views
do $$
begin
  update private.settings set value = '1' where key = 'provision_max_attempts';
  -- B's key is re-provisioned and that fails for good
  perform private.enqueue_provisioning(k.id) from public.api_keys k where k.user_id = '03000000-0000-4000-8000-00000000000b';
  perform private.fail_provisioning(j.id, 1, 'litellm down') from private.provisioning_jobs j
    where j.user_id = '03000000-0000-4000-8000-00000000000b' and j.status = 'queued';
end
$$;
select tests.authenticate_as_service_role();
select set_eq($$ select user_id from public.admin_drift $$,
              $$ values ('03000000-0000-4000-8000-00000000000a'::uuid) $$,
              'service_role reads admin_drift (A''s key: confirmed 2.00, target 12.00)');
select set_eq($$ select user_id from public.admin_dead_jobs $$,
              $$ values ('03000000-0000-4000-8000-00000000000b'::uuid) $$,
              'service_role reads admin_dead_jobs');
select set_eq($$ select user_id from public.admin_sync_failures $$,
              $$ values ('03000000-0000-4000-8000-00000000000b'::uuid) $$,
              'service_role reads admin_sync_failures');
select set_eq($$ select reference from public.admin_rejected_deliveries $$,
              $$ values ('forged'::text) $$,
              'service_role reads admin_rejected_deliveries');
select tests.clear_authentication();

select * from finish();
rollback;
