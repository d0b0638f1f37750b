-- Spend in flight during a key rotation is charged.
--
-- Blocking a key on LiteLLM stops new requests, not the ones already running: a streamed chat admitted
-- before the block is costed when it ends (possibly minutes later), and LiteLLM writes that spend to its
-- database in batches (PROXY_BATCH_WRITE_AT). So a retired key stays under reconciliation, blocked but
-- not deleted, until its LiteLLM spend has not moved for retired_key_settle_seconds; spend that arrives
-- meanwhile raises its retired_spend, which lowers the live key's target by the same amount (the user is
-- charged; key_target_budget subtracts retired spend). Only then is the old key deleted on LiteLLM
-- (reconcile-spend) and marked settled. Spend hints from the logging callback count for it too.
--
-- The rotation itself no longer deletes the old key: activated -> done is a database step, and
-- `settled_at` says when a retired key's spend became final.
--
-- Lock order: every rotation step that takes more than one lock starts with private.lock_user (see
-- 20261202000300), then api_keys rows, then the key_rotations row.

insert into private.settings (key, value, description) values
  ('retired_key_settle_seconds', '900',
   'a retired key is reconciled (late spend charged) until its LiteLLM spend has not moved for this long, then deleted: '
   || 'a 600 s request (LiteLLM request_timeout) + PROXY_BATCH_WRITE_AT (60) + a reconcile cycle (60) + margin')
on conflict (key) do nothing;

alter table public.api_keys add column settled_at timestamptz;
comment on column public.api_keys.settled_at is
  'retired keys: when the spend became final (stable for retired_key_settle_seconds, key deleted on LiteLLM); null while late spend may arrive';
-- Keys retired by earlier rotations were deleted on LiteLLM when their rotation finished.
update public.api_keys k set settled_at = coalesce(k.retired_at, now())
 where k.status = 'retired'
   and not exists (select 1 from private.key_rotations r where r.old_key_id = k.id and r.state in ('retired', 'activated'));
create index api_keys_settling_chunk_idx on public.api_keys (reconcile_chunk) where status = 'retired' and settled_at is null;

-- The keys reconcile reads from LiteLLM: active keys, and retired keys whose spend is not final yet. A
-- column (not a function) so the chunk index below serves the claim.
alter table public.api_keys add column reconciled boolean
  generated always as (status = 'active' or (status = 'retired' and settled_at is null)) stored;
create index api_keys_reconciled_chunk_idx on public.api_keys (reconcile_chunk) where reconciled;

create or replace function private.claim_reconcile_chunks(p_max integer default 10, p_lease_seconds integer default 120,
                                                          p_force boolean default false, p_user_id uuid default null)
returns table (chunk integer, keys jsonb)
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_interval numeric := private.setting_numeric('reconcile_interval_seconds');
begin
  insert into public.reconcile_chunks (chunk)
  select generate_series(0, max(k.reconcile_chunk)) from public.api_keys k having max(k.reconcile_chunk) is not null
  on conflict do nothing;

  return query
  with due as (
    select c.chunk from public.reconcile_chunks c
     where (c.lease_until is null or c.lease_until < now())
       and (p_user_id is null or c.chunk in (select k.reconcile_chunk from public.api_keys k
                                              where k.user_id = p_user_id and k.reconciled))
       and (p_force or p_user_id is not null or c.last_finished_at is null
            or c.last_finished_at <= now() - make_interval(secs => (v_interval - 10)::double precision))
     order by c.last_finished_at nulls first, c.chunk
     limit p_max
     for update skip locked
  ), claimed as (
    update public.reconcile_chunks c
       set lease_until = now() + make_interval(secs => p_lease_seconds), last_started_at = now(), runs = c.runs + 1
      from due where c.chunk = due.chunk
    returning c.chunk
  )
  select cl.chunk,
         coalesce((select jsonb_agg(jsonb_build_object('id', k.id, 'token', k.key_token) order by k.seq)
                     from public.api_keys k
                    where k.reconcile_chunk = cl.chunk and k.reconciled), '[]'::jsonb)
    from claimed cl;
