-- Manual edits on LiteLLM (issue 19, item 4): reconcile repairs a key's max_budget and block state to the
-- ledger's values (as before: 20261126000500); every repair is now recorded with what was found. Budget
-- repairs already were (private.budget_repairs); block repairs get their own table, and one admin view
-- lists both.

create table private.block_repairs (
  id bigint generated always as identity primary key,
  key_id uuid not null references public.api_keys (id),
  observed_blocked boolean not null,  -- what LiteLLM had
  wanted_blocked boolean not null,    -- what the ledger wants (an open dispute blocks)
  outcome text not null check (outcome in ('pushed', 'failed')),
  created_at timestamptz not null default now()
);
create index block_repairs_key_idx on private.block_repairs (key_id, created_at);

create function private.record_block_repair(p_key_id uuid, p_observed boolean, p_wanted boolean, p_outcome text)
returns void language sql volatile security definer set search_path = '' as $$
  insert into private.block_repairs (key_id, observed_blocked, wanted_blocked, outcome) values (p_key_id, p_observed, p_wanted, p_outcome)
$$;

-- Every repair of a LiteLLM key (service_role only, like the other admin views): kind, what was found, what
-- it was set to.
create view public.admin_litellm_repairs as
select 'max_budget'::text as kind, r.key_id, k.user_id, r.observed_max_budget::text as found, r.target_max_budget::text as set_to,
       r.outcome, r.error, r.created_at
  from private.budget_repairs r join public.api_keys k on k.id = r.key_id
union all
select 'blocked', b.key_id, k.user_id, b.observed_blocked::text, b.wanted_blocked::text, b.outcome, null, b.created_at
  from private.block_repairs b join public.api_keys k on k.id = b.key_id;
revoke all on table public.admin_litellm_repairs from public, anon, authenticated, service_role;
grant select on table public.admin_litellm_repairs to service_role;

revoke execute on all functions in schema private from public, anon, authenticated;
grant execute on all functions in schema private to service_role;
