-- Spend snapshots pulled from LiteLLM (the truth for spend, invariant 3) and the chunk claims that let
-- reconcile-spend cover many keys in bounded pieces across several invocations.

create table public.spend_snapshots (
  id bigint generated always as identity primary key,
  key_id uuid not null references public.api_keys (id),
  user_id uuid not null,
  spend numeric not null,
  max_budget numeric,
  observed_at timestamptz not null default now()
);
create index spend_snapshots_key_idx on public.spend_snapshots (key_id, observed_at);
create index spend_snapshots_user_idx on public.spend_snapshots (user_id, observed_at);
alter table public.spend_snapshots enable row level security;
create policy "own snapshots" on public.spend_snapshots for select to authenticated using ((select auth.uid()) = user_id);
revoke all on table public.spend_snapshots from public, anon, authenticated, service_role;
revoke all on sequence public.spend_snapshots_id_seq from public, anon, authenticated, service_role;
grant select on table public.spend_snapshots to authenticated, service_role;

-- Keys are reconciled in chunks of 1000 consecutive seq numbers (api_keys.reconcile_chunk).
create index api_keys_reconcile_chunk_idx on public.api_keys (reconcile_chunk) where status = 'active';

-- A claim is a lease: a run that dies
-- leaves its chunks to be claimed again when the lease ends; SKIP LOCKED keeps overlapping runs apart.
create table public.reconcile_chunks (
  chunk integer primary key,
  lease_until timestamptz,
  last_started_at timestamptz,
  last_finished_at timestamptz,
  last_error text,
  runs bigint not null default 0
);
-- Readable by signed-in users: it only says when each chunk was last synced (the "updated N s ago").
alter table public.reconcile_chunks enable row level security;
create policy "sync times are public to users" on public.reconcile_chunks for select to authenticated using (true);
revoke all on table public.reconcile_chunks from public, anon, authenticated, service_role;
grant select (chunk, last_finished_at) on table public.reconcile_chunks to authenticated;
grant select on table public.reconcile_chunks to service_role;

-- The last chunk number (null: no keys). reconcile_chunk is (seq - 1) / 1000 and seq has a unique index, so
-- this is one step down that index; max(reconcile_chunk), a generated column no full index covers, is a scan
-- of every key (issue 18, bench:reconcile: kick_reconcile once a minute and every claim, quadratic in keys).
create function private.last_reconcile_chunk() returns integer
language sql stable security definer set search_path = '' as $$
  select ((max(k.seq) - 1) / 1000)::integer from public.api_keys k
$$;

-- Claim up to p_max due chunks; returns each chunk with the LiteLLM tokens (sha256) of its live keys.
-- p_force: due or not (an operator's "reconcile now"); p_user_id: only the chunks holding that user's
-- keys, due or not (`npm run admin -- reconcile <user>`). Chunk rows are created densely from 0 and never
-- deleted, so they are created only when the last chunk's row is missing (not a thousand conflicting
-- inserts per invocation).
-- p_cycle_started_at: when the cron kick that started this invocation ran (private.kick_reconcile). A chunk
-- finished since then was already read in this cycle; when a cycle runs longer than the interval, the kick's
-- last invocations would otherwise fill their spare claims with chunks that came due again meanwhile
-- (bench:reconcile at 1,000,000 keys: 1,010 LiteLLM requests for 1,001 chunks).
create function private.claim_reconcile_chunks(p_max integer default 10, p_lease_seconds integer default 120,
                                                          p_force boolean default false, p_user_id uuid default null,
                                                          p_cycle_started_at timestamptz default null)
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
       and (p_cycle_started_at is null or c.last_finished_at is null or c.last_finished_at < p_cycle_started_at)
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

