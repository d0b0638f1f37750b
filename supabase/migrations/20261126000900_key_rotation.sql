-- Key rotation: a new LiteLLM key carries the remaining credit, the old key is deleted on LiteLLM.
-- LiteLLM's own regenerate route is an Enterprise feature, so rotation is "generate new + delete old",
-- driven by a small state machine (one private.key_rotations row per rotation) so that every step is
-- idempotent and a rerun, after a crash anywhere, finishes the job instead of starting over:
--
--   state      what has happened                                  next step (supabase/functions/_shared/rotation.ts)
--   opened     rotation recorded; new key value + alias chosen    block the old key on LiteLLM
--   blocked    old key blocked on LiteLLM (its spend stops)       wait rotation_settle_seconds, read its final
--                                                                  spend, retire it (SQL, one transaction:
--                                                                  old key retired with retired_spend, new key
--                                                                  row inserted as pending)
--   retired    old key retired; new key row pending               create the new key on LiteLLM with
--                                                                  max_budget = private.key_target_budget
--                                                                  (ledger total - retired keys' spend)
--   activated  new key active and confirmed on LiteLLM            done (a database step: the old key stays
--                                                                  blocked and reconciled until its spend
--                                                                  settles, then reconcile-spend deletes it;
--                                                                  20261202000320_rotation_in_flight.sql)
--   done       finished
-- Every step that takes more than one lock takes the user's first (private.lock_user, 20261126000200).
--
-- Why nothing is granted twice: the old key is blocked before its spend is read, so its spend is final
-- (after the settle time, which covers LiteLLM's batched spend writes: PROXY_BATCH_WRITE_AT + jitter);
-- the new key's budget is the absolute ledger target, which subtracts that frozen spend. The budget is
-- never moved by increments, so a repeated or reordered step cannot add credit.
--
-- Why public.api_keys_one_live_per_user needs no change: the new key's row is only inserted in the same
-- transaction that retires the old one, so there is never more than one non-retired key per user. Until
-- then the new key's value and alias live here, in private. Every existing "the user's live key" query
-- (status <> 'retired': payments, refunds, disputes, budget pushes) keeps meaning exactly one key.
-- The user has no usable key between "blocked" and "activated" (a few seconds plus the settle time).

-- Its settings (rotation_settle_seconds, rotation_max_inline_wait_seconds, rotation_lease_seconds,
-- rotation_user_min_interval_seconds, rotation_backoff_base_seconds, rotation_backoff_cap_seconds) are rows of
-- private.settings, inserted in 20261126000100.

create table private.key_rotations (
  id bigint generated always as identity primary key,
  user_id uuid not null references auth.users (id),
  old_key_id uuid not null references public.api_keys (id),
  -- Chosen when the rotation opens, so a rerun can never create a second new key (as at sign-up).
  new_key_value text not null unique check (new_key_value ~ '^sk-[A-Za-z0-9_-]{20,}$'),
  new_key_alias text not null unique,
  new_key_id uuid unique references public.api_keys (id), -- set when the old key is retired
  state text not null default 'opened' check (state in ('opened', 'blocked', 'retired', 'activated', 'done')),
  requested_by text not null check (length(trim(requested_by)) > 0),
  old_key_missing boolean not null default false, -- LiteLLM no longer knew the old key (deleted behind our back)
  old_final_spend numeric,
  attempts integer not null default 0,
  last_error text,
  locked_until timestamptz,
  next_attempt_at timestamptz not null default now(),
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  blocked_at timestamptz,
  retired_at timestamptz,
  activated_at timestamptz,
  finished_at timestamptz,
  check ((state in ('opened', 'blocked')) = (new_key_id is null))
);
-- One unfinished rotation per user: a second request continues it instead of opening another.
create unique index key_rotations_one_open_per_user on private.key_rotations (user_id) where state <> 'done';
create index key_rotations_due_idx on private.key_rotations (next_attempt_at) where state <> 'done';
create index key_rotations_old_key_idx on private.key_rotations (old_key_id);
revoke all on table private.key_rotations from public, anon, authenticated;
grant select on table private.key_rotations to service_role;

-- Everything one run needs about a rotation, in one round trip. settle_remaining_seconds: how long the
-- run must still wait (after the old key was blocked) before reading the final spend.
create function private.key_rotation_context(p_rotation_id bigint)
returns table (rotation_id bigint, user_id uuid, state text, old_key_id uuid, old_key_value text, old_key_alias text,
               old_key_missing boolean, new_key_id uuid, new_key_value text, new_key_alias text, new_key_blocked boolean,
               target_max_budget numeric, settle_remaining_seconds numeric, rpm_limit integer, tpm_limit integer,
               attempts integer)
language sql stable security definer set search_path = '' as $$
  select r.id, r.user_id, r.state, r.old_key_id, o.key_value, o.key_alias, r.old_key_missing,
         r.new_key_id, r.new_key_value, r.new_key_alias, n.blocked,
         case when r.new_key_id is not null then private.key_target_budget(r.new_key_id) end,
         case when r.blocked_at is null then private.setting_numeric('rotation_settle_seconds')
              else greatest(0, private.setting_numeric('rotation_settle_seconds')
                               - extract(epoch from (now() - r.blocked_at))::numeric) end,
         private.setting_numeric('key_rpm_limit')::integer, private.setting_numeric('key_tpm_limit')::integer,
         r.attempts
    from private.key_rotations r
    join public.api_keys o on o.id = r.old_key_id
    left join public.api_keys n on n.id = r.new_key_id
   where r.id = p_rotation_id
$$;

-- Step 1 (the user lock first). Opens a rotation of the user's key, or returns the unfinished one (a rerun
-- continues it), and takes the run's lease. claimed = false: another run owns it right now (its lease has
-- not expired).
-- p_rate_limited: a user may start one at most every rotation_user_min_interval_seconds (the dashboard);
-- operators are not limited.
create function private.start_key_rotation(p_user_id uuid, p_requested_by text, p_rate_limited boolean default false)
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

