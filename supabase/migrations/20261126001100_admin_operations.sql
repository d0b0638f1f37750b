-- Operator tools: credit adjustments (ledger rows with a reason, never edits), finding a user by id or
-- email, reconciling one user's keys now, the health check's database facts, and the ops-sweep cron job
-- (unfinished key rotations and undelivered alerts). Used by `npm run admin` (scripts/admin.ts) and the
-- functions push-budget, reconcile-spend (user_id), health and ops-sweep.

-- Its settings (admin_adjust_max_usd) are rows of private.settings, inserted in 20261126000100.

-- A user given as a uuid or an email address (case-insensitive). Raises unknown_user otherwise.
create function private.find_user(p_ref text) returns uuid
language plpgsql stable security definer set search_path = '' as $$
declare
  v_id uuid;
  v_count integer;
begin
  if p_ref ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' then
    select u.id into v_id from auth.users u where u.id = p_ref::uuid;
  else
    select min(u.id::text)::uuid, count(*) into v_id, v_count from auth.users u where lower(u.email) = lower(trim(p_ref));
    if v_count > 1 then
      raise exception 'more than one user has the email %, give the user id', p_ref using errcode = 'P0001', hint = 'ambiguous_user';
    end if;
  end if;
  if v_id is null then
    raise exception 'no user %', p_ref using errcode = 'P0001', hint = 'unknown_user';
  end if;
  return v_id;
end
$$;

-- An operator grants (p_amount > 0) or deducts (p_amount < 0) credit: one 'adjustment' ledger row with the
-- reason and who did it, in the same transaction as the budget version bump (the caller then pushes the
-- new absolute target to LiteLLM; reconcile repairs it if that push fails). Exactly once per
-- p_idempotency_key: repeating a command with the same key adds nothing (is_new = false).
create function private.adjust_credit(p_user_id uuid, p_amount numeric, p_reason text, p_created_by text,
                                                 p_idempotency_key text default null)
returns table (ledger_id bigint, is_new boolean, key_id uuid, granted numeric, remaining numeric, target_max_budget numeric)
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_max numeric := private.setting_numeric('admin_adjust_max_usd');
  v_key_id uuid;
  v_ledger_id bigint;
  v_existing public.credit_ledger;
  v_idem text := coalesce(nullif(trim(p_idempotency_key), ''), 'adjust:' || gen_random_uuid());
begin
  if not exists (select 1 from auth.users u where u.id = p_user_id) then
    raise exception 'no user %', p_user_id using errcode = 'P0001', hint = 'unknown_user';
  end if;
  if p_amount is null or p_amount = 0 or p_amount <> round(p_amount, 2) then
    raise exception 'the amount must be a non-zero number of USD with at most 2 decimals (got %)', coalesce(p_amount::text, 'none')
      using errcode = 'P0001', hint = 'invalid_amount';
  end if;
  if abs(p_amount) > v_max then
    raise exception 'the amount % is larger than admin_adjust_max_usd (%)', abs(p_amount), v_max
      using errcode = 'P0001', hint = 'invalid_amount';
  end if;
  if coalesce(length(trim(p_reason)), 0) < 3 then
    raise exception 'a reason is required (at least 3 characters)' using errcode = 'P0001', hint = 'reason_required';
  end if;
  if coalesce(length(trim(p_created_by)), 0) = 0 then
    raise exception 'who makes the change is required' using errcode = 'P0001', hint = 'created_by_required';
  end if;

  perform private.lock_user(p_user_id);
  select k.id into v_key_id from public.api_keys k where k.user_id = p_user_id and k.status <> 'retired' for update;
  if p_amount < 0 and (select b.granted from public.remaining_credit(p_user_id) b) + p_amount < 0
     and not exists (select 1 from public.credit_ledger l where l.idempotency_key = v_idem) then
    raise exception 'deducting % would take the user''s ledger total below 0 (it is %)', -p_amount,
      (select b.granted from public.remaining_credit(p_user_id) b)
      using errcode = 'P0001', hint = 'invalid_amount';
  end if;
  insert into public.credit_ledger (user_id, kind, amount, idempotency_key, reason, created_by)
  values (p_user_id, 'adjustment', p_amount, v_idem, trim(p_reason), left(trim(p_created_by), 200))
  on conflict (idempotency_key) do nothing
  returning id into v_ledger_id;
  if v_ledger_id is null then
    select * into v_existing from public.credit_ledger l where l.idempotency_key = v_idem;
    if v_existing.user_id <> p_user_id or v_existing.amount <> p_amount or v_existing.kind <> 'adjustment' then
      raise exception 'idempotency key % was already used for a different change', v_idem
        using errcode = 'P0001', hint = 'idempotency_conflict';
    end if;
    v_ledger_id := v_existing.id;
  else
    perform private.mark_budget_changed(p_user_id);
  end if;
  return query
  select v_ledger_id, v_existing.id is null, v_key_id, b.granted, b.remaining,
         case when v_key_id is not null then private.key_target_budget(v_key_id) end
    from public.remaining_credit(p_user_id) b;
end
$$;

-- The user's live key and what a budget push needs (push-budget function).
create function private.live_key_of(p_user_id uuid)
returns table (key_id uuid, status text, blocked boolean, block_synced boolean, litellm_blocked boolean)
language sql stable security definer set search_path = '' as $$
  select k.id, k.status, k.blocked, k.block_synced, k.litellm_blocked
    from public.api_keys k where k.user_id = p_user_id and k.status <> 'retired'
$$;

-- Whether ops-sweep has anything to do (the cron job calls it only then).
create function private.ops_work_due() returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (select 1 from private.key_rotations r
                  where r.state <> 'done' and r.next_attempt_at <= now() + interval '1 minute'
                    and (r.locked_until is null or r.locked_until < now()))
      or exists (select 1 from private.alert_events e
                  where e.delivery_status = 'pending' and e.next_attempt_at <= now() + interval '1 minute')
$$;

-- ops-sweep: finishes rotations whose run died or had to wait, and retries undelivered alerts.
select private.schedule_sweep('ops-sweep', 'ops-sweep', 'private.ops_work_due()');

revoke execute on all functions in schema private from public, anon, authenticated;
grant execute on all functions in schema private to service_role;