-- One SQL round trip per chunk: p_rows is what LiteLLM returned for the chunk's keys
-- ([{token, spend, max_budget, blocked}]; keys LiteLLM does not know are absent).
-- Writes a snapshot only where spend or max_budget changed, flags keys changed behind our back, and
-- returns the keys whose LiteLLM budget or block state differs from ours so the caller can push them.
-- Spend as reported: reconcile calls private.record_spend_batch (20261202000500), which adds the reset offset.
-- The targets come from public.key_target joined (inlined into this query), not called per key (20261126000300).
create function private.record_spend_batch_as_reported(p_chunk integer, p_rows jsonb)
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
           t.target
      from public.api_keys k
      left join jsonb_to_recordset(p_rows) as r(token text, spend numeric, max_budget numeric, blocked boolean)
        on r.token = k.key_token
      -- offset 0: the target is used twice below; inlined as is, each use would scan the ledger again
      cross join lateral (select t.target from public.key_target(k.user_id, k.status, k.spend, k.retired_spend, k.spend_offset) t
                          offset 0) t
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

-- A chunk whose LiteLLM read failed: release it (due again next cycle) and remember why.
create function private.fail_reconcile_chunk(p_chunk integer, p_error text) returns void
language sql volatile security definer set search_path = '' as $$
  update public.reconcile_chunks set lease_until = null, last_error = left(p_error, 500) where chunk = p_chunk
$$;

-- Drift repair bookkeeping: every budget pushed by the reconciler is recorded.
create table private.budget_repairs (
  id bigint generated always as identity primary key,
  key_id uuid not null references public.api_keys (id),
  observed_max_budget numeric,
  target_max_budget numeric not null,
  outcome text not null check (outcome in ('pushed', 'failed')),
  error text,
  created_at timestamptz not null default now()
);
create index budget_repairs_key_idx on private.budget_repairs (key_id, created_at);

create function private.record_budget_repair(p_key_id uuid, p_observed numeric, p_target numeric, p_outcome text, p_error text default null)
returns void language sql volatile security definer set search_path = '' as $$
  insert into private.budget_repairs (key_id, observed_max_budget, target_max_budget, outcome, error)
  values (p_key_id, p_observed, p_target, p_outcome, left(p_error, 500))
$$;

-- Reconcile runs (one row per invocation) for the health check and the stale flag.
create table private.reconcile_runs (
  id bigint generated always as identity primary key,
  started_at timestamptz not null default now(),
  finished_at timestamptz,
  chunks integer not null default 0,
  keys integer not null default 0,
  snapshots integer not null default 0,
  repairs integer not null default 0,
  litellm_requests integer not null default 0,
  outcome text not null default 'running' check (outcome in ('running', 'ok', 'partial', 'failed')),
  error text
);

create function private.start_reconcile_run() returns bigint
language sql volatile security definer set search_path = '' as $$
  insert into private.reconcile_runs default values returning id
$$;

create function private.finish_reconcile_run(p_run_id bigint, p_outcome text, p_chunks integer, p_keys integer,
                                             p_snapshots integer, p_repairs integer, p_requests integer, p_error text default null)
returns void language sql volatile security definer set search_path = '' as $$
  update private.reconcile_runs
     set finished_at = now(), outcome = p_outcome, chunks = p_chunks, keys = p_keys, snapshots = p_snapshots,
         repairs = p_repairs, litellm_requests = p_requests, error = left(p_error, 500)
   where id = p_run_id
$$;

-- How many reconcile-spend invocations this minute needs (each may take reconcile_chunks_per_invocation
-- chunks), so pg_cron fans out and a cycle over 100k keys fits in a minute within the 2 s CPU limit.
create function private.kick_reconcile() returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_chunks integer := coalesce(private.last_reconcile_chunk() + 1, 0);
  v_per integer := private.setting_numeric('reconcile_chunks_per_invocation')::integer;
  v_calls integer := ceil(v_chunks::numeric / v_per)::integer;
begin
  for i in 1..v_calls loop
    perform private.invoke_function('reconcile-spend',
                                    jsonb_build_object('source', 'cron', 'slot', i, 'cycle_started_at', now()));
  end loop;
  return v_calls;
end
$$;
