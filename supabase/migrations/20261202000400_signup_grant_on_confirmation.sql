-- Abuse control: the sign-up grant waits for a confirmed email address. With confirmations off every
-- throwaway address got 2.00 USD of real LLM usage. Now sign-up still creates the profile, the key row and
-- its provisioning job (the key is created on LiteLLM with max_budget = ledger target = 0, so it is
-- unusable), and the grant is recorded when auth.users.email_confirmed_at is set: at once for a user
-- created confirmed (admin API with email_confirm, or Auth with confirmations off, which confirms in the
-- sign-up transaction), else by the trigger on the update that confirms the address. The grant's
-- idempotency key (signup:<user id>) makes it exactly once however often or concurrently that happens;
-- the new target reaches LiteLLM through the usual versioned absolute push (push-budget, called through
-- pg_net after commit; reconcile-spend repairs it within a minute if that call is lost).
-- Operator setting: private.settings signup_grant_requires_confirmation (true; false grants at sign-up).

-- Its settings (signup_grant_requires_confirmation) are rows of private.settings, inserted in 20261126000100.

-- Records the sign-up grant once and marks the live key for a budget push. True when this call recorded it.
create function private.grant_signup_credit(p_user_id uuid) returns boolean
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_ledger_id bigint;
begin
  -- Serialise with other ledger changes of this user (payments lock the live key the same way).
  perform 1 from public.api_keys k where k.user_id = p_user_id and k.status <> 'retired' for update;
  insert into public.credit_ledger (user_id, kind, amount, idempotency_key, reason)
  values (p_user_id, 'signup_grant', private.setting_numeric('signup_grant_usd'), 'signup:' || p_user_id, 'sign-up credit')
  on conflict (idempotency_key) do nothing
  returning id into v_ledger_id;
  if v_ledger_id is not null then
    perform private.mark_budget_changed(p_user_id);
  end if;
  return v_ledger_id is not null;
end
$$;

-- Whether a user whose address was confirmed at p_confirmed_at (null: not yet) gets the grant now.
create function private.signup_grant_due(p_confirmed_at timestamptz) returns boolean
language sql stable security definer set search_path = '' as $$
  select p_confirmed_at is not null
      or not coalesce((private.setting('signup_grant_requires_confirmation') #>> '{}')::boolean, true)
$$;

-- The address was confirmed (Auth's verify link sets email_confirmed_at once): record the grant and ask
-- push-budget to raise the key's max_budget from 0 (a key not yet provisioned gets the target when it is).
create function private.handle_user_confirmed() returns trigger
language plpgsql security definer set search_path = '' as $$
begin
  if private.grant_signup_credit(new.id) then
    -- skip_if_synced: provisioning may already have created the key with the new target meanwhile.
    perform private.invoke_function('push-budget', jsonb_build_object('user_id', new.id, 'skip_if_synced', true));
  end if;
  return new;
end
$$;

create trigger on_auth_user_confirmed after update on auth.users
  for each row when (old.email_confirmed_at is null and new.email_confirmed_at is not null)
  execute function private.handle_user_confirmed();

revoke execute on all functions in schema private from public, anon, authenticated;
grant execute on all functions in schema private to service_role;
