-- Promotional credit (20261202000900): codes, redemption (limit, once per user, the locks that make both hold
-- under concurrency), the consumption order (promo first, earliest-expiring first, only for spend after
-- the redemption; then the other lots oldest first, a purchase in between included) and the expiry sweep
-- (one promo_expiry row of the unused remainder, once; the ledger target falls; paid credit stays).
begin;
select plan(35);

do $$ begin perform tests.use_test_vault_secrets(); end $$;
do $$ begin perform tests.active_users('22000000-0000-4000-8000-', 9); end $$;

create function pg_temp.u(p_n integer) returns uuid language sql as $$
  select ('22000000-0000-4000-8000-' || lpad(p_n::text, 12, '0'))::uuid
$$;
create function pg_temp.spend(p_n integer, p_spend numeric) returns void language sql as $$
  update public.api_keys set spend = p_spend, spend_observed_at = now() where user_id = pg_temp.u(p_n) and status <> 'retired'
$$;
create function pg_temp.redeem(p_n integer, p_code text) returns text language sql as $$
  select r.outcome from private.redeem_promo(pg_temp.u(p_n), p_code) r
$$;
create function pg_temp.target(p_n integer) returns numeric language sql as $$
  select private.key_target_budget(k.id) from public.api_keys k where k.user_id = pg_temp.u(p_n) and k.status <> 'retired'
$$;
create function pg_temp.lots(p_n integer) returns table (kind text, credit numeric, used numeric, remaining numeric, spend_order bigint)
language sql as $$
  select l.kind, l.credit, l.used, l.remaining, l.spend_order from public.my_lots l where l.user_id = pg_temp.u(p_n)
   order by l.spend_order
$$;

-- ---------------------------------------------------------------- codes
select is((select code from private.create_promo_code('launch5', 5.00, null, 10, null, 'launch', 'pgtap')), 'LAUNCH5',
          'a code is stored upper case');
do $$
begin
  perform private.create_promo_code('LIMIT2', 1.00, null, null, 2, null, 'pgtap');
  perform private.create_promo_code('SOON3', 3.00, null, 1, null, null, 'pgtap');
  perform private.create_promo_code('LATE4', 4.00, null, 10, null, null, 'pgtap');
  perform private.create_promo_code('SHORT2', 2.00, null, 2, null, null, 'pgtap');
  perform private.create_promo_code('DATED', 1.50, (now() at time zone 'utc')::date + 30, null, null, null, 'pgtap');
end
$$;
select is(tests.error_hint($$ select private.create_promo_code('LAUNCH5', 1, null, null, null, null, 'pgtap') $$), 'code_exists',
          'a code cannot be created twice');
select is(tests.error_hint($$ select private.create_promo_code('BAD', 1.001, null, null, null, null, 'pgtap') $$), 'invalid_amount',
          'an amount with more than 2 decimals is refused');
select is(tests.error_hint($$ select private.create_promo_code('BOTH', 1, now()::date + 1, 3, null, null, 'pgtap') $$), 'invalid_expiry',
          'a date and a number of days together are refused');

-- ---------------------------------------------------------------- redemption
select is(pg_temp.redeem(1, ' launch5 '), 'redeemed', 'user 1 redeems LAUNCH5 (case and spaces do not matter)');
select results_eq($$ select kind, amount from public.credit_ledger where user_id = pg_temp.u(1) order by id $$,
                  $$ values ('signup_grant', 2.00::numeric), ('promo', 5.00) $$, 'one promo row of 5.00 in the ledger');
select is(pg_temp.target(1), 7.00::numeric, 'the ledger target (max_budget to push) rises to 7.00');
select is((select sync_status from public.api_keys where user_id = pg_temp.u(1) and status <> 'retired'), 'pending',
          'the key is marked for a push, like any grant');
select is((select expires_at::date from public.promo_redemptions where user_id = pg_temp.u(1)), (now() + interval '10 days')::date,
          'LAUNCH5 expires 10 days after the redemption');
select is(pg_temp.redeem(1, 'LAUNCH5'), 'already_redeemed', 'a second redemption is refused');
select is(pg_temp.redeem(1, 'NOPE'), 'unknown_code', 'an unknown code is refused');
select is(pg_temp.redeem(2, 'LIMIT2') || pg_temp.redeem(3, 'LIMIT2'), 'redeemedredeemed', 'LIMIT2: two users redeem');
select is(pg_temp.redeem(4, 'LIMIT2'), 'code_used_up', 'the third is refused (limit 2)');
select is((select redemptions from private.promo_codes where code = 'LIMIT2'), 2, 'and the code counts 2 redemptions');
update private.promo_codes set active = false where code = 'DATED';
select is(pg_temp.redeem(4, 'DATED'), 'unknown_code', 'a disabled code is refused');
update private.promo_codes set active = true, expires_on = (now() at time zone 'utc')::date - 1 where code = 'DATED';
select is(pg_temp.redeem(4, 'DATED'), 'code_expired', 'a code past its date is refused');
select is((select count(*) from public.credit_ledger where user_id = pg_temp.u(4) and kind = 'promo'), 0::bigint,
          'refusals changed nothing');
-- every attempt counts against the rate limit (refusals too: guessing codes is what it is for)
update private.settings set value = '3' where key = 'promo_redeem_limit';
select is((select outcome || ' ' || (retry_after_seconds > 0) from private.redeem_promo(pg_temp.u(4), 'LAUNCH5')), 'rate_limited true',
          'user 4''s fourth attempt in the window (limit 3) is rate-limited, even with a valid code');
update private.settings set value = '10' where key = 'promo_redeem_limit';

