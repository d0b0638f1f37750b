-- Usage by model (issue 16, item 1): per user, key, UTC day and model, the spend in USD, requests and
-- input / output tokens, from LiteLLM's own data (docs/architecture.md, "Usage by model"):
--   - source 'callback': LiteLLM's generic API logging callback (litellm-spend-callback), one
--     StandardLoggingPayload per request, counted once per request id (private.record_usage_events);
--   - source 'pull': LiteLLM's daily activity endpoint (usage-pull), one UTC day at a time in pages of up
--     to 1000 of its daily rows; a finished pull replaces that day's 'pull' rows (private.record_usage_pull_page).
-- Where both exist for a key and day, the one that explains more spend counts (public.usage_counted). Whatever the models do not explain, public.key_spend minus their sum, is
-- the row model = 'other' (public.usage_gaps), shown to the user and listed for the operator.

-- Its settings (usage_pull_*, usage_request_retention_days, usage_other_tolerance_usd) are rows of
-- private.settings, inserted in 20261126000100.

create table public.usage_by_model (
  key_id uuid not null references public.api_keys (id),
  user_id uuid not null,
  day date not null,
  model text not null check (length(model) between 1 and 300),
  source text not null check (source in ('callback', 'pull')),
  spend numeric not null default 0,
  requests bigint not null default 0,
  input_tokens bigint not null default 0,
  output_tokens bigint not null default 0,
  updated_at timestamptz not null default now(),
  primary key (key_id, day, model, source)
);
create index usage_by_model_user_day_idx on public.usage_by_model (user_id, day);

-- Request ids the callback has counted (pruned after usage_request_retention_days).
create table private.usage_requests (
  request_id text primary key,
  seen_at timestamptz not null default now()
);
create index usage_requests_seen_idx on private.usage_requests (seen_at);

-- One pull of one UTC day: pages are applied in order (next_page), summed in usage_pull_rows, and the
-- day's 'pull' rows are replaced when the last page is in. A run that dies leaves its lease to expire.
create table private.usage_pulls (
  id bigint generated always as identity primary key,
  day date not null,
  next_page integer not null default 1,
  total_pages integer,
  lease_until timestamptz,
  started_at timestamptz not null default now(),
  finished_at timestamptz,
  outcome text check (outcome in ('pulled', 'skipped')),
  last_error text
);
create unique index usage_pulls_one_open_per_day on private.usage_pulls (day) where finished_at is null;
create index usage_pulls_day_idx on private.usage_pulls (day, started_at desc);

create table private.usage_pull_rows (
  pull_id bigint not null references private.usage_pulls (id) on delete cascade,
  token text not null,
  model text not null,
  spend numeric not null,
  requests bigint not null,
  input_tokens bigint not null,
  output_tokens bigint not null,
  primary key (pull_id, token, model)
);

-- The rows that count: per key and day, one source only (never both, so nothing counts twice), the one
-- that explains more spend. Each is a lower bound of what LiteLLM charged that day: the callback drops a
-- batch it could not deliver, a pull lags by its interval; on a tie, the pull (LiteLLM's own record).
create view public.usage_counted with (security_invoker = true) as
with sources as (
  select u.key_id, u.day, u.source, sum(u.spend) as spend from public.usage_by_model u group by u.key_id, u.day, u.source
), chosen as (
  select distinct on (s.key_id, s.day) s.key_id, s.day, s.source
    from sources s order by s.key_id, s.day, s.spend desc, s.source = 'pull' desc
)
select u.user_id, u.key_id, u.day, u.model, u.spend, u.requests, u.input_tokens, u.output_tokens
  from public.usage_by_model u join chosen c on c.key_id = u.key_id and c.day = u.day and c.source = u.source;

-- Per key: its spend (public.key_spend, the one definition), the sum of its models, and the difference
-- ('other'). Keys with neither spend nor usage rows are left out.
create view public.usage_gaps with (security_invoker = true) as
select k.id as key_id, k.user_id, public.key_spend(k) as key_spend, coalesce(m.spend, 0) as models_spend,
       public.key_spend(k) - coalesce(m.spend, 0) as other
  from public.api_keys k
  left join lateral (select sum(c.spend) as spend from public.usage_counted c where c.key_id = k.id) m on true
 where public.key_spend(k) <> 0 or m.spend is not null;

-- What the dashboard reads: per user, UTC day and model; 'other' (spend no model explains, positive or
-- negative) is dated today (UTC), when it is known to be unexplained. LiteLLM's amounts are doubles (about
-- 16 significant digits), so sums of the same costs taken in another order differ below 1e-10 USD for any
-- balance under a million: 'other' shows from 1e-10 USD on, with its exact amount.
create view public.my_usage_by_model with (security_invoker = true) as
select c.user_id, c.day, c.model, sum(c.spend) as spend, sum(c.requests)::bigint as requests,
       sum(c.input_tokens)::bigint as input_tokens, sum(c.output_tokens)::bigint as output_tokens
  from public.usage_counted c
 group by c.user_id, c.day, c.model
