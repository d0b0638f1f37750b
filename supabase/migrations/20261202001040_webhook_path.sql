-- The webhook path in fewer round trips, and receipt emails without one function run per payment
-- (bench:webhook, docs/benchmarks.md).
--
-- 1. private.apply_verified_payment: what the functions did in three SQL calls after Paystack's verify
--    answer (apply_payment; save_payment_method; budget_push_target, the first read of pushBudget) in one.
--    The money logic stays in private.apply_payment, unchanged; this only calls it, saves the card and
--    returns the key's push target read in the same transaction.
-- 2. send-notifications kicks are shared. Every email queued by a transaction needs a run that claims it
--    after that transaction commits. A transaction now joins the newest kick still waiting (a
--    private.notification_kicks row, each with its own pg_net call) by locking that row FOR KEY SHARE
--    until it ends; the run first deletes its kick row (private.take_notification_kick), which waits for
--    every joined transaction to commit or roll back, and only then claims. So a joined email is claimed
--    by that run, never missed by it. A kick whose run has begun (its row locked by that delete: SKIP
--    LOCKED) or that is older than notification_kick_join_seconds is not joined; the transaction makes its
--    own. The age limit bounds how long a run can wait for joiners under a steady stream of payments.
--    This replaces one function run per receipt (bench:webhook: 200 runs for 200 payments, in the same
--    local process as the webhook) and the low-balance rule that looked into pg_net's queue.
-- 3. confirm_budget_push computes the key target once (it computed it twice; bench:webhook, track_functions:
--    three private.key_target_budget calls per payment, about 0.75 ms each on the loaded bench machine).

-- ---------------------------------------------------------------- 1. one call per verified payment

-- p_authorization: the authorization object of the verify answer (null: none). A card that cannot be saved
-- never undoes a credit: its error is returned (card_error) and the payment stands.
create function private.apply_verified_payment(
  p_reference text,
  p_status text,
  p_amount_subunits integer,
  p_requested_amount_subunits integer,
  p_currency text,
  p_domain text,
  p_expected_domain text,
  p_provider_transaction_id bigint,
  p_paid_at timestamptz,
  p_delivery_id bigint,
  p_channel text,
  p_authorization jsonb
) returns table (outcome text, reason text, key_id uuid, card_saved boolean, card_error text, key_value text,
                 target_max_budget numeric, budget_version bigint, status text, sync_status text,
                 litellm_max_budget numeric)
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_applied record;
  v_saved boolean := false;
  v_error text;
begin
  select * into v_applied from private.apply_payment(p_reference, p_status, p_amount_subunits,
    p_requested_amount_subunits, p_currency, p_domain, p_expected_domain, p_provider_transaction_id, p_paid_at,
    p_delivery_id, p_channel) a;
  -- Again on a duplicate: the first delivery may have credited without saving (it is idempotent).
  if v_applied.outcome in ('credited', 'duplicate') and p_authorization is not null then
    begin
      v_saved := private.save_payment_method(p_reference, p_authorization) is not null;
    exception when others then
      v_error := left(sqlerrm, 300);
    end;
  end if;
  return query
  select v_applied.outcome, v_applied.reason, v_applied.key_id, v_saved, v_error, k.key_value,
         v_applied.target_max_budget, k.budget_version, k.status, k.sync_status, k.litellm_max_budget
    from (select 1) one left join public.api_keys k on k.id = v_applied.key_id;
end
$$;

-- ---------------------------------------------------------------- 2. shared send-notifications kicks

insert into private.settings (key, value, description) values
  ('notification_kick_join_seconds', '1',
   'a new notification email joins a send-notifications call queued less than this long ago instead of queuing its own')
on conflict (key) do nothing;

-- One row per queued send-notifications call that may still be joined; deleted by the run it starts.
create table private.notification_kicks (
  id bigint generated always as identity primary key,
  -- clock time, not the transaction's start: a long transaction's kick is as young as its call
  created_at timestamptz not null default clock_timestamp()
);
revoke all on table private.notification_kicks from public, anon, authenticated, service_role;

-- As in 20261202000740, with the kick joined or made as described above (every kind alike: low-balance
-- emails from reconcile's chunks join too, so a burst of crossings still makes about one call a second).
create or replace function private.queue_notification_emails() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  v_queued integer;
  v_kick bigint;
begin
  insert into private.notification_emails (notification_id, user_id, idempotency_key)
  select n.id, n.user_id, 'notification/' || n.user_id || '/' || n.id
    from new_rows n join auth.users u on u.id = n.user_id
   where coalesce(u.email, '') <> ''
  on conflict (notification_id) do nothing;
  get diagnostics v_queued = row_count;
  if v_queued = 0 then
    return null;
  end if;
  -- Held until this transaction ends: the kick's run cannot take it before these emails are committed.
  select k.id into v_kick from private.notification_kicks k
   where k.created_at > clock_timestamp()
                        - make_interval(secs => private.setting_numeric('notification_kick_join_seconds')::double precision)
   order by k.id desc
   limit 1
   for key share skip locked;
  if v_kick is null then
    insert into private.notification_kicks default values returning id into v_kick;
    -- private.invoke_function never raises; a kick without a call is not left for others to join.
    if private.invoke_function('send-notifications', jsonb_build_object('source', 'notify', 'kick', v_kick)) is null then
      delete from private.notification_kicks where id = v_kick;
    end if;
  end if;
  return null;
end
$$;

-- The first step of a send-notifications run, in its own transaction before the claim: deletes the run's
-- kick, which waits until every transaction that joined it has ended, so the claim after it sees their
-- emails. Also removes kicks whose call never started a run (the cron sweep sends their emails).
create function private.take_notification_kick(p_kick bigint) returns void
language plpgsql volatile security definer set search_path = '' as $$
begin
  delete from private.notification_kicks where id = p_kick;
  delete from private.notification_kicks k
   where k.id in (select s.id from private.notification_kicks s
                   where s.created_at < clock_timestamp() - interval '10 minutes'
                   for update skip locked);
end
$$;

-- ---------------------------------------------------------------- 3. the key target once per confirmation

-- As in 20261126000300, with the target computed once.
create or replace function private.confirm_budget_push(p_key_id uuid, p_version bigint, p_confirmed_max_budget numeric)
returns boolean language plpgsql volatile security definer set search_path = '' as $$
declare
  v_current bigint;
  v_done boolean;
begin
  select budget_version into v_current from public.api_keys where id = p_key_id for update;
  v_done := v_current = p_version and p_confirmed_max_budget = private.key_target_budget(p_key_id);
  update public.api_keys
     set litellm_max_budget = p_confirmed_max_budget, observed_max_budget = p_confirmed_max_budget,
         last_sync_at = now(), last_sync_error = null,
         sync_status = case when v_done then 'synced' else 'pending' end
   where id = p_key_id;
  return v_done;
end
$$;

revoke execute on all functions in schema private from public, anon, authenticated;
grant execute on all functions in schema private to service_role;