-- Under concurrency: two redemptions of one user serialise on the user's lock (private.lock_user, first in
-- redeem_promo) and the second finds the first; different users serialise on the code's row. Behind the
-- locks, the database itself refuses a second row per user and code, and more redemptions than the limit.
select throws_ok($$ insert into public.promo_redemptions (code, user_id, ledger_id, amount, settled_spent)
                    select 'LAUNCH5', pg_temp.u(1), l.id, 5, 0 from public.credit_ledger l where l.user_id = pg_temp.u(1) and l.kind = 'signup_grant' $$,
                 '23505', null, 'a second redemption row of a user and code violates a unique constraint');
select throws_ok($$ update private.promo_codes set redemptions = 3 where code = 'LIMIT2' $$, '23514', null,
                 'more redemptions than the limit violate a check constraint');
select ok((select prosrc ~ 'lock_user\(p_user_id\);\s*select \* into v_code from private\.promo_codes c where .* for update'
             from pg_proc where oid = 'private.redeem_promo'::regproc),
          'redeem_promo locks the user, then the code row, before it checks anything');

-- ---------------------------------------------------------------- consumption order, a purchase in between
-- user 5: 0.50 spent of the sign-up credit, then LAUNCH5 (5.00), then a starter pack (10.00), then 6.00 more
-- spend: 5.00 from the promo, 1.00 from the sign-up lot (oldest), nothing from the pack.
do $$ begin perform pg_temp.spend(5, 0.50); end $$;
select is(pg_temp.redeem(5, 'LAUNCH5'), 'redeemed', 'user 5 redeems after spending 0.50');
do $$ begin perform tests.buy(pg_temp.u(5), 'starter'); perform pg_temp.spend(5, 6.50); end $$;
select results_eq($$ select * from pg_temp.lots(5) $$,
                  $$ values ('promo', 5.00::numeric, 5.00::numeric, 0.00::numeric, 1::bigint),
                            ('signup_grant', 2.00, 1.50, 0.50, 2), ('purchase', 10.00, 0.00, 10.00, 3) $$,
                  'promo first, then the sign-up lot, the purchase last; spend before the redemption stays on sign-up');
select is((select sum(remaining) from public.my_lots where user_id = pg_temp.u(5)),
          (select remaining from public.my_account where user_id = pg_temp.u(5)), 'the lots add up to my_account.remaining');
select results_eq($$ select (select sum(cost) from public.my_lots where user_id = pg_temp.u(5) and kind = 'promo'), paid, savings
                       from public.my_account where user_id = pg_temp.u(5) $$,
                  $$ values (0::numeric, 5.00::numeric, 6.50::numeric) $$,
                  'promo credit cost nothing: paid is the pack''s 5.00, and all 6.50 spent so far was free (promo, sign-up)');

-- two promos: the earliest-expiring one is used first (user 6: LATE4 in 10 days, then SHORT2 in 2, 3.00 spent)
select is(pg_temp.redeem(6, 'LATE4') || pg_temp.redeem(6, 'SHORT2'), 'redeemedredeemed', 'user 6 redeems LATE4 then SHORT2');
do $$ begin perform pg_temp.spend(6, 3.00); end $$;
select results_eq($$ select * from pg_temp.lots(6) $$,
                  $$ values ('promo', 2.00::numeric, 2.00::numeric, 0.00::numeric, 1::bigint), ('promo', 4.00, 1.00, 3.00, 2),
                            ('signup_grant', 2.00, 0.00, 2.00, 3) $$, 'SHORT2 (expires first) is used up first, then LATE4');

-- ---------------------------------------------------------------- expiry
-- user 7: SOON3 (3.00), a starter pack, 1.00 spent; the redemption falls due: 2.00 expire, once.
select is(pg_temp.redeem(7, 'SOON3'), 'redeemed', 'user 7 redeems SOON3');
do $$ begin perform tests.buy(pg_temp.u(7), 'starter'); perform pg_temp.spend(7, 1.00); end $$;
select is(private.expire_promos(), 0, 'nothing is due yet');
update public.promo_redemptions set expires_at = now() - interval '1 second' where user_id = pg_temp.u(7);
update public.api_keys set sync_status = 'synced' where user_id = pg_temp.u(7);
select is(private.expire_promos(), 1, 'the sweep expires the due redemption');
select results_eq($$ select kind, amount from public.credit_ledger where user_id = pg_temp.u(7) and kind like 'promo%' order by id $$,
                  $$ values ('promo', 3.00::numeric), ('promo_expiry', -2.00) $$, 'one promo_expiry row of the unused 2.00');
select results_eq($$ select pg_temp.target(7), k.sync_status from public.api_keys k where k.user_id = pg_temp.u(7) $$,
                  $$ values (13.00::numeric, 'pending') $$, 'the target falls from 15.00 to 13.00 and the key awaits its push');
select is(private.expire_promos(), 0, 'a second sweep expires nothing again');
select results_eq($$ select * from pg_temp.lots(7) $$,
                  $$ values ('promo', 1.00::numeric, 1.00::numeric, 0.00::numeric, 1::bigint),
                            ('signup_grant', 2.00, 0.00, 2.00, 2), ('purchase', 10.00, 0.00, 10.00, 3) $$,
                  'the paid credit did not expire; the promo lot keeps what it used');
select is((select count(*) from net.http_request_queue q where q.url like '%/functions/v1/push-budget'
            and convert_from(q.body, 'utf8')::jsonb ->> 'user_id' = pg_temp.u(7)::text), 1::bigint,
          'push-budget was asked once for user 7');

select * from finish();
rollback;
