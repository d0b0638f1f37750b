-- The user's ledger statement (public.my_ledger, 20261202000910), what the "Download CSV" and the operator's
-- export read: every entry kind, a running balance that is the sum of the amounts, and a last balance equal
-- to my_account.remaining (public.remaining_credit), read as the user through RLS.
begin;
select plan(9);

do $$ begin perform tests.active_users('22100000-0000-4000-8000-', 2); end $$;
create function pg_temp.u(p_n integer) returns uuid language sql as $$
  select ('22100000-0000-4000-8000-' || lpad(p_n::text, 12, '0'))::uuid
$$;

do $$
declare
  v_key uuid := (select id from public.api_keys where user_id = pg_temp.u(1) and status <> 'retired');
  v_starter bigint;
  v_pro bigint;
begin
  -- three days of usage (cumulative spend snapshots): 0.40, then 0.60, then 0.25 today
  insert into public.spend_snapshots (key_id, user_id, spend, observed_at) values
    (v_key, pg_temp.u(1), 0.40, now() - interval '2 days'),
    (v_key, pg_temp.u(1), 1.00, now() - interval '1 day'),
    (v_key, pg_temp.u(1), 1.25, now());
  update public.api_keys set spend = 1.25, spend_observed_at = now() where id = v_key;
  perform tests.buy(pg_temp.u(1), 'starter');
  perform tests.buy(pg_temp.u(1), 'pro');
  select p.id into v_starter from public.payments p where p.user_id = pg_temp.u(1) and p.plan_code = 'starter';
  select p.id into v_pro from public.payments p where p.user_id = pg_temp.u(1) and p.plan_code = 'pro';
  insert into public.credit_ledger (user_id, kind, amount, payment_id, idempotency_key, reason) values
    (pg_temp.u(1), 'refund', -2.50, v_starter, 'pgtap-csv-refund', 'refund'),
    (pg_temp.u(1), 'dispute_reversal', -30.00, v_pro, 'pgtap-csv-dispute', 'dispute lost');
  perform private.adjust_credit(pg_temp.u(1), 1.00, 'goodwill', 'pgtap');
  perform private.create_promo_code('CSV3', 3.00, null, 5, null, null, 'pgtap');
  perform private.redeem_promo(pg_temp.u(1), 'CSV3');
  -- a callback hint: 0.20 more than the pulled spend, not in any daily total yet
  update public.api_keys set hinted_spend = 1.45, hinted_at = now() where id = v_key;
  update public.promo_redemptions set expires_at = now() - interval '1 second' where user_id = pg_temp.u(1);
  perform private.expire_promos();
end
$$;

select tests.authenticate_as(pg_temp.u(1));
select results_eq($$ select distinct entry_type from public.my_ledger order by 1 $$,
                  $$ values ('adjustment'), ('dispute_reversal'), ('promo'), ('promo_expiry'), ('purchase'), ('refund'),
                            ('signup_grant'), ('spend'), ('spend_pending') $$,
                  'every entry kind is in the statement');
select is((select balance_usd from public.my_ledger order by seq desc limit 1), (select remaining from public.my_account),
          'the last running balance is my_account.remaining');
select is((select remaining from public.my_account), 2.00 + 10 + 30 - 2.50 - 30 + 1 + 3 - 2.80 - 1.45,
          'which is 9.25: the grants, less refunds, reversals, expired promo credit and 1.45 spent');
select is_empty($$ select seq from (select seq, balance_usd, sum(amount_usd) over (order by seq) as running from public.my_ledger) s
                    where balance_usd <> running $$, 'each balance is the sum of the amounts up to it');
select results_eq($$ select date, amount_usd from public.my_ledger where entry_type like 'spend%' order by seq $$,
                  $$ values ((now() at time zone 'utc')::date - 2, -0.40::numeric), ((now() at time zone 'utc')::date - 1, -0.60),
                            ((now() at time zone 'utc')::date, -0.20), ((now() at time zone 'utc')::date, -0.25) $$,
                  'one spend entry per day of usage (at the day''s end), the spend not yet in a daily total at now');
select results_eq($$ select description, currency, amount_paid, amount_usd from public.my_ledger where entry_type = 'purchase' order by seq $$,
                  $$ values ('Starter pack', 'USD', 5.00::numeric, 10.00::numeric), ('Pro pack', 'USD', 15.00, 30.00) $$,
                  'a purchase names its pack, what was paid in which currency, and the USD credit');
select is((select count(*) from public.my_ledger where entry_type like 'promo%' and reference = 'CSV3'), 2::bigint,
          'the promo rows name their code');
select is((select count(*) from public.my_ledger where user_id <> pg_temp.u(1)), 0::bigint, 'a user reads only their own entries');
select tests.authenticate_as_anon();
select throws_ok($$ select * from public.my_ledger $$, '42501', null, 'anon cannot read the statement');
select tests.clear_authentication();

select * from finish();
rollback;
