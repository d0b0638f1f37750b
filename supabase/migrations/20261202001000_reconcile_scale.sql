-- Reconcile at 1,000,000 keys (issue 18, bench:reconcile): what grew faster than the key count.
--
-- The last chunk number was max(api_keys.reconcile_chunk): a generated column no full index covers, so a
-- sequential scan of api_keys. kick_reconcile ran it once a minute, and claim_reconcile_chunks in every
-- invocation: keys / 10,000 invocations x a scan of every key = quadratic (at 1,000,000 keys, 101 scans of a
-- million rows a cycle). reconcile_chunk is (seq - 1) / 1000 (20261126000300) and seq has a unique index, so
-- the last chunk is (max(seq) - 1) / 1000: one step down that index. The chunk rows, created up to the last
-- chunk on every claim (a thousand conflicting inserts per invocation), are now created only when the last
-- chunk's row is missing (rows are created densely, from 0, and never deleted).
--
-- Per chunk (1,000 keys), two steps cost what grows with the square of the rows a statement changed, or with
-- the table rather than the chunk (found with auto_explain on a 1,000,000-key fleet):
-- - the low-balance trigger on api_keys found the keys whose spend moved by joining its two transition
--   tables on id; the planner has no statistics for them, guesses one row each and runs a nested loop:
--   1,000 x 1,000 comparisons per chunk. Now a set difference (EXCEPT: hashed), one pass over each.
-- - record_spend_batch added the LiteLLM reset offsets by looking up every reported key by token in the
--   whole api_keys table (1,000 random index probes a chunk), although a key with an offset is rare. Now
--   the chunk is checked first (its keys are adjacent: one index range) and the lookups run only when one
--   of them has an offset.

-- The last chunk number (null: no keys).
create function private.last_reconcile_chunk() returns integer
language sql stable security definer set search_path = '' as $$
  select ((max(k.seq) - 1) / 1000)::integer from public.api_keys k
$$;

create or replace function private.claim_reconcile_chunks(p_max integer default 10, p_lease_seconds integer default 120,
                                                          p_force boolean default false, p_user_id uuid default null)
returns table (chunk integer, keys jsonb)
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_interval numeric := private.setting_numeric('reconcile_interval_seconds');
  v_last integer := private.last_reconcile_chunk();
begin
  if v_last is not null and not exists (select 1 from public.reconcile_chunks c where c.chunk = v_last) then
    insert into public.reconcile_chunks (chunk) select generate_series(0, v_last) on conflict do nothing;
  end if;

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

create or replace function private.kick_reconcile() returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_chunks integer := coalesce(private.last_reconcile_chunk() + 1, 0);
  v_per integer := private.setting_numeric('reconcile_chunks_per_invocation')::integer;
  v_calls integer := ceil(v_chunks::numeric / v_per)::integer;
begin
  for i in 1..v_calls loop
    perform private.invoke_function('reconcile-spend', jsonb_build_object('source', 'cron', 'slot', i));
  end loop;
  return v_calls;
end
$$;

-- Same rule as before (20261126001000): users whose key spend, retired spend, hinted spend or status changed.
create or replace function private.low_balance_after_key_update() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  perform private.evaluate_low_balance(array(
    select distinct c.user_id from (
      select n.id, n.user_id, n.spend, n.retired_spend, n.hinted_spend, n.status from new_rows n
      except
      select o.id, o.user_id, o.spend, o.retired_spend, o.hinted_spend, o.status from old_rows o) c));
  return null;
end
$$;

-- Same as before (20261202000500); the offsets are looked up only when a key of the chunk has one.
create or replace function private.record_spend_batch(p_chunk integer, p_rows jsonb) returns jsonb
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

create or replace function private.audit_last_chunk() returns integer
language sql stable security definer set search_path = '' as $$
  select coalesce(private.last_reconcile_chunk(), -1)
$$;

revoke execute on all functions in schema private from public, anon, authenticated;
grant execute on all functions in schema private to service_role;
