-- Spend hints from LiteLLM's generic API logging callback (litellm-spend-callback): the balance moves
-- within seconds of a request instead of after the next pull. Each hint is a lower bound of the key's
-- cumulative spend; we keep the largest. The pull (record_spend_batch) remains the truth: hints only
-- raise what views show (public.key_spend), never the ledger, a budget or a snapshot. Spend as reported:
-- the callback calls private.record_spend_hints (20261202000500), which adds the reset offset.
create function private.record_spend_hints_as_reported(p_rows jsonb) returns jsonb
language sql volatile security definer set search_path = '' as $$
  with hints as (
    select r.token, max(coalesce(r.spend, r.auth_spend + r.cost)) as spend
      from jsonb_to_recordset(p_rows) as r(token text, spend numeric, auth_spend numeric, cost numeric)
     where r.token is not null and coalesce(r.spend, r.auth_spend + r.cost) >= 0
     group by r.token
  ), matched as (
    select k.id, h.spend, greatest(coalesce(k.retired_spend, k.spend), coalesce(k.hinted_spend, 0)) as known
      from hints h join public.api_keys k on k.key_token = h.token and k.reconciled
  ), updated as (
    update public.api_keys k set hinted_spend = m.spend, hinted_at = now()
      from matched m where m.id = k.id and m.spend > m.known
    returning 1
  )
  select jsonb_build_object('matched', (select count(*) from matched), 'updated', (select count(*) from updated))
$$;

revoke execute on all functions in schema private from public, anon, authenticated;
grant execute on all functions in schema private to service_role;
