-- Spend hints (LiteLLM's logging callback): views show the larger of pulled spend and the latest hint,
-- a hint never lowers what is known, stale hints are ignored, and hints never touch budgets.
begin;
select plan(9);

insert into auth.users (id, email, aud, role, email_confirmed_at)
values ('13000000-0000-4000-8000-000000000001', 'hint@pgtap.test', 'authenticated', 'authenticated', now());
update public.api_keys set status = 'active' where user_id = '13000000-0000-4000-8000-000000000001';
create temp table t_key as select id, key_token from public.api_keys where user_id = '13000000-0000-4000-8000-000000000001';

select is(private.record_spend_hints(jsonb_build_array(
            jsonb_build_object('token', (select key_token from t_key), 'spend', 0.40),
            jsonb_build_object('token', (select key_token from t_key), 'spend', 0.75),
            jsonb_build_object('token', repeat('0', 64), 'spend', 5))),
          '{"matched": 1, "updated": 1}'::jsonb, 'the largest hint per known key is kept; unknown tokens are ignored');
select is(public.key_spend(k), 0.75, 'key_spend shows the hint while the pull has seen less')
  from public.api_keys k where k.id = (select id from t_key);
select is(private.record_spend_hints(jsonb_build_array(jsonb_build_object('token', (select key_token from t_key), 'spend', 0.5))),
          '{"matched": 1, "updated": 0}'::jsonb, 'a smaller (older) hint does not lower it');

select tests.authenticate_as('13000000-0000-4000-8000-000000000001');
select is((select spent from public.my_account), 0.75, 'my_account counts the hint');
select is((select remaining from public.my_account), 1.25, 'and the remaining credit moves at once');
select tests.clear_authentication();

update public.api_keys set spend = 1.10 where id = (select id from t_key);
select is(public.key_spend(k), 1.10, 'a larger pulled spend wins (never hint + pull)')
  from public.api_keys k where k.id = (select id from t_key);
update public.api_keys set spend = 0.20, hinted_at = now() - interval '11 minutes' where id = (select id from t_key);
select is(public.key_spend(k), 0.20, 'a hint older than 10 minutes is ignored: the pull is the final word')
  from public.api_keys k where k.id = (select id from t_key);
select is(private.key_target_budget((select id from t_key)), 2.00, 'hints never change the budget target');

select tests.authenticate_as('13000000-0000-4000-8000-000000000001');
select throws_ok($$ select private.record_spend_hints('[]') $$, '42501', null, 'users cannot record hints');
select tests.clear_authentication();

select * from finish();
rollback;