-- Step 2, before calling LiteLLM: from now on we want the old key blocked (reconcile pushes the block
-- too if this run dies before LiteLLM confirmed it, and never flags it as blocked behind our back).
create function private.rotation_block_intent(p_rotation_id bigint) returns void
language sql volatile security definer set search_path = '' as $$
  update public.api_keys k set blocked = true, block_synced = k.block_synced and k.blocked
    from private.key_rotations r
   where r.id = p_rotation_id and r.state in ('opened', 'blocked') and k.id = r.old_key_id
$$;

-- Step 2, after LiteLLM blocked the old key (or said it no longer knows it: p_missing).
-- Returns the seconds still to wait before the final spend may be read.
create function private.rotation_old_blocked(p_rotation_id bigint, p_missing boolean default false) returns numeric
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

-- A step that needs its rotation in p_state refuses any other (hint wrong_state), p_reason in the message.
-- A rotation that does not exist (state null) passes: the step finds nothing to change.
create function private.rotation_needs_state(p_rotation private.key_rotations, p_state text, p_reason text) returns void
language plpgsql stable security definer set search_path = '' as $$
begin
  if p_rotation.state <> p_state then
    raise exception 'rotation %: %', p_rotation.id, p_reason using errcode = 'P0001', hint = 'wrong_state';
  end if;
end
$$;

-- Step 3, after the settle time. In one transaction (the user lock, the old key, then the rotation row):
-- the old key is retired with the spend read now (never less than what we already saw: LiteLLM spend
-- only grows; rounded up to 1e-8 USD), and the new key's row is inserted (pending) with the value and
-- alias chosen at step 1. Later spend is charged by reconcile until it settles (20261202000320).
-- p_final_spend null = LiteLLM no longer knows the old key: the last spend reconcile observed stands, and
-- a key it no longer knows cannot spend (settled at once). Idempotent: a rotation already past this step
-- is returned unchanged.
create function private.rotation_retire_old(p_rotation_id bigint, p_final_spend numeric)
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
  perform private.rotation_needs_state(v_rot, 'blocked', 'the old key must be blocked before it is retired');
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

