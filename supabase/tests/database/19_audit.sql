-- The audit's comparison (20261202000530): a key in sync has no mismatch; each difference is named with its
-- kind and both values; the totals; the last audit for health.
begin;
select plan(7);

do $$ begin perform tests.active_users('19300000-0000-4000-8000-', 1); end $$;
create temp table t_key as select k.*, private.key_target_budget(k.id) as target
  from public.api_keys k where user_id = '19300000-0000-4000-8000-000000000001';
create function pg_temp.mine(p jsonb) returns jsonb language sql as $$
  select coalesce(jsonb_agg(m - 'user_id' - 'key_id' order by m ->> 'kind'), '[]'::jsonb)
    from jsonb_array_elements(p -> 'mismatches') m where m ->> 'key_id' = (select id::text from t_key)
$$;
create function pg_temp.audit(p_spend text, p_max_budget text, p_blocked boolean) returns jsonb language sql as $$
  select private.audit_chunk((select reconcile_chunk from t_key), jsonb_build_array(jsonb_build_object(
    'token', (select key_token from t_key), 'spend', p_spend, 'max_budget', p_max_budget, 'blocked', p_blocked)))
$$;

select is(pg_temp.mine(pg_temp.audit('0', (select target::text from t_key), false)), '[]'::jsonb, 'a key in sync: no mismatch');
select is(pg_temp.mine(pg_temp.audit('0.25', '99', true)),
          jsonb_build_array(jsonb_build_object('kind', 'blocked', 'ledger', 'false', 'litellm', 'true'),
                            jsonb_build_object('kind', 'max_budget', 'ledger', (select target::text from t_key), 'litellm', '99'),
                            jsonb_build_object('kind', 'spend', 'ledger', '0', 'litellm', '0.25')),
          'each difference is named: block state, max_budget, spend');
select is(pg_temp.mine(private.audit_chunk((select reconcile_chunk from t_key), '[]'::jsonb)),
          jsonb_build_array(jsonb_build_object('kind', 'missing', 'ledger', null, 'litellm', null)), 'a key LiteLLM does not have is missing');
update public.api_keys set spend = 1.5, spend_offset = 1.4 where id = (select id from t_key);
select is(pg_temp.mine(pg_temp.audit('0.1', (select private.key_target_budget(id)::text from t_key), false)), '[]'::jsonb,
          'a key with an offset: offset + LiteLLM''s spend is compared with the recorded spend');
select is((select (private.audit_totals() ->> 'credit_granted')::numeric), (select sum(amount) from public.credit_ledger),
          'credit granted is the ledger total');
select is((select (private.audit_totals() ->> 'outstanding_liability')::numeric),
          (select sum(greatest(b.remaining, 0)) from public.profiles p cross join lateral public.remaining_credit(p.id) b),
          'the outstanding liability is what users may still spend');
do $$ begin perform private.record_audit(3, '{}'::jsonb); end $$;
select is(private.last_audit() ->> 'mismatches', '3', 'health reads the last audit');

select * from finish();
rollback;
