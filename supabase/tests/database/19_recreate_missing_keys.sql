-- Keys deleted on LiteLLM (20261202000510): health counts them; re-creation queues provisioning of the same
-- key value with the lost spend carried as an offset (so the budget it is created with gives no credit back);
-- the automatic mode is off by default.
begin;
select plan(11);

do $$ begin perform tests.active_users('19100000-0000-4000-8000-', 2); perform tests.use_test_vault_secrets(); end $$;
create temp table t_keys as select * from public.api_keys where user_id::text like '19100000-%' order by seq;
-- reconcile saw spend 1.50 for user 1's key, then LiteLLM lost both keys (absent from the batch)
do $$
begin
  perform private.record_spend_batch(k.reconcile_chunk, jsonb_build_array(jsonb_build_object('token', k.key_token, 'spend', '1.5',
                                               'max_budget', k.litellm_max_budget, 'blocked', false)))
     from t_keys k where k.user_id = '19100000-0000-4000-8000-000000000001';
  perform private.record_spend_batch(k.reconcile_chunk, jsonb_build_array(jsonb_build_object('token', 'another key', 'spend', 0)))
     from t_keys k where k.user_id = '19100000-0000-4000-8000-000000000001';
end
$$;
select is((select count(*) from public.api_keys k join t_keys t using (id) where k.flag = 'deleted_externally'), 2::bigint,
          'both keys are flagged deleted_externally');
select is((select (flagged_keys ->> 'deleted_externally')::int from private.health_status()),
          (select count(*)::int from public.api_keys where status = 'active' and flag = 'deleted_externally'),
          'health counts every flagged key (ours and the other keys of the chunk, absent from the batch)');

select is(private.auto_recreate_missing_keys(), 0, 'the automatic mode is off by default: nothing queued');
select is(private.recreate_missing_keys('19100000-0000-4000-8000-000000000001'), 1, 'an operator re-creates one user''s key');
select results_eq($$ select k.status, k.key_value, k.spend, k.spend_offset, private.key_target_budget(k.id)
                      from public.api_keys k where k.id = (select id from t_keys limit 1) $$,
                  $$ select 'pending'::text, (select key_value from t_keys limit 1), 1.5::numeric, 1.5::numeric, 0.50::numeric $$,
                  'pending with the same key value; the lost 1.50 is the offset, so it is created at max_budget 0.50');
select is((select count(*) from private.provisioning_jobs where key_id = (select id from t_keys limit 1) and status = 'queued'), 1::bigint,
          'a provisioning job is queued for it');
select results_eq($$ select recorded_spend, litellm_spend, offset_after from private.spend_resets where key_id = (select id from t_keys limit 1) $$,
                  $$ values (1.5::numeric, 0::numeric, 1.5::numeric) $$, 'the lost spend is recorded as a reset');
select is((select status from public.api_keys where id = (select id from t_keys offset 1 limit 1)), 'active', 'the other user''s key is untouched');
select is(private.recreate_missing_keys('19100000-0000-4000-8000-000000000001'), 0, 'repeating it queues nothing more');

update private.settings set value = 'true' where key = 'recreate_missing_keys_automatically';
create temp table t_requests as select count(*) as n from net.http_request_queue;
select cmp_ok(private.auto_recreate_missing_keys(), '>=', 1, 'with the automatic mode on, every flagged key is queued');
select cmp_ok((select count(*) from net.http_request_queue) - (select n from t_requests), '>=', 1::bigint, 'and provision-key is started');

select * from finish();
rollback;