end
$$;

-- One SQL round trip per chunk, as in 20261126000500, plus the chunk's settling retired keys:
--   late:   live keys of users whose retired key spent more: push their lower target (unless in the drift list);
--   settle: retired keys whose spend has not moved for retired_key_settle_seconds: delete on LiteLLM, then
--           private.retired_key_settled. A retired key LiteLLM no longer knows cannot spend: settled now.
-- The target of every active key is private.key_target_budget (one definition), computed after the retired
-- keys' late spend is recorded.
create or replace function private.record_spend_batch(p_chunk integer, p_rows jsonb)
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
           private.key_target_budget(k.id) as target
      from public.api_keys k
      left join jsonb_to_recordset(p_rows) as r(token text, spend numeric, max_budget numeric, blocked boolean)
        on r.token = k.key_token
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

-- reconcile-spend deleted a settled retired key on LiteLLM (or LiteLLM said it was gone): its spend is final.
create function private.retired_key_settled(p_key_id uuid) returns boolean
language sql volatile security definer set search_path = '' as $$
  with s as (
    update public.api_keys set settled_at = now() where id = p_key_id and status = 'retired' and settled_at is null returning 1
  )
  select exists (select 1 from s)
$$;

-- Spend hints (20261126001200) for the keys reconcile reads, retired keys still settling included. A row
-- is {token, spend} or {token, auth_spend, cost}: the key's spend when LiteLLM admitted the request plus
-- the request's cost, added here (exact) rather than in TypeScript (float).
create or replace function private.record_spend_hints(p_rows jsonb) returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_matched integer;
  v_updated integer;
begin
  with hints as (
    select r.token, max(coalesce(r.spend, r.auth_spend + r.cost)) as spend
      from jsonb_to_recordset(p_rows) as r(token text, spend numeric, auth_spend numeric, cost numeric)
     where r.token is not null and coalesce(r.spend, r.auth_spend + r.cost) >= 0
     group by r.token
  ), matched as (
    select k.id, h.spend, greatest(coalesce(k.retired_spend, k.spend), coalesce(k.hinted_spend, 0)) as known
      from hints h join public.api_keys k on k.key_token = h.token and k.reconciled
  ), updated as (
    update public.api_keys k set hinted_spend = m.spend, hinted_at = now()
      from matched m where m.id = k.id and m.spend > m.known
    returning 1
  )
  select (select count(*) from matched), (select count(*) from updated) into v_matched, v_updated;
  return jsonb_build_object('matched', v_matched, 'updated', v_updated);
end
$$;

-- What a key has spent as the user should see it now (20261126000600): for a retired key its frozen spend,
-- or a fresher hint while late spend may still arrive.
create or replace function public.key_spend(k public.api_keys) returns numeric
language sql stable set search_path = '' as $$
  select greatest(coalesce(k.retired_spend, k.spend), case when k.hinted_at > now() - interval '10 minutes' then k.hinted_spend end)
$$;

-- Step 1 (20261126000900), with the user lock first.
create or replace function private.start_key_rotation(p_user_id uuid, p_requested_by text, p_rate_limited boolean default false)
returns table (rotation_id bigint, state text, claimed boolean, is_new boolean)
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_key public.api_keys;
  v_rot private.key_rotations;
  v_value text;
  v_n integer;
  v_lease integer := private.setting_numeric('rotation_lease_seconds')::integer;
  v_new boolean := false;
  v_min_interval numeric := private.setting_numeric('rotation_user_min_interval_seconds');
