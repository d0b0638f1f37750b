-- The ledger target of a key, inlined into reconcile's batch (issue 18, bench:reconcile at 1,000,000 keys).
--
-- private.key_target_budget is a SECURITY DEFINER function with SET search_path: Postgres runs every call as a
-- separate execution (the SET is applied and undone around it) and cannot inline it. record_spend_batch called
-- it once per key of a chunk, 1,000 calls a chunk and a million a cycle at 1,000,000 keys, even where nothing
-- changed (drift is judged against the target every cycle). The definition now lives in public.key_target, a
-- table function with no SET clause and every name schema-qualified, which the planner inlines into the
-- calling query (as public.remaining_credit is: 20261126000600); key_target_budget returns its row, so both
-- stay one definition. It is executable by service_role only (and by the definer functions' owner).

create function public.key_target(p_key_id uuid) returns table (target numeric)
language sql stable as $$
  select case when k.status = 'retired' then coalesce(k.retired_spend, k.spend)
    else greatest(0, coalesce((select sum(l.amount) from public.credit_ledger l where l.user_id = k.user_id), 0)
                   - coalesce((select sum(coalesce(r.retired_spend, r.spend)) from public.api_keys r
                                where r.user_id = k.user_id and r.status = 'retired'), 0)
                   - k.spend_offset)
    end
  from public.api_keys k where k.id = p_key_id
$$;
revoke execute on function public.key_target(uuid) from public, anon, authenticated;
grant execute on function public.key_target(uuid) to service_role;

create or replace function private.key_target_budget(p_key_id uuid) returns numeric
language sql stable security definer set search_path = '' as $$
  select t.target from public.key_target(p_key_id) t
$$;

-- As in 20261126000500, with the target joined (inlined) instead of called per key.
create or replace function private.record_spend_batch_as_reported(p_chunk integer, p_rows jsonb)
returns jsonb language plpgsql volatile security definer set search_path = '' as $$
declare
  v_result jsonb;
  v_retired jsonb;
  v_window numeric := private.setting_numeric('retired_key_settle_seconds');
begin
  with seen as (
    select k.id as key_id, k.user_id, k.key_value, k.retired_spend, k.observed_max_budget,
           greatest(k.retired_at, k.spend_observed_at) as last_moved_at,
           r.token is not null as is_found,
           -- rounded up to 1e-8 USD as at retirement, so targets keep at most 8 decimals
           trim_scale(ceil(r.spend * 100000000) / 100000000) as spend
      from public.api_keys k
      left join jsonb_to_recordset(p_rows) as r(token text, spend numeric) on r.token = k.key_token
     where k.reconcile_chunk = p_chunk and k.status = 'retired' and k.settled_at is null
  ), late as (
    select s.* from seen s where s.is_found and s.spend > s.retired_spend
  ), snaps as (
    insert into public.spend_snapshots (key_id, user_id, spend, max_budget)
    select l.key_id, l.user_id, l.spend, l.observed_max_budget from late l
    returning 1
  ), updated as (
    update public.api_keys k
       set retired_spend = coalesce(l.spend, k.retired_spend), spend = coalesce(l.spend, k.spend),
           spend_observed_at = case when l.key_id is not null then now() else k.spend_observed_at end,
           settled_at = case when not s.is_found then now() end
      from seen s left join late l on l.key_id = s.key_id
     where k.id = s.key_id and k.reconcile_chunk = p_chunk and (l.key_id is not null or not s.is_found)
    returning k.id
  )
  select jsonb_build_object(
    'settling', (select count(*) from seen),
    'late_spend', (select count(*) from late),
    'gone', (select count(*) from seen s where not s.is_found),
    'late', coalesce((select jsonb_agg(distinct jsonb_build_object('key_id', lk.id))
                        from late l join public.api_keys lk on lk.user_id = l.user_id and lk.status = 'active'), '[]'::jsonb),
    'settle', coalesce((select jsonb_agg(jsonb_build_object('key_id', s.key_id, 'key', s.key_value))
                          from seen s
                         where s.is_found and s.spend <= s.retired_spend
                           and s.last_moved_at <= now() - make_interval(secs => v_window::double precision)), '[]'::jsonb),
    'updated', (select count(*) from updated)
  ) into v_retired;

  with seen as (
    select k.id as key_id, k.user_id, k.key_token, k.budget_version, k.blocked as want_blocked, k.block_synced, k.flag, k.sync_status,
           r.token is not null as is_found, r.spend, r.max_budget, r.blocked,
           r.token is not null and (r.spend is distinct from k.spend or r.max_budget is distinct from k.observed_max_budget
                                    or r.blocked is distinct from k.litellm_blocked) as changed,
           t.target
      from public.api_keys k
      left join jsonb_to_recordset(p_rows) as r(token text, spend numeric, max_budget numeric, blocked boolean)
        on r.token = k.key_token
      cross join lateral public.key_target(k.id) t
     where k.reconcile_chunk = p_chunk and k.status = 'active'
  ), judged as (
    select s.*,
           case when not s.is_found then 'deleted_externally'
                when s.blocked and not s.want_blocked and s.block_synced then 'blocked_externally' end as new_flag,
           case when not s.is_found then 'failed'
                when s.max_budget = s.target then 'synced'
                when s.sync_status = 'failed' then 'failed'
                else 'pending' end as new_sync
      from seen s
  ), snaps as (
    insert into public.spend_snapshots (key_id, user_id, spend, max_budget)
    select j.key_id, j.user_id, j.spend, j.max_budget from judged j where j.changed
    returning 1
  ), updated as (
    update public.api_keys k
       set spend = case when j.changed then j.spend else k.spend end,
           observed_max_budget = case when j.changed then j.max_budget else k.observed_max_budget end,
           litellm_blocked = case when j.changed then j.blocked else k.litellm_blocked end,
           spend_observed_at = case when j.changed then now() else k.spend_observed_at end,
           litellm_max_budget = case when j.is_found then j.max_budget else k.litellm_max_budget end,
           flag = j.new_flag,
           flag_detail = case j.new_flag when 'deleted_externally' then 'key not found on LiteLLM'
                                         when 'blocked_externally' then 'blocked on LiteLLM, not by a dispute' end,
           sync_status = j.new_sync,
           last_sync_at = case when j.new_sync = 'synced' and k.sync_status <> 'synced' then now() else k.last_sync_at end,
           last_sync_error = case when not j.is_found then 'key not found on LiteLLM'
                                  when j.new_sync = 'synced' then null else k.last_sync_error end
      from judged j
     where j.key_id = k.id and k.reconcile_chunk = p_chunk and k.status = 'active'
       and (j.changed or j.new_flag is distinct from k.flag or j.new_sync is distinct from k.sync_status)
    returning 1
  )
  select jsonb_build_object(
    'chunk', p_chunk,
    'keys', (select count(*) from judged),
    'found', (select count(*) from judged j where j.is_found),
    'missing', (select count(*) from judged j where not j.is_found),
    'snapshots', (select count(*) from snaps) + (v_retired ->> 'late_spend')::integer,
    'updated', (select count(*) from updated),
    -- money as text: a JSON number would reach TypeScript as a float
    'drift', coalesce((select jsonb_agg(jsonb_build_object('key_id', j.key_id, 'token', j.key_token, 'target', j.target::text,
                                                           'version', j.budget_version, 'observed', j.max_budget::text))
                         from judged j where j.is_found and j.max_budget is distinct from j.target), '[]'::jsonb),
    'block', coalesce((select jsonb_agg(jsonb_build_object('key_id', j.key_id, 'token', j.key_token, 'blocked', j.want_blocked))
                         from judged j
                        where j.is_found and coalesce(j.blocked, false) <> j.want_blocked
                          and (j.want_blocked or not j.block_synced)), '[]'::jsonb),
    'retired', v_retired
  ) into v_result;

  update public.reconcile_chunks
     set last_finished_at = now(), lease_until = null, last_error = null
   where chunk = p_chunk;
  return v_result;
end
$$;

revoke execute on all functions in schema private from public, anon, authenticated;
grant execute on all functions in schema private to service_role;
