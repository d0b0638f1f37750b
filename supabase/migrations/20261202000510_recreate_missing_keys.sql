-- Keys deleted on LiteLLM behind our back (issue 19, item 2): an operator command (`npm run admin --
-- recreate <user|all>`) or, opt-in, reconcile itself re-creates them with the SAME key value and alias, so
-- the user's integration keeps working. LiteLLM's key generation accepts a caller-chosen `key` (the value is
-- ours, chosen at sign-up). The re-creation goes through provisioning (provision-key, createKeyAtTarget):
-- max_budget = private.key_target_budget, the one pushed-budget definition.
--
-- A re-created key starts at spend 0 on LiteLLM, so whatever the key had spent is LiteLLM's lost spend:
-- the key's spend_offset becomes its recorded spend first (and a spend reset is recorded,
-- 20261202000500), so the budget it is created with is already the lowered one and no credit comes back.

-- Its settings (recreate_missing_keys_automatically) are rows of private.settings, inserted in 20261126000100.

-- Queues the re-creation of up to p_limit flagged keys (one user's, or all) and returns how many were queued.
create function private.recreate_missing_keys(p_user_id uuid default null, p_limit integer default 1000) returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_ids uuid[];
begin
  with lost as (
    select k.id, k.user_id, k.spend, k.spend_offset from public.api_keys k
     where k.status = 'active' and k.flag = 'deleted_externally' and (p_user_id is null or k.user_id = p_user_id)
     order by k.seq limit p_limit
       for update
  ), events as (
    insert into private.spend_resets (key_id, user_id, recorded_spend, litellm_spend, offset_before, offset_after)
    select l.id, l.user_id, l.spend, 0, l.spend_offset, l.spend from lost l where l.spend > l.spend_offset
  ), offsets as (
    update public.api_keys k set spend_offset = greatest(l.spend, l.spend_offset)
      from lost l where k.id = l.id
    returning k.id
  )
  select coalesce(array_agg(o.id), '{}') into v_ids from offsets o;
  -- a separate statement: enqueue_provisioning updates the same rows
  return (select count(*) filter (where private.enqueue_provisioning(x.id))::integer from unnest(v_ids) as x(id));
end
$$;

-- reconcile-spend found keys missing on LiteLLM: with the opt-in setting on, queue them all and start
-- enough provision-key invocations (10 jobs each) to take them now. Returns how many were queued.
create function private.auto_recreate_missing_keys() returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_count integer := 0;
begin
  if coalesce((private.setting('recreate_missing_keys_automatically') #>> '{}')::boolean, false) then
    v_count := private.recreate_missing_keys(null, 1000);
    for i in 1..ceil(v_count / 10.0)::integer loop
      perform private.invoke_function('provision-key', jsonb_build_object('source', 'recreate', 'slot', i));
    end loop;
  end if;
  return v_count;
end
$$;

revoke execute on all functions in schema private from public, anon, authenticated;
grant execute on all functions in schema private to service_role;