begin
  if not exists (select 1 from auth.users u where u.id = p_user_id) then
    raise exception 'unknown user %', p_user_id using errcode = 'P0001', hint = 'unknown_user';
  end if;
  perform private.lock_user(p_user_id);
  select * into v_key from public.api_keys k where k.user_id = p_user_id and k.status <> 'retired' for update;
  select * into v_rot from private.key_rotations r where r.user_id = p_user_id and r.state <> 'done' for update;
  if v_rot.id is null then
    if v_key.id is null or v_key.status <> 'active' then
      raise exception 'the user has no active key to rotate (status %)', coalesce(v_key.status, 'none')
        using errcode = 'P0001', hint = 'no_active_key';
    end if;
    if p_rate_limited and exists (
      select 1 from private.key_rotations r
       where r.user_id = p_user_id and r.created_at > now() - make_interval(secs => v_min_interval::double precision)) then
      raise exception 'the key was rotated less than % seconds ago; try again later', v_min_interval
        using errcode = 'P0001', hint = 'too_soon';
    end if;
    v_value := private.new_key_value();
    select count(*) + 1 into v_n from public.api_keys k where k.user_id = p_user_id;
    insert into private.key_rotations (user_id, old_key_id, new_key_value, new_key_alias, requested_by)
    values (p_user_id, v_key.id, v_value, 'lc-' || p_user_id || '-' || v_n, left(p_requested_by, 200))
    returning * into v_rot;
    v_new := true;
  end if;
  update private.key_rotations r
     set locked_until = now() + make_interval(secs => v_lease), updated_at = now()
   where r.id = v_rot.id and (r.locked_until is null or r.locked_until < now());
  return query select v_rot.id, v_rot.state, found, v_new;
end
$$;

-- The user of a rotation, locked (the first lock of every rotation step below).
create function private.lock_rotation_user(p_rotation_id bigint) returns uuid
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_user uuid := (select r.user_id from private.key_rotations r where r.id = p_rotation_id);
begin
  if v_user is null then
    raise exception 'rotation % not found', p_rotation_id using errcode = 'P0002';
  end if;
  perform private.lock_user(v_user);
  return v_user;
end
$$;

-- Step 2 (20261126000900), with the user lock first.
create or replace function private.rotation_old_blocked(p_rotation_id bigint, p_missing boolean default false) returns numeric
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_rot private.key_rotations;
begin
  perform private.lock_rotation_user(p_rotation_id);
  update private.key_rotations r
     set state = case when r.state = 'opened' then 'blocked' else r.state end,
         blocked_at = coalesce(r.blocked_at, now()),
         old_key_missing = r.old_key_missing or p_missing,
         updated_at = now()
   where r.id = p_rotation_id and r.state in ('opened', 'blocked')
  returning * into v_rot;
  if v_rot.id is null then
    raise exception 'rotation % is not waiting for its old key to be blocked', p_rotation_id using errcode = 'P0001', hint = 'wrong_state';
  end if;
  if not p_missing then
    perform private.confirm_blocked(v_rot.old_key_id, true);
  end if;
  return (select c.settle_remaining_seconds from private.key_rotation_context(p_rotation_id) c);
end
$$;

-- Step 3 (20261126000900): the user lock, the old key, then the rotation row. The old key is retired with
-- the spend read now; later spend is charged by reconcile until it settles (an old key LiteLLM no longer
-- knows cannot spend: settled at once).
create or replace function private.rotation_retire_old(p_rotation_id bigint, p_final_spend numeric)
returns table (new_key_id uuid, target_max_budget numeric)
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_rot private.key_rotations;
  v_old public.api_keys;
  v_final numeric;
  v_new_id uuid;
  v_blocked boolean;
  v_remaining numeric;
