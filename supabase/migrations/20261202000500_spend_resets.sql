-- LiteLLM state loss (issue 19): recorded spend never goes down.
--
-- LiteLLM keeps spend in its own Postgres; an operator restoring it from a backup, resetting spend by hand
-- or pointing the proxy at an empty database makes LiteLLM report LESS spend for a key than we recorded.
-- Taken at face value that would hand the user back credit they already used. So a decrease is a reset:
-- the key's spend_offset grows by (recorded spend - what LiteLLM now reports), and from then on the key's
-- spend (public.api_keys.spend, what every balance reads) is spend_offset + LiteLLM's spend.
--
-- LiteLLM still enforces the budget on its own counter, which restarted lower, so the max_budget pushed to
-- it is the ledger target minus the offset (private.key_target_budget, 20261126000300, the one definition):
-- spend 1.50 recorded, LiteLLM restored to 0.10 -> offset 1.40, effective 1.50, remaining 0.50 of a 2.00
-- grant, max_budget 0.60 (LiteLLM stops the key when its own 0.10 reaches 0.60, i.e. at 2.00 in total).
--
-- Every reset is recorded in private.spend_resets for the operator (public.admin_spend_resets,
-- `npm run admin -- resets`, health "degraded" while any is not acknowledged).

-- api_keys.spend_offset is defined with the table (20261126000300).

create table private.spend_resets (
  id bigint generated always as identity primary key,
  key_id uuid not null references public.api_keys (id),
  user_id uuid not null,
  recorded_spend numeric not null,  -- what we had recorded (offset included)
  litellm_spend numeric not null,   -- the lower value LiteLLM reported
  offset_before numeric not null,
  offset_after numeric not null,
  detected_at timestamptz not null default now(),
  acknowledged_at timestamptz,
  acknowledged_by text
);
create index spend_resets_open_idx on private.spend_resets (detected_at) where acknowledged_at is null;
create index spend_resets_key_idx on private.spend_resets (key_id, detected_at);

-- Detects resets in what LiteLLM reported for a chunk (rows as private.record_spend_batch takes them): for
-- every reconciled key (live, or retired and still settling) whose offset + LiteLLM spend is below the spend
-- recorded, the offset grows so that they are equal again, and the event is recorded. Returns the count.
create function private.detect_spend_resets(p_chunk integer, p_rows jsonb) returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_count integer;
begin
  with r as (
    select x.token, min(x.spend) as spend
      from jsonb_to_recordset(p_rows) as x(token text, spend numeric) where x.spend is not null group by x.token
  ), candidates as materialized (
    -- Before rounding, a superset of what is found below: the chunk's keys are read once (one index range),
    -- and only these few are locked and read again, not every reported token probed in the whole table.
    select k.id, r.spend
      from (select c.id, c.key_token, c.spend_offset, c.retired_spend, c.spend from public.api_keys c
             where c.reconcile_chunk = p_chunk and c.reconciled offset 0) k
      join r on r.token = k.key_token
     where r.spend + k.spend_offset < coalesce(k.retired_spend, k.spend)
  ), found as (
    select k.id, k.user_id, coalesce(k.retired_spend, k.spend) as recorded, r.spend as litellm_spend, k.spend_offset
      from public.api_keys k join candidates r on r.id = k.id
     where k.reconcile_chunk = p_chunk and k.reconciled
       -- a retired key's spend was rounded up to 1e-8 (rotation_retire_old, 20261126000900): compare it the same way
       and case when k.status = 'retired' then trim_scale(ceil((r.spend + k.spend_offset) * 100000000) / 100000000)
                else r.spend + k.spend_offset end < coalesce(k.retired_spend, k.spend)
       for update of k
  ), bumped as (
    update public.api_keys k set spend_offset = f.recorded - f.litellm_spend
      from found f where k.id = f.id
    returning k.id
  ), events as (
    insert into private.spend_resets (key_id, user_id, recorded_spend, litellm_spend, offset_before, offset_after)
    select f.id, f.user_id, f.recorded, f.litellm_spend, f.spend_offset, f.recorded - f.litellm_spend from found f
    returning 1
  )
  select count(*) into v_count from events;
  return v_count;
end
$$;

