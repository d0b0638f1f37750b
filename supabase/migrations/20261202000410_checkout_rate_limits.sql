-- Abuse control: checkout is rate-limited per user and per client IP, and a user may hold only a few open
-- (created or initialized, unpaid) checkouts. Each checkout asks Paystack to initialize a transaction, so
-- an unthrottled caller could flood Paystack with our secret key and fill public.checkouts.
-- Counting happens here, in one transaction with the insert, so concurrent requests cannot overshoot:
-- hits are counted with an upsert on (bucket, window) (the row lock serialises them), and the open-checkout
-- cap is checked under a per-user advisory lock. Fixed windows: a client may get up to twice its limit
-- across a window boundary, which is enough to stop a flood and simple to reason about.

-- Its settings (checkout_window_seconds, checkout_user_limit, checkout_ip_limit, checkout_max_open_per_user,
-- checkout_open_ttl_seconds) are rows of private.settings, inserted in 20261126000100.

-- One row per bucket and window; the cleanup job deletes windows older than a day.
create table private.rate_limit_hits (
  bucket text not null,
  window_start timestamptz not null,
  hits integer not null,
  primary key (bucket, window_start)
);
create index rate_limit_hits_window_idx on private.rate_limit_hits (window_start);
-- No API role reads it: only the security-definer functions here (and the admin view) do.
revoke all on table private.rate_limit_hits from public, anon, authenticated, service_role;

-- Counts one request in the bucket's current window. Returns 0 when it is within p_limit, else the seconds
-- until the window ends (what Retry-After says).
create function private.take_rate_limit(p_bucket text, p_limit integer, p_window_seconds integer) returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_start timestamptz := to_timestamp(floor(extract(epoch from now()) / p_window_seconds) * p_window_seconds);
  v_hits integer;
begin
  insert into private.rate_limit_hits as h (bucket, window_start, hits) values (p_bucket, v_start, 1)
  on conflict (bucket, window_start) do update set hits = h.hits + 1
  returning h.hits into v_hits;
  if v_hits <= p_limit then
    return 0;
  end if;
  return greatest(1, ceil(extract(epoch from v_start + make_interval(secs => p_window_seconds) - now())))::integer;
end
$$;

-- checkout's one call: the rate limits, the open-checkout cap, then private.create_checkout. outcome is
-- 'created' (the checkout columns are set), 'user_rate_limited', 'ip_rate_limited' or
-- 'too_many_open_checkouts' (retry_after_seconds says when to try again; nothing was created).
-- An unknown plan raises (as create_checkout does) and rolls the counting back: bad input changes nothing.
create function private.start_checkout(p_user_id uuid, p_plan_code text, p_ip inet default null,
                                       p_currency text default null)
returns table (outcome text, retry_after_seconds integer, reference text, amount_subunits integer, currency text,
               credit numeric, email text, exponent integer, channels text[])
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_window integer := private.setting_numeric('checkout_window_seconds')::integer;
  v_user_wait integer;
  v_ip_wait integer := 0;
  v_ttl numeric := private.setting_numeric('checkout_open_ttl_seconds');
  v_open integer;
  v_oldest timestamptz;
begin
  v_user_wait := private.take_rate_limit('checkout:user:' || p_user_id,
                                         private.setting_numeric('checkout_user_limit')::integer, v_window);
  if p_ip is not null then
    v_ip_wait := private.take_rate_limit('checkout:ip:' || host(p_ip),
                                         private.setting_numeric('checkout_ip_limit')::integer, v_window);
  end if;
  if v_user_wait > 0 or v_ip_wait > 0 then
    return query select case when v_user_wait > 0 then 'user_rate_limited' else 'ip_rate_limited' end,
                        greatest(v_user_wait, v_ip_wait), null::text, null::integer, null::text, null::numeric,
                        null::text, null::integer, null::text[];
    return;
  end if;

  perform pg_advisory_xact_lock(hashtextextended('checkout:' || p_user_id, 0));
  select count(*), min(c.created_at) into v_open, v_oldest
    from public.checkouts c
   where c.user_id = p_user_id and c.status in ('created', 'initialized')
     and c.created_at > now() - make_interval(secs => v_ttl::double precision);
  if v_open >= private.setting_numeric('checkout_max_open_per_user') then
    return query select 'too_many_open_checkouts'::text,
                        greatest(1, ceil(extract(epoch from v_oldest + make_interval(secs => v_ttl::double precision)
                                                            - now())))::integer,
                        null::text, null::integer, null::text, null::numeric, null::text, null::integer, null::text[];
    return;
  end if;

  return query select 'created'::text, 0, c.reference, c.amount_subunits, c.currency, c.credit, c.email, c.exponent,
                      c.channels
                 from private.create_checkout(p_user_id, p_plan_code, p_currency) c;
end
$$;

revoke execute on all functions in schema private from public, anon, authenticated;
grant execute on all functions in schema private to service_role;