-- Step 4 done: LiteLLM confirmed the new key with this max_budget. The new key becomes the user's key.
create function private.rotation_new_key_active(p_rotation_id bigint, p_confirmed_max_budget numeric) returns void
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_rot private.key_rotations;
begin
  perform private.lock_rotation_user(p_rotation_id);
  select * into v_rot from private.key_rotations r where r.id = p_rotation_id for update;
  if v_rot.state in ('activated', 'done') then
    return;
  end if;
  perform private.rotation_needs_state(v_rot, 'retired', 'the new key cannot be active before the old one is retired');
  perform private.mark_key_active(v_rot.new_key_id, p_confirmed_max_budget);
  update private.key_rotations set state = 'activated', activated_at = now(), updated_at = now() where id = p_rotation_id;
end
$$;

-- Step 5: the rotation is done once the new key is active (the old key, blocked, is deleted by reconcile
-- when its spend has settled), and its lease released.
create function private.rotation_finish(p_rotation_id bigint) returns void
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

-- A run stopped (LiteLLM failing, or waiting for the settle time): release the lease and say when the
-- sweep (ops-sweep) should try again. p_retry_at null = back off exponentially by attempts.
create function private.rotation_failed(p_rotation_id bigint, p_error text, p_retry_at timestamptz default null) returns text
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_rot private.key_rotations;
begin
  update private.key_rotations r
     set attempts = r.attempts + case when p_retry_at is null then 1 else 0 end,
         last_error = case when p_retry_at is null then left(p_error, 500) else r.last_error end,
         locked_until = null, updated_at = now()
   where r.id = p_rotation_id and r.state <> 'done'
  returning * into v_rot;
  if v_rot.id is null then
    return 'done';
  end if;
  update private.key_rotations
     set next_attempt_at = coalesce(p_retry_at, now() + private.backoff('rotation', v_rot.attempts))
   where id = p_rotation_id;
  return v_rot.state;
end
$$;

-- Unfinished rotations whose run died or stopped, due again: claimed (leased) for ops-sweep.
create function private.claim_stalled_rotations(p_limit integer default 5)
returns table (rotation_id bigint, user_id uuid, state text)
language sql volatile security definer set search_path = '' as $$
  with due as (
    select r.id from private.key_rotations r
     where r.state <> 'done' and r.next_attempt_at <= now() and (r.locked_until is null or r.locked_until < now())
     order by r.next_attempt_at
     limit p_limit
     for update skip locked
  )
  update private.key_rotations r
     set locked_until = now() + make_interval(secs => private.setting_numeric('rotation_lease_seconds')::double precision),
         updated_at = now()
    from due where r.id = due.id
  returning r.id, r.user_id, r.state
$$;

-- Unfinished rotations, for operators (service_role only, like the other admin views).
create view public.admin_key_rotations as
select r.id as rotation_id, r.user_id, r.state, r.old_key_id, r.new_key_id, r.requested_by, r.attempts, r.last_error,
       r.created_at, r.next_attempt_at, r.locked_until
  from private.key_rotations r where r.state <> 'done';
revoke all on table public.admin_key_rotations from public, anon, authenticated, service_role;
grant select on table public.admin_key_rotations to service_role;

-- public.api_keys.rotating mirrors "this key is part of an unfinished rotation" (old and new key), so a
-- user's view can show it without reading private.key_rotations.
create function private.key_rotations_mark_keys() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  update public.api_keys k set rotating = (new.state <> 'done')
   where k.id in (new.old_key_id, new.new_key_id) and k.rotating is distinct from (new.state <> 'done');
  return null;
end
$$;
create trigger key_rotations_mark_keys after insert or update of state, new_key_id on private.key_rotations
  for each row execute function private.key_rotations_mark_keys();

-- Every function above is for the service role only (see 20261126000800).
revoke execute on all functions in schema private from public, anon, authenticated;
grant execute on all functions in schema private to service_role;
