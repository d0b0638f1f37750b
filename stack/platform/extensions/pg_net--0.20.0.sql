-- Stand-in for supabase/pg_net 0.20: same tables and function signatures. Real pg_net sends from a
-- background worker; here the stack's worker (stack/platform/pgnet-worker.ts) LISTENs on
-- 'pg_net_stand_in' and polls the queue. NOTIFY is delivered only at commit, and queue rows are only
-- visible after commit, so a rolled-back call is never sent, exactly like the real worker.
create schema if not exists net;

create unlogged table net.http_request_queue (
  id bigserial primary key,
  method text not null check (method in ('GET', 'POST', 'DELETE')),
  url text not null,
  headers jsonb not null,
  body bytea,
  timeout_milliseconds integer not null
);

create unlogged table net._http_response (
  id bigint,
  status_code integer,
  content_type text,
  headers jsonb,
  content text,
  timed_out boolean,
  error_msg text,
  created timestamptz not null default now()
);
create index _http_response_created_idx on net._http_response (created);

create function net._notify_worker() returns trigger language plpgsql as $$
begin
  perform pg_notify('pg_net_stand_in', new.id::text);
  return new;
end
$$;
create trigger notify_worker after insert on net.http_request_queue
  for each row execute function net._notify_worker();

create function net._urlencode_params(url text, params jsonb) returns text language sql immutable as $$
  select case when params is null or params = '{}'::jsonb then url
    else url || case when position('?' in url) > 0 then '&' else '?' end ||
      (select string_agg(key || '=' || value, '&') from jsonb_each_text(params)) end
$$;

create function net.http_get(
  url text, params jsonb default '{}'::jsonb, headers jsonb default '{}'::jsonb,
  timeout_milliseconds integer default 5000
) returns bigint language sql volatile security definer set search_path = '' as $$
  insert into net.http_request_queue (method, url, headers, timeout_milliseconds)
  values ('GET', net._urlencode_params(url, params), coalesce(headers, '{}'::jsonb), timeout_milliseconds)
  returning id
$$;

create function net.http_post(
  url text, body jsonb default '{}'::jsonb, params jsonb default '{}'::jsonb,
  headers jsonb default '{"Content-Type": "application/json"}'::jsonb, timeout_milliseconds integer default 5000
) returns bigint language sql volatile security definer set search_path = '' as $$
  insert into net.http_request_queue (method, url, headers, body, timeout_milliseconds)
  values ('POST', net._urlencode_params(url, params), coalesce(headers, '{}'::jsonb),
          convert_to(coalesce(body, '{}'::jsonb)::text, 'utf8'), timeout_milliseconds)
  returning id
$$;

create function net.http_delete(
  url text, params jsonb default '{}'::jsonb, headers jsonb default '{}'::jsonb,
  timeout_milliseconds integer default 5000
) returns bigint language sql volatile security definer set search_path = '' as $$
  insert into net.http_request_queue (method, url, headers, timeout_milliseconds)
  values ('DELETE', net._urlencode_params(url, params), coalesce(headers, '{}'::jsonb), timeout_milliseconds)
  returning id
$$;

revoke all on all functions in schema net from public;
grant usage on schema net to postgres, service_role;
grant execute on function net.http_get(text, jsonb, jsonb, integer), net.http_post(text, jsonb, jsonb, jsonb, integer),
  net.http_delete(text, jsonb, jsonb, integer) to postgres, service_role;
grant select, insert, update, delete on net.http_request_queue, net._http_response to postgres, service_role;
