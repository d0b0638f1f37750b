-- Sign-up (the handle_new_user trigger on auth.users) of a user created with a confirmed address (admin API
-- with email_confirm, or Auth with confirmations off): profile, +2.00 grant at once, a pending key whose value
-- is chosen now, one provisioning job and one pg_net call to provision-key with the cron secret from vault.
-- Sign-up before confirmation and the grant on confirmation: 16_signup_confirmation.sql.
begin;
select plan(22);

do $$ begin perform tests.use_test_vault_secrets(); end $$; -- known secrets (the stack's own come back with the rollback)

insert into auth.users (id, email, aud, role, email_confirmed_at)
values ('02000000-0000-4000-8000-00000000000a', 'signup-a@pgtap.test', 'authenticated', 'authenticated', now());

select results_eq(
  $$ select id, email from public.profiles where id = '02000000-0000-4000-8000-00000000000a' $$,
  $$ values ('02000000-0000-4000-8000-00000000000a'::uuid, 'signup-a@pgtap.test'::text) $$,
  'sign-up creates exactly one profile with the email'
);
select results_eq(
  $$ select kind, amount, payment_id, idempotency_key from public.credit_ledger where user_id = '02000000-0000-4000-8000-00000000000a' $$,
  $$ values ('signup_grant'::text, 2.00::numeric(12, 2), null::bigint, 'signup:02000000-0000-4000-8000-00000000000a'::text) $$,
  'sign-up writes exactly one ledger row: a signup_grant of 2.00'
);
select is((select count(*)::int from public.api_keys where user_id = '02000000-0000-4000-8000-00000000000a'), 1,
          'sign-up creates exactly one api_keys row');
select results_eq(
  $$ select status, sync_status, blocked, spend, key_alias from public.api_keys where user_id = '02000000-0000-4000-8000-00000000000a' $$,
  $$ values ('pending'::text, 'pending'::text, false, 0::numeric, 'lc-02000000-0000-4000-8000-00000000000a'::text) $$,
  'the key is pending, not blocked, with no spend and a deterministic alias'
);
select matches((select key_value from public.api_keys where user_id = '02000000-0000-4000-8000-00000000000a'),
               '^sk-[A-Za-z0-9_-]{32}$', 'the key value is sk- and 32 url-safe characters');
select is((select key_token from public.api_keys where user_id = '02000000-0000-4000-8000-00000000000a'),
          (select encode(extensions.digest(key_value, 'sha256'), 'hex') from public.api_keys
            where user_id = '02000000-0000-4000-8000-00000000000a'),
          'key_token is the sha256 hex of the key value (how LiteLLM names the key)');
select is(private.key_target_budget((select id from public.api_keys where user_id = '02000000-0000-4000-8000-00000000000a')),
          2.00::numeric, 'the key''s target max_budget is the 2.00 grant');
select results_eq(
  $$ select j.status, j.attempts, j.key_id from private.provisioning_jobs j where j.user_id = '02000000-0000-4000-8000-00000000000a' $$,
  $$ select 'queued'::text, 0, k.id from public.api_keys k where k.user_id = '02000000-0000-4000-8000-00000000000a' $$,
  'sign-up queues exactly one provisioning job for the key'
);
select ok((select run_after <= now() from private.provisioning_jobs where user_id = '02000000-0000-4000-8000-00000000000a'),
          'the provisioning job is due immediately');

create temp table t_calls_a as
select q.* from net.http_request_queue q
 where q.url like '%/functions/v1/provision-key'
   and convert_from(q.body, 'utf8')::jsonb ->> 'user_id' = '02000000-0000-4000-8000-00000000000a';
select is((select count(*)::int from t_calls_a), 1, 'sign-up queues exactly one pg_net request to provision-key');
select results_eq(
  $$ select method, url from t_calls_a $$,
  $$ values ('POST'::text, 'https://project.pgtap.test/functions/v1/provision-key'::text) $$,
  'the request POSTs to <project_url>/functions/v1/provision-key'
);
select is((select headers ->> 'Authorization' from t_calls_a), 'Bearer pgtap-cron-secret-0123456789',
          'the request carries the cron secret from vault');
select is((select convert_from(body, 'utf8')::jsonb from t_calls_a), '{"user_id": "02000000-0000-4000-8000-00000000000a"}'::jsonb,
          'the request body names the user');

-- A second user: a different key value, a second grant, nothing shared.
insert into auth.users (id, email, aud, role, email_confirmed_at)
values ('02000000-0000-4000-8000-00000000000b', 'signup-b@pgtap.test', 'authenticated', 'authenticated', now());
select isnt((select key_value from public.api_keys where user_id = '02000000-0000-4000-8000-00000000000a'),
            (select key_value from public.api_keys where user_id = '02000000-0000-4000-8000-00000000000b'),
            'two users get different key values');
select is((select count(*)::int from public.credit_ledger where user_id = '02000000-0000-4000-8000-00000000000a'), 1,
          'another user''s sign-up adds nothing to the first user''s ledger');

-- The dashboard view of a fresh user
select tests.authenticate_as('02000000-0000-4000-8000-00000000000a');
select results_eq(
  $$ select granted, spent, remaining, savings, paid, remaining_percent from public.my_account $$,
  $$ values (2.00::numeric, 0::numeric, 2.00::numeric, 0::numeric, 0::numeric, 100.0::numeric) $$,
  'a fresh user sees 2.00 granted and remaining, nothing spent or paid'
);
select tests.clear_authentication();

-- Vault secrets missing: sign-up still succeeds, nothing is queued for pg_net.
delete from vault.secrets where name in ('project_url', 'cron_secret');
set local client_min_messages = error; -- invoke_function warns about the missing secrets
select lives_ok(
  $$ insert into auth.users (id, email, aud, role, email_confirmed_at)
     values ('02000000-0000-4000-8000-00000000000c', 'signup-c@pgtap.test', 'authenticated', 'authenticated', now()) $$,
  'sign-up succeeds when the vault secrets are missing'
);
select is((select count(*)::int from public.profiles where id = '02000000-0000-4000-8000-00000000000c'), 1,
          'without vault secrets: the profile exists');
select is((select sum(amount) from public.credit_ledger where user_id = '02000000-0000-4000-8000-00000000000c'), 2.00::numeric,
          'without vault secrets: the 2.00 grant exists');
select is((select count(*)::int from private.provisioning_jobs j join public.api_keys k on k.id = j.key_id
            where k.user_id = '02000000-0000-4000-8000-00000000000c' and k.status = 'pending' and j.status = 'queued'), 1,
          'without vault secrets: the pending key and its queued job exist (the cron sweep will pick it up)');
select is_empty(
  $$ select 1 from net.http_request_queue q
      where q.body is not null and convert_from(q.body, 'utf8') like '%02000000-0000-4000-8000-00000000000c%' $$,
  'without vault secrets: no pg_net request is queued'
);

-- The grant comes from private.settings
update private.settings set value = '3.50' where key = 'signup_grant_usd';
insert into auth.users (id, email, aud, role, email_confirmed_at)
values ('02000000-0000-4000-8000-00000000000d', 'signup-d@pgtap.test', 'authenticated', 'authenticated', now());
select is((select amount from public.credit_ledger where user_id = '02000000-0000-4000-8000-00000000000d'), 3.50::numeric(12, 2),
          'the sign-up grant is read from private.settings');

select * from finish();
rollback;
