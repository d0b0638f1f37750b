-- checkout's abuse limits (migration 20261202000410): requests per user and per client IP in a window, and
-- the cap on open (created or initialized, unpaid) checkouts per user, all counted in SQL by
-- private.start_checkout. now() is fixed inside this transaction, so every call lands in the same window.
begin;
select plan(22);

insert into auth.users (id, email, aud, role, email_confirmed_at)
select ('17000000-0000-4000-8000-00000000000' || n)::uuid, 'limits-' || n || '@pgtap.test', 'authenticated', 'authenticated', now()
  from generate_series(1, 5) n;

create function pg_temp.start(p_user int, p_ip text default null) returns text language sql as $$
  select outcome from private.start_checkout(('17000000-0000-4000-8000-00000000000' || p_user)::uuid, 'starter', p_ip::inet)
$$;
create function pg_temp.open(p_user int) returns integer language sql as $$
  select count(*)::int from public.checkouts
   where user_id = ('17000000-0000-4000-8000-00000000000' || p_user)::uuid and status in ('created', 'initialized')
$$;

select is((select count(*)::int from private.settings where key in ('checkout_window_seconds', 'checkout_user_limit', 'checkout_ip_limit',
                                                                 'checkout_max_open_per_user', 'checkout_open_ttl_seconds')), 5,
          'the five checkout limits are operator settings in private.settings');

-- ---------------------------------------------------------------- the counter
select is(private.take_rate_limit('pgtap:bucket', 2, 60), 0, 'take_rate_limit: first hit allowed');
select is(private.take_rate_limit('pgtap:bucket', 2, 60), 0, 'take_rate_limit: second hit allowed');
select ok(private.take_rate_limit('pgtap:bucket', 2, 60) between 1 and 60, 'take_rate_limit: the third waits until the window ends (1..60 s)');
select is(private.take_rate_limit('pgtap:other', 2, 60), 0, 'another bucket has its own count');

-- ---------------------------------------------------------------- per user
update private.settings set value = '3' where key = 'checkout_user_limit';
update private.settings set value = '100' where key = 'checkout_max_open_per_user';
select results_eq($$ select pg_temp.start(1) from generate_series(1, 3) $$, $$ values ('created'), ('created'), ('created') $$,
                  'three checkouts within the user limit of 3 are created');
select results_eq(
  $$ select outcome, retry_after_seconds between 1 and 600, reference is null
       from private.start_checkout('17000000-0000-4000-8000-000000000001', 'starter') $$,
  $$ values ('user_rate_limited'::text, true, true) $$,
  'the fourth is user_rate_limited with a retry-after inside the window, and no reference');
select is(pg_temp.open(1), 3, 'the refused request created no checkout');
select is(pg_temp.start(2), 'created', 'another user is not affected');
select throws_ok($$ select * from private.start_checkout('17000000-0000-4000-8000-000000000002', 'platinum') $$,
                 'P0001', null, 'an unknown plan still raises');
select is((select hits from private.rate_limit_hits where bucket = 'checkout:user:17000000-0000-4000-8000-000000000002'), 1,
          'and the refused bad input was not counted (its transaction rolled back)');

-- ---------------------------------------------------------------- per IP
update private.settings set value = '100' where key = 'checkout_user_limit';
update private.settings set value = '2' where key = 'checkout_ip_limit';
select results_eq($$ values (pg_temp.start(3, '203.0.113.7')), (pg_temp.start(4, '203.0.113.7')) $$,
                  $$ values ('created'), ('created') $$, 'two users from one IP: both created within the IP limit of 2');
select is(pg_temp.start(5, '203.0.113.7'), 'ip_rate_limited', 'a third user from the same IP is ip_rate_limited');
select is(pg_temp.start(5, '198.51.100.4'), 'created', 'the same user from another IP is not');
select is(pg_temp.start(5), 'created', 'a request without a known client IP is limited per user only');

-- ---------------------------------------------------------------- open checkouts
update private.settings set value = '1000' where key = 'checkout_ip_limit';
update private.settings set value = '2' where key = 'checkout_max_open_per_user';
-- user 4 holds one open checkout (above); one more is allowed, then the cap.
select is(pg_temp.start(4), 'created', 'a second open checkout is within the cap of 2');
select results_eq(
  $$ select outcome, retry_after_seconds between 1 and 3600 from private.start_checkout('17000000-0000-4000-8000-000000000004', 'starter') $$,
  $$ values ('too_many_open_checkouts'::text, true) $$,
  'a third is refused: too_many_open_checkouts, retry when the oldest stops counting');
select is(pg_temp.open(4), 2, 'the refused request created no checkout');
-- One is paid (apply_payment), one failed at Paystack: neither is open any more.
do $$
declare
  v_refs text[] := array(select reference from public.checkouts where user_id = '17000000-0000-4000-8000-000000000004' order by created_at, reference);
begin
  perform private.apply_payment(v_refs[1], 'success', 500, null, 'USD', 'test', 'test', 1, now());
  perform private.checkout_failed(v_refs[2], 'pgtap: paystack refused');
end
$$;
select is(pg_temp.start(4), 'created', 'paid and failed checkouts are not open: a new one is allowed');
-- An abandoned checkout older than checkout_open_ttl_seconds no longer counts.
select is(pg_temp.start(4), 'created', 'the second open slot');
update public.checkouts set created_at = now() - interval '2 hours'
 where user_id = '17000000-0000-4000-8000-000000000004' and status = 'created';
select is(pg_temp.start(4), 'created', 'abandoned checkouts older than the TTL do not count');
select is((select count(*)::int from public.checkouts where user_id = '17000000-0000-4000-8000-000000000004'), 5,
          'user 4: five checkouts in all, no refused request left one behind');

select * from finish();
rollback;
