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
-- 20261126000200), then api_keys rows, then the key_rotations row.

-- Its settings (retired_key_settle_seconds) are rows of private.settings, inserted in 20261126000100.

-- api_keys.settled_at and api_keys.reconciled (20261126000300) say which keys reconcile reads.
create index api_keys_settling_chunk_idx on public.api_keys (reconcile_chunk) where status = 'retired' and settled_at is null;
create index api_keys_reconciled_chunk_idx on public.api_keys (reconcile_chunk) where reconciled;

-- reconcile-spend deleted a settled retired key on LiteLLM (or LiteLLM said it was gone): its spend is final.
create function private.retired_key_settled(p_key_id uuid) returns boolean
language sql volatile security definer set search_path = '' as $$
  with s as (
    update public.api_keys set settled_at = now() where id = p_key_id and status = 'retired' and settled_at is null returning 1
  )
  select exists (select 1 from s)
$$;

revoke execute on all functions in schema private from public, anon, authenticated;
grant execute on all functions in schema private to service_role;