begin
  perform private.lock_rotation_user(p_rotation_id);
  select * into v_old from public.api_keys k
   where k.id = (select r.old_key_id from private.key_rotations r where r.id = p_rotation_id) for update;
  select * into v_rot from private.key_rotations r where r.id = p_rotation_id for update;
  if v_rot.state in ('retired', 'activated', 'done') then
    return query select v_rot.new_key_id, private.key_target_budget(v_rot.new_key_id);
    return;
  end if;
  if v_rot.state <> 'blocked' then
    raise exception 'rotation %: the old key must be blocked before it is retired', p_rotation_id
      using errcode = 'P0001', hint = 'wrong_state';
  end if;
  select c.settle_remaining_seconds into v_remaining from private.key_rotation_context(p_rotation_id) c;
  if p_final_spend is not null and v_remaining > 0 then
    raise exception 'rotation %: spend may still be arriving for % s', p_rotation_id, ceil(v_remaining)
      using errcode = 'P0001', hint = 'not_settled';
  end if;
  if p_final_spend is not null and p_final_spend < 0 then
    raise exception 'rotation %: negative spend %', p_rotation_id, p_final_spend using errcode = 'P0001', hint = 'invalid_spend';
  end if;

  -- Rounded up to 1e-8 USD: the new key's target (ledger - this) then has at most 8 decimals, so it
  -- survives the round trip through the float LiteLLM stores max_budget in, and reconcile sees no drift.
  v_final := trim_scale(ceil(greatest(coalesce(p_final_spend, v_old.spend), v_old.spend) * 100000000) / 100000000);
  if v_final is distinct from v_old.spend then
    insert into public.spend_snapshots (key_id, user_id, spend, max_budget)
    values (v_old.id, v_old.user_id, v_final, v_old.observed_max_budget);
  end if;
  update public.api_keys
     set status = 'retired', retired_spend = v_final, spend = v_final, spend_observed_at = now(), retired_at = now(),
         settled_at = case when p_final_spend is null and v_rot.old_key_missing then now() end,
         sync_status = 'synced', last_sync_error = null, flag = null, flag_detail = null
   where id = v_old.id;

  v_blocked := exists (select 1 from private.disputes d join public.payments pm on pm.id = d.payment_id
                        where pm.user_id = v_rot.user_id and d.is_open);
  insert into public.api_keys (user_id, key_alias, key_value, key_token, blocked, block_synced)
  values (v_rot.user_id, v_rot.new_key_alias, v_rot.new_key_value, private.key_token(v_rot.new_key_value), v_blocked, not v_blocked)
  returning id into v_new_id;

  update private.key_rotations
     set state = 'retired', new_key_id = v_new_id, old_final_spend = v_final, retired_at = now(), updated_at = now()
   where id = p_rotation_id;
  return query select v_new_id, private.key_target_budget(v_new_id);
end
$$;

-- Step 4 (20261126000900), with the user lock first.
create or replace function private.rotation_new_key_active(p_rotation_id bigint, p_confirmed_max_budget numeric) returns void
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_rot private.key_rotations;
begin
  perform private.lock_rotation_user(p_rotation_id);
  select * into v_rot from private.key_rotations r where r.id = p_rotation_id for update;
  if v_rot.state in ('activated', 'done') then
    return;
  end if;
  if v_rot.state <> 'retired' then
    raise exception 'rotation %: the new key cannot be active before the old one is retired', p_rotation_id
      using errcode = 'P0001', hint = 'wrong_state';
  end if;
  perform private.mark_key_active(v_rot.new_key_id, p_confirmed_max_budget);
  update private.key_rotations set state = 'activated', activated_at = now(), updated_at = now() where id = p_rotation_id;
end
$$;

-- Step 5: the rotation is done once the new key is active (the old key, blocked, is deleted by reconcile
-- when its spend has settled), with the user lock first.
create or replace function private.rotation_finish(p_rotation_id bigint) returns void
language plpgsql volatile security definer set search_path = '' as $$
begin
  perform private.lock_rotation_user(p_rotation_id);
  update private.key_rotations
     set state = 'done', finished_at = coalesce(finished_at, now()), locked_until = null, last_error = null, updated_at = now()
   where id = p_rotation_id and state in ('activated', 'done');
  if not found then
    raise exception 'rotation %: it can only finish after the new key is active', p_rotation_id
      using errcode = 'P0001', hint = 'wrong_state';
  end if;
end
$$;

revoke execute on all functions in schema private from public, anon, authenticated;
grant execute on all functions in schema private to service_role;
