-- Usage by model (20261202000800): the callback's requests count once per request id, a pull replaces its
-- day (one source per key and day: the one explaining more), users see only their own rows, 'other' is the
-- key's spend minus the sum of its models, and a non-zero 'other' is listed for the operator.
begin;
select plan(20);

select tests.create_user('22000000-0000-4000-8000-000000000001', 'usage-a@pgtap.test');
select tests.create_user('22000000-0000-4000-8000-000000000002', 'usage-b@pgtap.test');
update public.api_keys set status = 'active' where user_id in ('22000000-0000-4000-8000-000000000001', '22000000-0000-4000-8000-000000000002');
create temp table t_key as
select user_id, id, key_token from public.api_keys where user_id in ('22000000-0000-4000-8000-000000000001', '22000000-0000-4000-8000-000000000002');
create temp table t_day as select (now() at time zone 'utc')::date as today;
grant select on t_key, t_day to authenticated;

-- A's requests on three models today; one request id twice in the batch and again in a second delivery.
create temp table t_events as
select jsonb_build_array(
  jsonb_build_object('id', 'req-1', 'token', (select key_token from t_key where user_id = '22000000-0000-4000-8000-000000000001'),
                     'model', 'gpt-4o-mini', 'cost', 0.0000195, 'input_tokens', 10, 'output_tokens', 30,
                     'start_time', extract(epoch from now())),
  jsonb_build_object('id', 'req-1', 'token', (select key_token from t_key where user_id = '22000000-0000-4000-8000-000000000001'),
                     'model', 'gpt-4o-mini', 'cost', 0.0000195, 'input_tokens', 10, 'output_tokens', 30,
                     'start_time', extract(epoch from now())),
  jsonb_build_object('id', 'req-2', 'token', (select key_token from t_key where user_id = '22000000-0000-4000-8000-000000000001'),
                     'model', 'test-expensive', 'cost', 0.026, 'input_tokens', 10, 'output_tokens', 16,
                     'start_time', extract(epoch from now())),
  jsonb_build_object('id', 'req-3', 'token', (select key_token from t_key where user_id = '22000000-0000-4000-8000-000000000001'),
                     'model', 'claude-3-5-haiku', 'cost', 0.000072, 'input_tokens', 10, 'output_tokens', 16,
                     'start_time', extract(epoch from now())),
  jsonb_build_object('id', 'req-x', 'token', repeat('0', 64), 'model', 'gpt-4o-mini', 'cost', 5,
                     'start_time', extract(epoch from now()))) as rows;

select is(private.record_usage_events((select rows from t_events)), '{"requests": 3, "counted": 3}'::jsonb,
          'three requests of a known key counted; a repeated id in one batch and an unknown key are not');
select is(private.record_usage_events((select rows from t_events)), '{"requests": 3, "counted": 0}'::jsonb,
          'the same batch delivered again counts nothing');
select is((select spend from public.usage_by_model where model = 'gpt-4o-mini'
             and key_id = (select id from t_key where user_id = '22000000-0000-4000-8000-000000000001')), 0.0000195,
          'a request delivered twice counts once (spend)');
select is((select requests::integer from public.usage_by_model where model = 'gpt-4o-mini'
             and key_id = (select id from t_key where user_id = '22000000-0000-4000-8000-000000000001')), 1,
          'a request delivered twice counts once (requests)');
select is((select sum(spend) from public.usage_by_model
            where key_id = (select id from t_key where user_id = '22000000-0000-4000-8000-000000000001')), 0.0260915,
          'three models, exact sums');

-- 'other': the key's spend minus the sum of its models.
update public.api_keys set spend = 0.0260915 where id = (select id from t_key where user_id = '22000000-0000-4000-8000-000000000001');
select is((select other from public.usage_gaps where key_id = (select id from t_key where user_id = '22000000-0000-4000-8000-000000000001')),
          0::numeric, 'models add up to the key''s spend: other is 0');
