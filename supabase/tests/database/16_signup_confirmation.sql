-- The sign-up grant waits for a confirmed email address (migration 20261202000400): a user signed up
-- unconfirmed has a profile, a key row (provisioned with a budget of 0) and no credit; confirming records the
-- grant exactly once, bumps the key's budget version and asks push-budget to raise it; the operator setting
-- signup_grant_requires_confirmation = false grants at sign-up.
begin;
select plan(22);

do $$ begin perform tests.use_test_vault_secrets(); end $$; -- known secrets (the stack's own come back with the rollback)

create function pg_temp.calls(p_fn text, p_user uuid) returns integer language sql as $$
  select count(*)::int from net.http_request_queue q
   where q.url = 'https://project.pgtap.test/functions/v1/' || p_fn
     and convert_from(q.body, 'utf8')::jsonb ->> 'user_id' = p_user::text
$$;
create function pg_temp.key_of(p_user uuid) returns uuid language sql as $$
  select id from public.api_keys where user_id = p_user and status <> 'retired'
$$;

select is((select value from private.settings where key = 'signup_grant_requires_confirmation'), 'true'::jsonb,
          'signup_grant_requires_confirmation is on by default');

-- ---------------------------------------------------------------- signed up, not confirmed
insert into auth.users (id, email, aud, role)
values ('16000000-0000-4000-8000-00000000000a', 'confirm-a@pgtap.test', 'authenticated', 'authenticated');

select is((select count(*)::int from public.profiles where id = '16000000-0000-4000-8000-00000000000a'), 1,
          'unconfirmed: the profile exists');
select is_empty($$ select 1 from public.credit_ledger where user_id = '16000000-0000-4000-8000-00000000000a' $$,
                'unconfirmed: no ledger row, no credit');
select results_eq(
  $$ select k.status, j.status from public.api_keys k join private.provisioning_jobs j on j.key_id = k.id
      where k.user_id = '16000000-0000-4000-8000-00000000000a' $$,
  $$ values ('pending'::text, 'queued'::text) $$,
  'unconfirmed: the key row and its provisioning job exist (the key is created on LiteLLM now)');
select is(private.key_target_budget(pg_temp.key_of('16000000-0000-4000-8000-00000000000a')), 0::numeric,
          'unconfirmed: the key''s target max_budget is 0 (LiteLLM blocks it)');
select is(pg_temp.calls('provision-key', '16000000-0000-4000-8000-00000000000a'), 1, 'unconfirmed: provision-key is called');
select is(pg_temp.calls('push-budget', '16000000-0000-4000-8000-00000000000a'), 0, 'unconfirmed: no budget push');

-- Provisioned at 0 (what provision-key records), then another update of the user that is not a confirmation.
do $$ begin perform private.mark_key_active(pg_temp.key_of('16000000-0000-4000-8000-00000000000a'), 0); end $$;
update auth.users set last_sign_in_at = now(), raw_user_meta_data = '{"x": 1}' where id = '16000000-0000-4000-8000-00000000000a';
select is_empty($$ select 1 from public.credit_ledger where user_id = '16000000-0000-4000-8000-00000000000a' $$,
                'an update that does not confirm the address grants nothing');
create temp table t_before as
select budget_version, sync_status from public.api_keys where user_id = '16000000-0000-4000-8000-00000000000a';
select is((select sync_status from t_before), 'synced', 'the key at 0 is in sync before the confirmation');

-- ---------------------------------------------------------------- confirmation
update auth.users set email_confirmed_at = now(), confirmation_token = '' where id = '16000000-0000-4000-8000-00000000000a';
select results_eq(
  $$ select kind, amount, idempotency_key from public.credit_ledger where user_id = '16000000-0000-4000-8000-00000000000a' $$,
  $$ values ('signup_grant'::text, 2.00::numeric(12, 2), 'signup:16000000-0000-4000-8000-00000000000a'::text) $$,
  'confirming records exactly one signup_grant of 2.00');
select is(private.key_target_budget(pg_temp.key_of('16000000-0000-4000-8000-00000000000a')), 2.00::numeric,
          'after confirmation the key''s target is 2.00');
select results_eq(
  $$ select k.budget_version, k.sync_status from public.api_keys k where k.user_id = '16000000-0000-4000-8000-00000000000a' $$,
  $$ select budget_version + 1, 'pending'::text from t_before $$,
  'the grant bumps the key''s budget version and marks it for a push');
select is(pg_temp.calls('push-budget', '16000000-0000-4000-8000-00000000000a'), 1,
          'confirming queues one pg_net call to push-budget for the user');
select is((select convert_from(q.body, 'utf8')::jsonb from net.http_request_queue q where q.url like '%/functions/v1/push-budget'
            and convert_from(q.body, 'utf8')::jsonb ->> 'user_id' = '16000000-0000-4000-8000-00000000000a'),
          '{"user_id": "16000000-0000-4000-8000-00000000000a", "skip_if_synced": true}'::jsonb,
          'the push skips the call if provisioning already gave LiteLLM the new target');

-- Confirmed again (a second click, or the address cleared and confirmed again): still one grant.
update auth.users set email_confirmed_at = now() where id = '16000000-0000-4000-8000-00000000000a';
update auth.users set email_confirmed_at = null where id = '16000000-0000-4000-8000-00000000000a';
update auth.users set email_confirmed_at = now() where id = '16000000-0000-4000-8000-00000000000a';
select is((select count(*)::int from public.credit_ledger where user_id = '16000000-0000-4000-8000-00000000000a'), 1,
          'confirming again adds no second grant');
select is(pg_temp.calls('push-budget', '16000000-0000-4000-8000-00000000000a'), 1, 'and no second push');
select is(private.grant_signup_credit('16000000-0000-4000-8000-00000000000a'), false,
          'grant_signup_credit is idempotent: a repeated call records nothing');

-- The dashboard view after confirmation.
select tests.authenticate_as('16000000-0000-4000-8000-00000000000a');
select results_eq($$ select granted, remaining from public.my_account $$, $$ values (2.00::numeric, 2.00::numeric) $$,
                  'the confirmed user sees 2.00 granted and remaining');
select tests.clear_authentication();

-- ---------------------------------------------------------------- created confirmed
insert into auth.users (id, email, aud, role, email_confirmed_at)
values ('16000000-0000-4000-8000-00000000000b', 'confirm-b@pgtap.test', 'authenticated', 'authenticated', now());
select is((select sum(amount) from public.credit_ledger where user_id = '16000000-0000-4000-8000-00000000000b'), 2.00::numeric,
          'a user created confirmed is granted at once');
select is(pg_temp.calls('push-budget', '16000000-0000-4000-8000-00000000000b'), 0,
          'and needs no push: provisioning creates the key with the target');

-- ---------------------------------------------------------------- the operator setting off
update private.settings set value = 'false' where key = 'signup_grant_requires_confirmation';
insert into auth.users (id, email, aud, role)
values ('16000000-0000-4000-8000-00000000000c', 'confirm-c@pgtap.test', 'authenticated', 'authenticated');
select is((select sum(amount) from public.credit_ledger where user_id = '16000000-0000-4000-8000-00000000000c'), 2.00::numeric,
          'with signup_grant_requires_confirmation = false an unconfirmed sign-up is granted at once');
update auth.users set email_confirmed_at = now() where id = '16000000-0000-4000-8000-00000000000c';
select is((select count(*)::int from public.credit_ledger where user_id = '16000000-0000-4000-8000-00000000000c'), 1,
          'and its later confirmation adds nothing');

select * from finish();
rollback;
