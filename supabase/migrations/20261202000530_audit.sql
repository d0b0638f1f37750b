-- Audit (issue 19, item 3): compare every live key's ledger values with what LiteLLM has, without changing
-- anything. reconcile-spend's audit mode reads LiteLLM in chunks of 1000 keys (one batch read each) and
-- calls private.audit_chunk; `npm run admin -- audit` walks the chunks, adds the totals and records the
-- result, which health shows.
--   missing     the key is not on LiteLLM
--   max_budget  LiteLLM's max_budget differs from private.key_target_budget (the pushed-budget definition)
--   spend       offset + LiteLLM's spend differs from the spend recorded (reconcile has not caught up, or
--               LiteLLM lost spend: a reset the next reconcile records)
--   blocked     LiteLLM's block state differs from the ledger's (an open dispute blocks)

create table private.audit_runs (
  id bigint generated always as identity primary key,
  finished_at timestamptz not null default now(),
  mismatches integer not null,
  result jsonb not null
);

-- The live keys of a chunk, as reconcile-spend reads them ([{id, token}]).
create function private.audit_chunk_keys(p_chunk integer) returns jsonb
language sql stable security definer set search_path = '' as $$
  select coalesce(jsonb_agg(jsonb_build_object('id', k.id, 'token', k.key_token) order by k.seq), '[]'::jsonb)
    from public.api_keys k where k.reconcile_chunk = p_chunk and k.status = 'active'
$$;

-- The last chunk number (-1: no keys).
create function private.audit_last_chunk() returns integer
language sql stable security definer set search_path = '' as $$
  select coalesce(private.last_reconcile_chunk(), -1)
$$;

-- p_rows: what LiteLLM returned for the chunk's keys ([{token, spend, max_budget, blocked}]). Money as text.
create function private.audit_chunk(p_chunk integer, p_rows jsonb) returns jsonb
language sql stable security definer set search_path = '' as $$
  with seen as (
    select k.id, k.user_id, k.spend, k.spend_offset, k.blocked as want_blocked, private.key_target_budget(k.id) as target,
           r.token is not null as is_found, r.spend as l_spend, r.max_budget as l_max_budget, coalesce(r.blocked, false) as l_blocked
      from public.api_keys k
      left join jsonb_to_recordset(p_rows) as r(token text, spend numeric, max_budget numeric, blocked boolean) on r.token = k.key_token
     where k.reconcile_chunk = p_chunk and k.status = 'active'
  ), mismatches as (
    select s.id, s.user_id, 'missing'::text as kind, null::text as ledger, null::text as litellm from seen s where not s.is_found
    union all
    select s.id, s.user_id, 'max_budget', s.target::text, s.l_max_budget::text from seen s
     where s.is_found and s.l_max_budget is distinct from s.target
    union all
    select s.id, s.user_id, 'spend', s.spend::text, (s.spend_offset + s.l_spend)::text from seen s
     where s.is_found and s.spend_offset + s.l_spend is distinct from s.spend
    union all
    select s.id, s.user_id, 'blocked', s.want_blocked::text, s.l_blocked::text from seen s
     where s.is_found and s.l_blocked <> s.want_blocked
  )
  select jsonb_build_object(
    'chunk', p_chunk,
    'keys', (select count(*) from seen),
    'litellm_spend', (select coalesce(sum(s.l_spend), 0)::text from seen s),
    'mismatches', coalesce((select jsonb_agg(jsonb_build_object('key_id', m.id, 'user_id', m.user_id, 'kind', m.kind,
                                                                'ledger', m.ledger, 'litellm', m.litellm) order by m.kind, m.id)
                              from mismatches m), '[]'::jsonb))
$$;

-- The money totals of the audit: credit sold (purchases net of refunds and lost disputes), credit granted
-- (the whole ledger), spend recorded (public.key_spend of every key), outstanding prepaid liability (what
-- users may still spend: remaining credit above 0, public.remaining_credit).
create function private.audit_totals() returns jsonb
language sql stable security definer set search_path = '' as $$
  select jsonb_build_object(
    'credit_sold', (select coalesce(sum(l.amount) filter (where l.kind in ('purchase', 'refund', 'dispute_reversal')), 0)::text from public.credit_ledger l),
    'credit_granted', (select coalesce(sum(l.amount), 0)::text from public.credit_ledger l),
    'spend_recorded', (select coalesce(sum(public.key_spend(k)), 0)::text from public.api_keys k),
    'outstanding_liability', (select coalesce(sum(greatest(b.remaining, 0)), 0)::text
                                from public.profiles p cross join lateral public.remaining_credit(p.id) b))
$$;

create function private.record_audit(p_mismatches integer, p_result jsonb) returns bigint
language sql volatile security definer set search_path = '' as $$
  insert into private.audit_runs (mismatches, result) values (p_mismatches, p_result) returning id
$$;

-- The last audit, for health: when it finished and how many mismatches it found (null: never run).
create function private.last_audit() returns jsonb
language sql stable security definer set search_path = '' as $$
  select jsonb_build_object('finished_at', a.finished_at, 'mismatches', a.mismatches)
    from private.audit_runs a order by a.id desc limit 1
$$;

revoke execute on all functions in schema private from public, anon, authenticated;
grant execute on all functions in schema private to service_role;
