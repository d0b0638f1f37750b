-- LiteLLM keys (one active per user), their budget sync state, and the provisioning job queue.

create table public.api_keys (
  id uuid primary key default gen_random_uuid(),
  -- Dense sequence number: keys are reconciled in chunks of consecutive seq (see reconcile migration).
  seq bigint generated always as identity unique,
  user_id uuid not null references auth.users (id),
  -- Chosen before LiteLLM is called, so a retried or crashed provisioning can never create a second key.
  key_alias text not null unique,
  key_value text not null unique check (key_value ~ '^sk-[A-Za-z0-9_-]{20,}$'),
  key_token text not null unique, -- sha256 hex of key_value: how LiteLLM names the key
  status text not null default 'pending' check (status in ('pending', 'active', 'failed', 'retired')),
  -- Budget sync: the target comes from the ledger; litellm_max_budget is what LiteLLM last confirmed.
  budget_version bigint not null default 0,
  litellm_max_budget numeric,
  sync_status text not null default 'pending' check (sync_status in ('pending', 'synced', 'failed')),
  last_sync_at timestamptz,
  last_sync_error text,
  -- What we want on LiteLLM (a dispute blocks) and what reconcile last saw there.
  blocked boolean not null default false,
  litellm_blocked boolean,
  block_synced boolean not null default true, -- false until LiteLLM confirmed the last block/unblock we asked for
  -- Spend as LiteLLM last reported it (snapshots hold the history).
  spend numeric not null default 0,
  spend_observed_at timestamptz,
  -- A lower bound of spend pushed by LiteLLM's logging callback (seconds old, while the pull lags by
  -- its batch-write interval). Views show the larger of the two; see public.key_spend.
  hinted_spend numeric,
  hinted_at timestamptz,
  observed_max_budget numeric,
  -- Set by reconcile when LiteLLM disagrees in a way we must not silently undo.
  flag text check (flag in ('blocked_externally', 'deleted_externally')),
  flag_detail text,
  -- True while a rotation of this user's key is unfinished (maintained from private.key_rotations), so the
  -- dashboard can say "being replaced" instead of "blocked" after a reload.
  rotating boolean not null default false,
  -- Spend of a retired key is frozen here (rotation carries the rest of the credit to the new key).
  retired_spend numeric,
  created_at timestamptz not null default now(),
  activated_at timestamptz,
  retired_at timestamptz,
  -- Keys are reconciled in chunks of 1000 consecutive seq numbers: one LiteLLM batch read and one SQL write
  -- each (20261126000500). A stored column so views (run as the user) can tell when a key was last synced.
  reconcile_chunk integer generated always as (((seq - 1) / 1000)::integer) stored,
  -- Spend in flight during a rotation (20261202000320): a retired key is reconciled until its spend settles.
  settled_at timestamptz,
  -- The keys reconcile reads from LiteLLM: active keys, and retired keys whose spend is not final yet. A
  -- column (not a function) so a chunk index (20261202000320) serves the claim.
  reconciled boolean generated always as (status = 'active' or (status = 'retired' and settled_at is null)) stored,
  -- LiteLLM state loss (20261202000500): spend LiteLLM no longer counts, added to what it reports.
  spend_offset numeric not null default 0 check (spend_offset >= 0)
) with (fillfactor = 50);
-- Half of each page free: reconcile rewrites a row whenever its spend moves, and a chunk rewrites neighbouring
-- rows together (a first cycle, all 1,000; pages hold about 20 rows). With the room, each new row version
-- stays on its page (a HOT update: no entry in the table's nine indexes); at 80 only about a quarter did, and
-- the rest cost an insert into every index (bench:reconcile at 1,000,000 keys). PostgreSQL recommends smaller
-- fillfactors for heavily updated tables: https://www.postgresql.org/docs/15/sql-createtable.html
comment on column public.api_keys.settled_at is
  'retired keys: when the spend became final (stable for retired_key_settle_seconds, key deleted on LiteLLM); null while late spend may arrive';
comment on column public.api_keys.spend_offset is
  'spend LiteLLM lost (restored/reset database): added to what LiteLLM reports, subtracted from the max_budget pushed to it';
create unique index api_keys_one_live_per_user on public.api_keys (user_id) where status <> 'retired';
create index api_keys_user_id_idx on public.api_keys (user_id);
-- A user's retired keys, which every target subtracts (public.key_target): most users have none, so reconcile's
-- probe per key finds an almost empty index instead of walking to the user's live key.
create index api_keys_retired_user_idx on public.api_keys (user_id) where status = 'retired';
alter table public.api_keys enable row level security;
create policy "own keys" on public.api_keys for select to authenticated using ((select auth.uid()) = user_id);
revoke all on table public.api_keys from public, anon, authenticated, service_role;
revoke all on sequence public.api_keys_seq_seq from public, anon, authenticated, service_role;
grant select on table public.api_keys to authenticated, service_role;

create table private.provisioning_jobs (
  id bigint generated always as identity primary key,
  key_id uuid not null references public.api_keys (id),
  user_id uuid not null,
  status text not null default 'queued' check (status in ('queued', 'running', 'done', 'dead')),
  attempts integer not null default 0,
  run_after timestamptz not null default now(),
  locked_until timestamptz,
  last_error text,
  created_at timestamptz not null default now(),
  updated_at timestamptz not null default now(),
  finished_at timestamptz
);
create unique index provisioning_jobs_one_open_per_key on private.provisioning_jobs (key_id) where status in ('queued', 'running');
create index provisioning_jobs_due_idx on private.provisioning_jobs (run_after) where status in ('queued', 'running');

-- A new LiteLLM key value: sk- + 32 url-safe characters from a CSPRNG.
create function private.new_key_value() returns text
language sql volatile security definer set search_path = '' as $$
  select 'sk-' || translate(encode(extensions.gen_random_bytes(24), 'base64'), '+/=', '-_')
$$;

create function private.key_token(p_key text) returns text
language sql immutable security definer set search_path = '' as $$
  select encode(extensions.digest(p_key, 'sha256'), 'hex')
$$;

-- Calls one of our edge functions through pg_net with the cron secret; URL and secret come from vault.
-- Returns the pg_net request id, or null when it could not be queued (never raises: callers include
-- the sign-up trigger, which must not fail because of this).
create function private.invoke_function(p_name text, p_body jsonb default '{}'::jsonb) returns bigint
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_url text;
  v_secret text;
  v_id bigint;
begin
  select decrypted_secret into v_url from vault.decrypted_secrets where name = 'project_url';
  select decrypted_secret into v_secret from vault.decrypted_secrets where name = 'cron_secret';
  if v_url is null or v_secret is null then
    raise warning 'invoke_function(%): vault secrets project_url / cron_secret are not set', p_name;
    return null;
  end if;
  select net.http_post(
    url := rtrim(v_url, '/') || '/functions/v1/' || p_name,
    body := p_body,
    headers := jsonb_build_object('Content-Type', 'application/json', 'Authorization', 'Bearer ' || v_secret),
    timeout_milliseconds := 30000
  ) into v_id;
  return v_id;
exception when others then
  raise warning 'invoke_function(%) failed: %', p_name, sqlerrm;
  return null;
end
$$;

-- Sign-up: profile, the grant if due (private.signup_grant_due, 20261202000400), the key row with its
-- value chosen now, one provisioning job, and a pg_net call to provision-key (sent after commit). Inserts
-- only: a failing trigger blocks sign-up. The grant comes before the key row, so a user created confirmed
-- starts at budget_version 0.
create function private.handle_new_user() returns trigger
language plpgsql security definer set search_path = '' as $$
declare
  v_key text := private.new_key_value();
  v_key_id uuid;
begin
  insert into public.profiles (id, email) values (new.id, new.email);
  if private.signup_grant_due(new.email_confirmed_at) then
    perform private.grant_signup_credit(new.id);
  end if;
  insert into public.api_keys (user_id, key_alias, key_value, key_token)
  values (new.id, 'lc-' || new.id, v_key, private.key_token(v_key))
  returning id into v_key_id;
  insert into private.provisioning_jobs (key_id, user_id) values (v_key_id, new.id);
  perform private.invoke_function('provision-key', jsonb_build_object('user_id', new.id));
  return new;
end
$$;

create trigger on_auth_user_created after insert on auth.users
  for each row execute function private.handle_new_user();

-- Jobs due now (or whose lease expired because a worker died), claimed without blocking other workers.
create function private.claim_provisioning_jobs(p_limit integer default 10, p_lease_seconds integer default 60)
returns table (job_id bigint, key_id uuid, user_id uuid, key_alias text, key_value text, attempts integer)
language sql volatile security definer set search_path = '' as $$
  with due as (
    select j.id from private.provisioning_jobs j
     where (j.status = 'queued' and j.run_after <= now())
        or (j.status = 'running' and j.locked_until < now())
     order by j.run_after
     limit p_limit
     for update skip locked
  ), claimed as (
    update private.provisioning_jobs j
       set status = 'running', locked_until = now() + make_interval(secs => p_lease_seconds), updated_at = now()
      from due where j.id = due.id
    returning j.id, j.key_id, j.user_id, j.attempts
  )
  select c.id, c.key_id, c.user_id, k.key_alias, k.key_value, c.attempts
    from claimed c join public.api_keys k on k.id = c.key_id
$$;

-- The absolute max_budget a key must have on LiteLLM (invariant 4): ledger total minus what retired keys
-- of the same user spent. Retired keys themselves get what they spent (nothing more to use).
-- Never below 0: LiteLLM refuses a negative max_budget (such a push would fail forever) and 0 already
-- blocks the key. It could go below 0 only through rotation: LiteLLM lets a key's last request overshoot
-- its budget, so a retired key's spend can exceed the ledger by that overshoot. Minus the key's spend_offset:
-- LiteLLM counts spend from its own counter, which a reset restarted lower (20261202000500).
--
-- The definition is public.key_target, a table function with no SET clause and every name schema-qualified,
-- so the planner inlines it into a calling query (as public.remaining_credit is: 20261126000600). Reconcile
-- joins it for every key of a chunk each cycle (issue 18, bench:reconcile at 1,000,000 keys): a SECURITY
-- DEFINER function with SET search_path runs each call as a separate execution and cannot be inlined, a
-- million calls a cycle. private.key_target_budget returns its row, so both stay one definition. It is
-- executable by service_role only (and by the definer functions' owner).
-- It takes the key's own columns, not its id: reconcile already holds the row, and reading it again by id was
-- a third of the target's cost per key (1,000,000 keys).
create function public.key_target(p_user_id uuid, p_status text, p_spend numeric, p_retired_spend numeric,
                                  p_spend_offset numeric) returns table (target numeric)
language sql stable as $$
  select case when p_status = 'retired' then coalesce(p_retired_spend, p_spend)
    else greatest(0, coalesce((select sum(l.amount) from public.credit_ledger l where l.user_id = p_user_id), 0)
                   - coalesce((select sum(coalesce(r.retired_spend, r.spend)) from public.api_keys r
                                where r.user_id = p_user_id and r.status = 'retired'), 0)
                   - p_spend_offset)
    end
$$;
revoke execute on function public.key_target(uuid, text, numeric, numeric, numeric) from public, anon, authenticated;
grant execute on function public.key_target(uuid, text, numeric, numeric, numeric) to service_role;

create function private.key_target_budget(p_key_id uuid) returns numeric
language sql stable security definer set search_path = '' as $$
  select t.target from public.api_keys k
   cross join lateral public.key_target(k.user_id, k.status, k.spend, k.retired_spend, k.spend_offset) t
   where k.id = p_key_id
$$;

-- LiteLLM confirmed the key exists with this max_budget: the key is usable (provisioning and rotation).
create function private.mark_key_active(p_key_id uuid, p_confirmed_max_budget numeric) returns void
language sql volatile security definer set search_path = '' as $$
  update public.api_keys
     set status = 'active', activated_at = coalesce(activated_at, now()),
         litellm_max_budget = p_confirmed_max_budget, observed_max_budget = p_confirmed_max_budget,
         sync_status = case when p_confirmed_max_budget = private.key_target_budget(id) then 'synced' else 'pending' end,
         last_sync_at = now(), last_sync_error = null, flag = null, flag_detail = null
   where id = p_key_id
$$;

-- Provisioning succeeded: LiteLLM confirmed the key with this max_budget.
create function private.complete_provisioning(p_job_id bigint, p_tries integer, p_confirmed_max_budget numeric)
returns void language plpgsql volatile security definer set search_path = '' as $$
declare
  v_key_id uuid;
begin
  update private.provisioning_jobs
     set status = 'done', attempts = attempts + p_tries, finished_at = now(), updated_at = now(),
         locked_until = null, last_error = null
   where id = p_job_id
  returning key_id into v_key_id;
  if v_key_id is null then
    raise exception 'provisioning job % not found', p_job_id using errcode = 'P0002';
  end if;
  perform private.mark_key_active(v_key_id, p_confirmed_max_budget);
end
$$;

-- Provisioning failed: back off exponentially with jitter, or give up after the configured attempts.
create function private.fail_provisioning(p_job_id bigint, p_tries integer, p_error text)
returns text language plpgsql volatile security definer set search_path = '' as $$
declare
  v_job private.provisioning_jobs;
begin
  update private.provisioning_jobs
     set attempts = attempts + greatest(p_tries, 1), last_error = left(p_error, 500), updated_at = now(), locked_until = null
   where id = p_job_id
  returning * into v_job;
  if v_job.id is null then
    raise exception 'provisioning job % not found', p_job_id using errcode = 'P0002';
  end if;
  if v_job.attempts >= private.setting_numeric('provision_max_attempts') then
    update private.provisioning_jobs set status = 'dead', finished_at = now() where id = p_job_id;
    update public.api_keys set status = 'failed', last_sync_error = left(p_error, 500) where id = v_job.key_id;
    return 'dead';
  end if;
  -- Jitter: a random wait in [backoff/2, backoff], so a fleet of failed jobs does not retry in lockstep.
  update private.provisioning_jobs
     set status = 'queued', run_after = now() + private.backoff('provision', v_job.attempts) * (0.5 + random() / 2)
   where id = p_job_id;
  update public.api_keys set last_sync_error = left(p_error, 500) where id = v_job.key_id;
  return 'queued';
end
$$;

-- Re-queue dead jobs: one SQL call for an operator. Returns the number of jobs re-queued.
create function private.requeue_provisioning(p_user_id uuid default null) returns integer
language sql volatile security definer set search_path = '' as $$
  with requeued as (
    update private.provisioning_jobs j
       set status = 'queued', attempts = 0, run_after = now(), locked_until = null, finished_at = null, updated_at = now()
     where j.status = 'dead' and (p_user_id is null or j.user_id = p_user_id)
    returning j.key_id
  ), reset_keys as (
    update public.api_keys k set status = 'pending', last_sync_error = null
      from requeued r where k.id = r.key_id and k.status = 'failed'
    returning 1
  )
  select count(*)::integer from requeued
$$;

-- A key that must be (re)created on LiteLLM: open a job unless one is open already (idempotent).
create function private.enqueue_provisioning(p_key_id uuid) returns boolean
language plpgsql volatile security definer set search_path = '' as $$
begin
  insert into private.provisioning_jobs (key_id, user_id)
  select k.id, k.user_id from public.api_keys k where k.id = p_key_id and k.status <> 'retired'
  on conflict (key_id) where status in ('queued', 'running') do nothing;
  if not found then
    return false;
  end if;
  update public.api_keys set status = 'pending' where id = p_key_id;
  return true;
end
$$;

-- Budget pushes. Each ledger change bumps budget_version; a push sends the target of one version and is
-- confirmed only if no newer change happened meanwhile, so a slow push that lands late is followed by a
-- fresh one (two concurrent payments end at the sum of both, never at one).
create function private.budget_push_target(p_key_id uuid)
returns table (key_id uuid, key_value text, target_max_budget numeric, budget_version bigint, status text, blocked boolean,
               sync_status text, litellm_max_budget numeric)
language sql stable security definer set search_path = '' as $$
  select k.id, k.key_value, private.key_target_budget(k.id), k.budget_version, k.status, k.blocked,
         k.sync_status, k.litellm_max_budget
    from public.api_keys k where k.id = p_key_id
$$;

-- A push LiteLLM refused or did not answer: marked failed; reconcile's drift repair pushes the target again.
create function private.fail_budget_push(p_key_id uuid, p_error text) returns void
language sql volatile security definer set search_path = '' as $$
  update public.api_keys set sync_status = 'failed', last_sync_error = left(p_error, 500) where id = p_key_id
$$;

create function private.confirm_budget_push(
  p_key_id uuid,
  p_version bigint, -- the budget_version whose target was pushed
  p_confirmed_max_budget numeric -- the max_budget LiteLLM answered with
) returns boolean language plpgsql volatile security definer set search_path = '' as $$
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

-- Called in the same transaction as every ledger change of a user: the live key needs a new push.
create function private.mark_budget_changed(p_user_id uuid) returns uuid
language sql volatile security definer set search_path = '' as $$
  update public.api_keys set budget_version = budget_version + 1, sync_status = 'pending'
   where user_id = p_user_id and status <> 'retired'
  returning id
$$;