union all
select g.user_id, (now() at time zone 'utc')::date, 'other', sum(g.other), 0, 0, 0
  from public.usage_gaps g
 group by g.user_id
having round(sum(g.other), 10) <> 0;

-- The operator's list: keys whose models do not add up to their spend (beyond usage_other_tolerance_usd).
create view public.admin_usage_gaps as
select g.key_id, g.user_id, g.key_spend, g.models_spend, g.other
  from public.usage_gaps g
 where abs(g.other) > private.setting_numeric('usage_other_tolerance_usd');

-- The callback's requests ([{id, token, model, cost, input_tokens, output_tokens, start_time}], start_time
-- in epoch seconds): each request id counts once, whatever the number or order of deliveries. Requests of
-- keys we do not know are ignored. Returns {requests, counted}.
create function private.record_usage_events(p_rows jsonb) returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_requests integer;
  v_counted integer;
  v_retention numeric := private.setting_numeric('usage_request_retention_days');
begin
  with r as (
    select distinct on (x.id) x.id, k.id as key_id, k.user_id, x.model, x.cost,
           greatest(coalesce(x.input_tokens, 0), 0) as input_tokens, greatest(coalesce(x.output_tokens, 0), 0) as output_tokens,
           (to_timestamp(x.start_time) at time zone 'utc')::date as day
      from jsonb_to_recordset(p_rows) as x(id text, token text, model text, cost numeric, input_tokens bigint,
                                           output_tokens bigint, start_time double precision)
      join public.api_keys k on k.key_token = x.token
     where x.id is not null and x.model is not null and length(x.model) between 1 and 300 and x.cost >= 0
       and x.start_time is not null
     order by x.id
  ), fresh as (
    insert into private.usage_requests (request_id) select r.id from r
    on conflict (request_id) do nothing
    returning request_id
  ), agg as (
    select r.key_id, r.user_id, r.day, r.model, sum(r.cost) as spend, count(*) as requests,
           sum(r.input_tokens) as input_tokens, sum(r.output_tokens) as output_tokens
      from r join fresh f on f.request_id = r.id
     group by r.key_id, r.user_id, r.day, r.model
  ), up as (
    insert into public.usage_by_model as u (key_id, user_id, day, model, source, spend, requests, input_tokens, output_tokens)
    select a.key_id, a.user_id, a.day, a.model, 'callback', a.spend, a.requests, a.input_tokens, a.output_tokens from agg a
    on conflict (key_id, day, model, source) do update
      set spend = u.spend + excluded.spend, requests = u.requests + excluded.requests,
          input_tokens = u.input_tokens + excluded.input_tokens, output_tokens = u.output_tokens + excluded.output_tokens,
          updated_at = now()
    returning 1
  )
  select (select count(*) from r), (select coalesce(sum(a.requests), 0) from agg a) into v_requests, v_counted;

  -- Bounded pruning: each call forgets at most 1000 ids older than the retention.
  delete from private.usage_requests q
   where q.request_id in (select o.request_id from private.usage_requests o
                           where o.seen_at < now() - make_interval(days => v_retention::integer) limit 1000);
  return jsonb_build_object('requests', v_requests, 'counted', v_counted);
end
$$;

-- Claims up to p_max pulls for usage-pull: an open one whose lease ended, else a new one for each of the
-- last usage_pull_days UTC days not pulled within usage_pull_interval_seconds (p_force: due or not).
-- p_skip (the callback is the source): the due days, and open pulls no run holds, are recorded as skipped
-- and nothing is returned, so the cron job stays quiet for an interval. Returns each pull with its next page and the page budget.
create function private.claim_usage_pulls(p_max integer default 2, p_force boolean default false,
                                          p_skip boolean default false, p_lease_seconds integer default 60)
returns table (pull_id bigint, day date, next_page integer, pages_per_invocation integer)
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_days integer := private.setting_numeric('usage_pull_days')::integer;
  v_interval numeric := private.setting_numeric('usage_pull_interval_seconds');
  v_pages integer := private.setting_numeric('usage_pull_pages_per_invocation')::integer;
  v_today date := (now() at time zone 'utc')::date;
begin
  insert into private.usage_pulls (day, finished_at, outcome)
  select d.day, case when p_skip then now() end, case when p_skip then 'skipped' end
    from (select (v_today - g)::date as day from generate_series(0, v_days - 1) g) d
   where not exists (select 1 from private.usage_pulls o where o.day = d.day and o.finished_at is null)
     and (p_force or not exists (select 1 from private.usage_pulls o where o.day = d.day
                                   and o.started_at > now() - make_interval(secs => v_interval::double precision)))
  on conflict do nothing;
  if p_skip then
    -- with the callback as the source, a pull an operator forced and left unfinished is not continued
    update private.usage_pulls o set finished_at = now(), outcome = 'skipped'
     where o.finished_at is null and (o.lease_until is null or o.lease_until < now());
    delete from private.usage_pull_rows r using private.usage_pulls o where o.id = r.pull_id and o.outcome = 'skipped';
    return;
  end if;

  return query
  with due as (
    select o.id from private.usage_pulls o
     where o.finished_at is null and (o.lease_until is null or o.lease_until < now())
     order by o.day desc
     limit p_max
     for update skip locked
  )
  update private.usage_pulls o set lease_until = now() + make_interval(secs => p_lease_seconds)
    from due where o.id = due.id
  returning o.id, o.day, o.next_page, v_pages;