-- What LiteLLM reports for a key, as the spend we record: offset + LiteLLM's spend. Rows are reconcile's
-- ({token, spend, ...}) or the callback's hints ({token, spend} or {token, auth_spend, cost}); spend may come
-- as a JSON number or as text (the LiteLLM client keeps money as strings). Keys without an offset pass as they are.
create function private.offset_spend_rows(p_rows jsonb) returns jsonb
language sql stable security definer set search_path = '' as $$
  select coalesce(jsonb_agg(case when k.spend_offset > 0 then
           r.value || jsonb_strip_nulls(jsonb_build_object(
             'spend', (r.value ->> 'spend')::numeric + k.spend_offset,
             'auth_spend', (r.value ->> 'auth_spend')::numeric + k.spend_offset))
         else r.value end), '[]'::jsonb)
    from jsonb_array_elements(p_rows) r
    left join public.api_keys k on k.key_token = r.value ->> 'token' and k.reconciled
$$;

-- The entry points reconcile and the callback use, record_spend_batch and record_spend_hints, are
-- monotonic themselves, so no caller can record spend past the reset rule: they call the bodies that take
-- spend as reported (*_as_reported, 20261126000500 and 20261126001200) with the spend as we record it
-- (offset added), so snapshots, late spend of retired keys, drift (against the offset-lowered target) and
-- alerts all follow. A key with an offset is rare: the chunk's keys (one index range) are checked first,
-- and the offsets are looked up by token only when one of them has one (issue 18).
create function private.record_spend_batch(p_chunk integer, p_rows jsonb) returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_resets integer := private.detect_spend_resets(p_chunk, p_rows);
  v_rows jsonb := p_rows;
begin
  if exists (select 1 from public.api_keys k where k.reconcile_chunk = p_chunk and k.reconciled and k.spend_offset > 0) then
    v_rows := private.offset_spend_rows(p_rows);
  end if;
  return private.record_spend_batch_as_reported(p_chunk, v_rows) || jsonb_build_object('resets', v_resets);
end
$$;

-- Spend hints are LiteLLM's spend too: offset added.
create function private.record_spend_hints(p_rows jsonb) returns jsonb
language sql volatile security definer set search_path = '' as $$
  select private.record_spend_hints_as_reported(private.offset_spend_rows(p_rows))
$$;

-- The operator's view of resets (service_role only, like the other admin views).
create view public.admin_spend_resets as
select s.id, s.key_id, s.user_id, s.recorded_spend, s.litellm_spend, s.offset_before, s.offset_after,
       s.offset_after - s.offset_before as spend_lost_by_litellm, s.detected_at, s.acknowledged_at, s.acknowledged_by
  from private.spend_resets s;
revoke all on table public.admin_spend_resets from public, anon, authenticated, service_role;
grant select on table public.admin_spend_resets to service_role;

-- An operator has looked at the resets (health stops reporting them). Returns how many were acknowledged.
create function private.acknowledge_spend_resets(p_by text) returns integer
language sql volatile security definer set search_path = '' as $$
  with a as (
    update private.spend_resets set acknowledged_at = now(), acknowledged_by = left(coalesce(nullif(trim(p_by), ''), 'unknown'), 200)
     where acknowledged_at is null returning 1
  )
  select count(*)::integer from a
$$;

-- What the health function reports from the database (one round trip; no secrets), including what needs
-- a person: unacknowledged spend resets and flagged keys by flag.
create function private.health_status()
returns table (last_successful_reconcile_at timestamptz, last_successful_reconcile_age_seconds numeric,
               reconcile_stale_seconds numeric, active_keys boolean, pending_alerts integer, unfinished_rotations integer,
               spend_resets integer, flagged_keys jsonb)
language sql stable security definer set search_path = '' as $$
  select r.finished_at,
         round(extract(epoch from (now() - r.finished_at))::numeric, 1),
         private.setting_numeric('reconcile_stale_seconds'),
         exists (select 1 from public.api_keys k where k.status = 'active'),
         (select count(*)::integer from private.alert_events e where e.delivery_status = 'pending'),
         (select count(*)::integer from private.key_rotations kr where kr.state <> 'done'),
         (select count(*)::integer from private.spend_resets s where s.acknowledged_at is null),
         coalesce((select jsonb_object_agg(f.flag, f.n) from (select k.flag, count(*) as n from public.api_keys k
                                                              where k.status = 'active' and k.flag is not null group by k.flag) f),
                  '{}'::jsonb)
    from (select max(rr.finished_at) as finished_at from private.reconcile_runs rr where rr.outcome = 'ok') r
$$;

revoke execute on all functions in schema private from public, anon, authenticated;
grant execute on all functions in schema private to service_role;
