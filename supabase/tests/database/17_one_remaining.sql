-- One definition of a user's remaining credit (20261126000600): public.remaining_credit is what the
-- dashboard's my_account (banner included), the low-balance alerts (their triggers), the admin credit
-- command and the views use; this file proves they agree, spend hints and retired keys included.
begin;
select plan(14);

do $$ begin perform tests.active_users('17000000-0000-4000-8000-', 7); end $$;

-- Banner and alerts agree for every user of this file: an open 20 % alert exactly while the level is 20
-- or 5, an open 5 % alert exactly while it is 5.
create function pg_temp.disagreements() returns setof uuid language sql as $$
  select a.user_id from public.my_account a
   where a.user_id::text like '17000000-%'
     and ((a.low_balance_level is not null)
            <> exists (select 1 from private.alert_events e where e.user_id = a.user_id and e.level = 20 and e.rearmed_at is null)
          or coalesce(a.low_balance_level = 5, false)
            <> exists (select 1 from private.alert_events e where e.user_id = a.user_id and e.level = 5 and e.rearmed_at is null))
$$;
create function pg_temp.spend(p_user text, p_spend numeric) returns void language sql as $$
  update public.api_keys set spend = p_spend, spend_observed_at = now()
   where user_id = ('17000000-0000-4000-8000-00000000000' || p_user)::uuid and status = 'active'
$$;
create function pg_temp.hint(p_user text, p_auth_spend numeric, p_cost numeric) returns jsonb language sql as $$
  select private.record_spend_hints(jsonb_build_array(jsonb_build_object('token', k.key_token, 'auth_spend', p_auth_spend, 'cost', p_cost)))
    from public.api_keys k where k.user_id = ('17000000-0000-4000-8000-00000000000' || p_user)::uuid and k.status = 'active'
$$;

-- pulled spend around the boundaries of 2.00 granted: 20 % = 0.40 left, 5 % = 0.10 left
do $$
begin
  perform pg_temp.spend('1', 1.59);  -- 0.41 left: above 20 %
  perform pg_temp.spend('2', 1.60);  -- exactly 20 %
  perform pg_temp.spend('3', 1.90);  -- exactly 5 %
  perform pg_temp.spend('4', 1.899999999); -- just above 5 %
end
$$;
select results_eq($$ select a.user_id, a.granted, a.spent, a.remaining, a.remaining_percent, a.low_balance_level
                       from public.my_account a where a.user_id::text like '17000000-%' order by 1 $$,
                  $$ select u.id, b.granted, b.spent, b.remaining, b.remaining_percent, b.low_balance_level
                       from auth.users u, public.remaining_credit(u.id) b where u.id::text like '17000000-%' order by 1 $$,
                  'my_account is public.remaining_credit, column for column');
select results_eq($$ select low_balance_level from public.my_account where user_id::text like '17000000-%' order by user_id $$,
                  $$ values (null::integer), (20), (5), (20), (null), (null), (null) $$,
                  'the exact boundaries: 0.41 left none, 0.40 level 20, 0.10 level 5, 0.100000001 level 20');
select is_empty($$ select * from pg_temp.disagreements() $$, 'banner and alerts agree on pulled spend');

-- a callback hint crosses 20 %: the banner counted hints before, the alert trigger did not
select is(pg_temp.hint('5', 1.50, 0.15), '{"matched": 1, "updated": 1}'::jsonb, 'a hint: 1.50 at admission + 0.15 = 1.65 spent');
select is((select low_balance_level from public.my_account where user_id = '17000000-0000-4000-8000-000000000005'), 20,
          'the banner shows 20 (0.35 left)');
select results_eq($$ select level, spent, remaining from private.alert_events where user_id = '17000000-0000-4000-8000-000000000005' $$,
                  $$ values (20, 1.65::numeric, 0.35::numeric) $$, 'and the 20 % alert fired on the same numbers');
do $$ begin perform pg_temp.hint('5', 1.65, 0.25); end $$; -- 1.90: 5 %
select is_empty($$ select * from pg_temp.disagreements() $$, 'a second hint to exactly 5 %: banner and alerts still agree');

-- a retired key's spend counts the same everywhere (user 6 rotated: the old key spent 1.00, the new 0.70)
update public.api_keys set status = 'retired', retired_spend = 1.00, spend = 1.00, retired_at = now()
 where user_id = '17000000-0000-4000-8000-000000000006';
insert into public.api_keys (user_id, key_alias, key_value, key_token, status)
select '17000000-0000-4000-8000-000000000006', 'lc-one-pgtap', v.k, private.key_token(v.k), 'active'
  from (select private.new_key_value() as k) v;
do $$ begin perform pg_temp.spend('6', 0.70); end $$; -- reconcile reads the new key's spend
select results_eq($$ select spent, remaining, low_balance_level from public.my_account where user_id = '17000000-0000-4000-8000-000000000006' $$,
                  $$ values (1.70::numeric, 0.30::numeric, 20) $$, 'retired 1.00 + live 0.70: 0.30 left, level 20');
select is_empty($$ select * from pg_temp.disagreements() $$, 'banner and alerts agree with a retired key');

-- the operator's credit command reports the same remaining credit
create temp table t_adj as
select * from private.adjust_credit('17000000-0000-4000-8000-000000000005', 1.00, 'pgtap one definition', 'pgtap');
select results_eq($$ select granted, remaining from t_adj $$,
                  $$ select granted, remaining from public.remaining_credit('17000000-0000-4000-8000-000000000005') $$,
                  'adjust_credit reports remaining_credit''s numbers (3.00 granted, the hint counted: 1.10 left)');
select is_empty($$ select * from pg_temp.disagreements() $$, 'after the grant (re-armed) banner and alerts agree');

-- a user can only see their own balance through it (security invoker: RLS applies)
select tests.authenticate_as('17000000-0000-4000-8000-000000000001');
select results_eq($$ select granted, spent from public.remaining_credit('17000000-0000-4000-8000-000000000002') $$,
                  $$ values (0::numeric, 0::numeric) $$, 'asking for another user''s balance shows nothing of it');
select tests.clear_authentication();

-- promo credit and its expiry (20261202000900) are ledger rows: the lots, the statement's last balance, the
-- ledger target and remaining_credit still agree (user 7: 2.00 sign-up, 4.00 promo, 1.00 spent, expired)
do $$
begin
  perform private.create_promo_code('ONE4', 4.00, null, 3, null, null, 'pgtap');
  perform private.redeem_promo('17000000-0000-4000-8000-000000000007', 'ONE4');
  perform pg_temp.spend('7', 1.00);
  update public.promo_redemptions set expires_at = now() - interval '1 second'
   where user_id = '17000000-0000-4000-8000-000000000007';
  perform private.expire_promos();
end
$$;
select results_eq($$ select b.granted, b.remaining, private.key_target_budget(k.id),
                            (select sum(l.remaining) from public.my_lots l where l.user_id = k.user_id),
                            (select m.balance_usd from public.my_ledger m where m.user_id = k.user_id order by m.seq desc limit 1)
                       from public.api_keys k, public.remaining_credit(k.user_id) b
                      where k.user_id = '17000000-0000-4000-8000-000000000007' $$,
                  $$ values (3.00::numeric, 2.00::numeric, 3.00::numeric, 2.00::numeric, 2.00::numeric) $$,
                  'after a promo expired: granted = target 3.00; the lots, the statement and remaining_credit say 2.00 left');
select is_empty($$ select * from pg_temp.disagreements() $$, 'banner and alerts agree after a promo expiry');

select * from finish();
rollback;