select is((select count(*)::integer from public.admin_usage_gaps
            where key_id = (select id from t_key where user_id = '22000000-0000-4000-8000-000000000001')), 0,
          'and nothing is flagged');
update public.api_keys set spend = 0.5260915 where id = (select id from t_key where user_id = '22000000-0000-4000-8000-000000000001');
select is((select other from public.admin_usage_gaps where key_id = (select id from t_key where user_id = '22000000-0000-4000-8000-000000000001')),
          0.5, 'spend the models do not explain is flagged to the operator with its amount');

-- B: spend on LiteLLM, no usage rows at all: all of it is 'other'.
update public.api_keys set spend = 0.3 where id = (select id from t_key where user_id = '22000000-0000-4000-8000-000000000002');

select tests.authenticate_as('22000000-0000-4000-8000-000000000001');
select is((select count(*)::integer from public.usage_by_model), 3, 'a user reads their own usage rows only');
select is((select spend from public.my_usage_by_model where model = 'other'), 0.5,
          'my_usage_by_model shows the unexplained spend as model ''other''');
select is((select day from public.my_usage_by_model where model = 'other'), (select today from t_day), 'dated today (UTC)');
select is((select sum(spend) from public.my_usage_by_model), 0.5260915, 'models + other = the key''s spend');
select is((select count(*)::integer from public.my_usage_by_model where user_id <> '22000000-0000-4000-8000-000000000001'), 0,
          'no other user''s rows');
select throws_ok($$ select private.record_usage_events('[]') $$, '42501', null, 'users cannot record usage');
select throws_ok($$ select * from public.admin_usage_gaps $$, '42501', null, 'nor read the operator''s list');
select tests.clear_authentication();

-- The pull: a page for today with A's key (pages are applied in order, once), then the last page.
create temp table t_pull as select * from private.claim_usage_pulls(5, true);
select is(private.record_usage_pull_page((select pull_id from t_pull where day = (select today from t_day)), 1, 2,
            jsonb_build_array(jsonb_build_object('token', (select key_token from t_key where user_id = '22000000-0000-4000-8000-000000000001'),
                                                 'model', 'gpt-4o-mini', 'spend', 0.0000195, 'requests', 1, 'input_tokens', 10, 'output_tokens', 30))),
          '{"applied": true, "finished": false, "rows": 1}'::jsonb, 'page 1 of 2 is staged');
select is(private.record_usage_pull_page((select pull_id from t_pull where day = (select today from t_day)), 1, 2, '[]'),
          '{"applied": false, "finished": false, "rows": 0}'::jsonb, 'page 1 again adds nothing');
select is(private.record_usage_pull_page((select pull_id from t_pull where day = (select today from t_day)), 2, 2,
            jsonb_build_array(jsonb_build_object('token', (select key_token from t_key where user_id = '22000000-0000-4000-8000-000000000001'),
                                                 'model', 'test-expensive', 'spend', 0.526072, 'requests', 2, 'input_tokens', 20, 'output_tokens', 32))),
          '{"applied": true, "finished": true, "rows": 2}'::jsonb, 'the last page replaces the day''s pulled rows');
select is((select other from public.usage_gaps where key_id = (select id from t_key where user_id = '22000000-0000-4000-8000-000000000001')),
          0::numeric, 'the pull explains more of that key and day than the callback: it counts, alone');
select private.record_usage_events(jsonb_build_array(jsonb_build_object(
  'id', 'req-4', 'token', (select key_token from t_key where user_id = '22000000-0000-4000-8000-000000000001'),
  'model', 'gpt-4o-mini', 'cost', 1.0, 'input_tokens', 1, 'output_tokens', 1, 'start_time', extract(epoch from now()))));
select is((select other from public.usage_gaps where key_id = (select id from t_key where user_id = '22000000-0000-4000-8000-000000000001')),
          -0.5, 'once the callback explains more, it counts alone (never both): other = 0.5260915 - 1.0260915');

select * from finish();
rollback;