end
$$;

-- One page of LiteLLM's daily activity for a pull's day ([{token, model, spend, requests, input_tokens,
-- output_tokens}], summed per key and model by the caller). Applied only if it is the page the pull
-- expects (a retried page adds nothing). The last page (p_page >= p_total_pages) replaces the day's
-- 'pull' rows with the pull's sums, in this transaction. Returns {applied, finished, rows}.
create function private.record_usage_pull_page(p_pull_id bigint, p_page integer, p_total_pages integer, p_rows jsonb)
returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_day date;
  v_rows integer;
begin
  update private.usage_pulls o
     set next_page = p_page + 1, total_pages = p_total_pages, lease_until = now() + interval '60 seconds', last_error = null
   where o.id = p_pull_id and o.next_page = p_page and o.finished_at is null
  returning o.day into v_day;
  if v_day is null then
    return jsonb_build_object('applied', false, 'finished', false, 'rows', 0);
  end if;

  insert into private.usage_pull_rows as t (pull_id, token, model, spend, requests, input_tokens, output_tokens)
  select p_pull_id, x.token, x.model, sum(x.spend), sum(x.requests), sum(x.input_tokens), sum(x.output_tokens)
    from jsonb_to_recordset(p_rows) as x(token text, model text, spend numeric, requests bigint, input_tokens bigint,
                                         output_tokens bigint)
   where x.token is not null and x.model is not null and length(x.model) between 1 and 300 and x.spend is not null
   group by x.token, x.model
  on conflict (pull_id, token, model) do update
    set spend = t.spend + excluded.spend, requests = t.requests + excluded.requests,
        input_tokens = t.input_tokens + excluded.input_tokens, output_tokens = t.output_tokens + excluded.output_tokens;

  if p_page < p_total_pages then
    return jsonb_build_object('applied', true, 'finished', false, 'rows', jsonb_array_length(p_rows));
  end if;

  delete from public.usage_by_model u where u.day = v_day and u.source = 'pull';
  insert into public.usage_by_model (key_id, user_id, day, model, source, spend, requests, input_tokens, output_tokens)
  select k.id, k.user_id, v_day, r.model, 'pull', r.spend, r.requests, r.input_tokens, r.output_tokens
    from private.usage_pull_rows r join public.api_keys k on k.key_token = r.token
   where r.pull_id = p_pull_id;
  get diagnostics v_rows = row_count;
  delete from private.usage_pull_rows r where r.pull_id = p_pull_id;
  update private.usage_pulls set finished_at = now(), outcome = 'pulled', lease_until = null where id = p_pull_id;
  return jsonb_build_object('applied', true, 'finished', true, 'rows', v_rows);
end
$$;

-- Frees an unfinished pull for the next run (its pages so far stay): out of page budget, or its LiteLLM
-- read failed (p_error says why).
create function private.release_usage_pull(p_pull_id bigint, p_error text default null) returns void
language sql volatile security definer set search_path = '' as $$
  update private.usage_pulls set lease_until = null, last_error = left(p_error, 500) where id = p_pull_id and finished_at is null
$$;

-- Whether the usage-pull cron job has anything to do (an open pull free to take, or a day due).
create function private.usage_pull_due() returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (select 1 from private.usage_pulls o where o.finished_at is null and (o.lease_until is null or o.lease_until < now()))
      or exists (select 1 from generate_series(0, private.setting_numeric('usage_pull_days')::integer - 1) g
                  where not exists (select 1 from private.usage_pulls o
                                     where o.day = ((now() at time zone 'utc')::date - g)
                                       and (o.finished_at is null
                                            or o.started_at > now() - make_interval(secs => private.setting_numeric('usage_pull_interval_seconds')::double precision))))
$$;

select private.schedule_sweep('usage-pull', 'usage-pull', 'private.usage_pull_due()');

-- ---------------------------------------------------------------- access
-- Users read their own rows (RLS) and the views over them; nothing is writable through the API. The
-- admin view is service_role only.
alter table public.usage_by_model enable row level security;
create policy "own usage" on public.usage_by_model for select to authenticated using ((select auth.uid()) = user_id);
revoke all on table public.usage_by_model, public.usage_counted, public.usage_gaps, public.my_usage_by_model,
  public.admin_usage_gaps from public, anon, authenticated, service_role;
grant select on table public.usage_by_model, public.usage_counted, public.usage_gaps, public.my_usage_by_model
  to authenticated, service_role;
grant select on table public.admin_usage_gaps to service_role;

revoke execute on all functions in schema private from public, anon, authenticated;
grant execute on all functions in schema private to service_role;
