-- Repairs of keys edited by hand on LiteLLM (20261202000520): each is recorded with what was found, and one
-- admin view lists budget and block repairs.
begin;
select plan(3);

do $$ begin perform tests.active_users('19200000-0000-4000-8000-', 1); end $$;
create temp table t_key as select * from public.api_keys where user_id = '19200000-0000-4000-8000-000000000001';
do $$
begin
  perform private.record_budget_repair((select id from t_key), 99, 2.00, 'pushed');
  perform private.record_block_repair((select id from t_key), false, true, 'pushed');
  perform private.record_block_repair((select id from t_key), true, false, 'failed');
end
$$;
select results_eq($$ select kind, found, set_to, outcome from public.admin_litellm_repairs where key_id = (select id from t_key) order by kind, outcome desc $$,
                  $$ values ('blocked'::text, 'false'::text, 'true'::text, 'pushed'::text), ('blocked', 'true', 'false', 'failed'),
                            ('max_budget', '99', '2.00', 'pushed') $$,
                  'the admin view lists each repair with what LiteLLM had and what it was set to');
select is((select user_id from public.admin_litellm_repairs where key_id = (select id from t_key) limit 1),
          '19200000-0000-4000-8000-000000000001'::uuid, 'with the key''s user');
select throws_ok($$ select private.record_block_repair((select id from t_key), true, false, 'maybe') $$, '23514', null,
                 'an outcome is pushed or failed');

select * from finish();
rollback;
