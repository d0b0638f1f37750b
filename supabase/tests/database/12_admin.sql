-- Operator SQL (20261126001100): credit adjustments are ledger rows with a reason and an author, exactly
-- once per idempotency key, and change nothing else; users by id or email; one user's reconcile claim;
-- the health facts; the ops-sweep job.
begin;
select plan(33);

insert into auth.users (id, email, aud, role, email_confirmed_at) values
  ('12000000-0000-4000-8000-000000000001', 'Admin-One@pgtap.test', 'authenticated', 'authenticated', now()),
  ('12000000-0000-4000-8000-000000000002', 'admin-two@pgtap.test', 'authenticated', 'authenticated', now());
do $$
begin
  perform private.complete_provisioning(j.id, 1, 2.00) from private.provisioning_jobs j where j.user_id::text like '12000000-%';
end
$$;

-- ---------------------------------------------------------------- finding users
select is(private.find_user('12000000-0000-4000-8000-000000000001'), '12000000-0000-4000-8000-000000000001'::uuid, 'a user by id');
select is(private.find_user('  admin-one@PGTAP.test '), '12000000-0000-4000-8000-000000000001'::uuid, 'a user by email, any case, trimmed');
select throws_ok($$ select private.find_user('nobody@pgtap.test') $$, 'P0001', 'no user nobody@pgtap.test', 'an unknown email is one clear error');
select throws_ok($$ select private.find_user('12000000-0000-4000-8000-0000000000ff') $$, 'P0001', null, 'an unknown id too');

-- ---------------------------------------------------------------- grant
create temp table t_other_before as
select (select count(*) from public.credit_ledger where user_id <> '12000000-0000-4000-8000-000000000001') as ledger_rows,
       (select count(*) from public.payments) as payments,
       (select string_agg(k.id || ':' || k.budget_version || ':' || k.sync_status, ',' order by k.id) from public.api_keys k
         where k.user_id = '12000000-0000-4000-8000-000000000002') as other_keys;
create temp table t_key_before as select budget_version from public.api_keys where user_id = '12000000-0000-4000-8000-000000000001';
create temp table t_g1 as
select * from private.adjust_credit('12000000-0000-4000-8000-000000000001', 5.00, '  outage credit for ticket 42 ', 'admin-cli:pgtap', 'adj-pgtap-1');
select results_eq($$ select is_new, granted, remaining, target_max_budget from t_g1 $$,
                  $$ values (true, 7.00::numeric, 7.00::numeric, 7.00::numeric) $$, 'a grant of 5.00: granted 7.00, target 7.00');
select results_eq($$ select kind, amount, reason, created_by, idempotency_key, payment_id from public.credit_ledger where id = (select ledger_id from t_g1) $$,
                  $$ values ('adjustment'::text, 5.00::numeric(12, 2), 'outage credit for ticket 42'::text, 'admin-cli:pgtap'::text, 'adj-pgtap-1'::text, null::bigint) $$,
                  'one ledger row: kind adjustment, the reason (trimmed), who, the idempotency key');
select results_eq($$ select budget_version, sync_status from public.api_keys where user_id = '12000000-0000-4000-8000-000000000001' $$,
                  $$ select budget_version + 1, 'pending'::text from t_key_before $$, 'the key needs a push of the new target (version bumped)');
select results_eq($$ select (select count(*) from public.credit_ledger where user_id <> '12000000-0000-4000-8000-000000000001'),
                            (select count(*) from public.payments),
                            (select string_agg(k.id || ':' || k.budget_version || ':' || k.sync_status, ',' order by k.id) from public.api_keys k
                              where k.user_id = '12000000-0000-4000-8000-000000000002') $$,
                  $$ select * from t_other_before $$, 'nothing else changed: no other ledger row, no payment, the other user''s key untouched');

select results_eq($$ select ledger_id, is_new from private.adjust_credit('12000000-0000-4000-8000-000000000001', 5.00, 'outage credit for ticket 42', 'admin-cli:pgtap', 'adj-pgtap-1') $$,
                  $$ select ledger_id, false from t_g1 $$, 'the same command again (same idempotency key): nothing added');
select is((select count(*)::int from public.credit_ledger where user_id = '12000000-0000-4000-8000-000000000001'), 2, 'still two ledger rows');
select throws_like($$ select * from private.adjust_credit('12000000-0000-4000-8000-000000000001', 6.00, 'other', 'admin-cli:pgtap', 'adj-pgtap-1') $$,
                   '%already used for a different change%', 'an idempotency key cannot be reused for a different amount');

-- ---------------------------------------------------------------- deduct
create temp table t_d1 as
select * from private.adjust_credit('12000000-0000-4000-8000-000000000001', -2.50, 'duplicate grant reversed', 'admin-cli:pgtap');
select results_eq($$ select l.kind, l.amount, l.reason from public.credit_ledger l where l.id = (select ledger_id from t_d1) $$,
                  $$ values ('adjustment'::text, -2.50::numeric(12, 2), 'duplicate grant reversed'::text) $$, 'a deduction is a negative adjustment row');
select ok((select idempotency_key like 'adjust:%' from public.credit_ledger where id = (select ledger_id from t_d1)),
          'without a key, each command gets its own idempotency key');
select is((select target_max_budget from t_d1), 4.50::numeric, 'target 7.00 - 2.50 = 4.50');
update public.api_keys set spend = 4.00 where user_id = '12000000-0000-4000-8000-000000000001';
select is((select remaining from private.adjust_credit('12000000-0000-4000-8000-000000000001', -1.00, 'deduct below spend', 'admin-cli:pgtap')),
          -0.50::numeric, 'a deduction may take the remaining credit below what was spent (LiteLLM then blocks the key)');

-- ---------------------------------------------------------------- refused input (and nothing written)
create temp table t_rows as select count(*) as n from public.credit_ledger;
select throws_like($$ select * from private.adjust_credit('12000000-0000-4000-8000-000000000001', 1.00, '', 'x') $$,
                   '%reason is required%', 'no reason: refused');
select throws_like($$ select * from private.adjust_credit('12000000-0000-4000-8000-000000000001', 1.00, 'ab', 'x') $$,
                   '%reason is required%', 'a two-letter reason: refused');
select throws_like($$ select * from private.adjust_credit('12000000-0000-4000-8000-000000000001', 1.00, 'fine reason', ' ') $$,
                   '%who makes the change%', 'no author: refused');
select throws_like($$ select * from private.adjust_credit('12000000-0000-4000-8000-000000000001', 0, 'zero', 'x') $$,
                   '%non-zero number%', 'zero: refused');
select throws_like($$ select * from private.adjust_credit('12000000-0000-4000-8000-000000000001', 1.234, 'sub-cent', 'x') $$,
                   '%at most 2 decimals%', 'fractions of a cent: refused (never rounded silently)');
select throws_like($$ select * from private.adjust_credit('12000000-0000-4000-8000-000000000001', 1000.01, 'too much', 'x') $$,
                   '%admin_adjust_max_usd%', 'more than admin_adjust_max_usd: refused');
select throws_like($$ select * from private.adjust_credit('12000000-0000-4000-8000-000000000001', -100.00, 'way too much', 'x') $$,
                   '%below 0%', 'a deduction cannot take the ledger total below 0');
select throws_like($$ select * from private.adjust_credit('12000000-0000-4000-8000-0000000000ff', 1.00, 'nobody', 'x') $$,
                   '%no user%', 'an unknown user: refused');
select is((select count(*) from public.credit_ledger), (select n from t_rows), 'refused commands wrote no ledger row');

-- ---------------------------------------------------------------- the user's key, one user's reconcile
select results_eq($$ select status, blocked from private.live_key_of('12000000-0000-4000-8000-000000000001') $$,
                  $$ values ('active'::text, false) $$, 'live_key_of: the user''s live key');
update public.reconcile_chunks set lease_until = null;
create temp table t_c as select * from private.claim_reconcile_chunks(10, 120, false, '12000000-0000-4000-8000-000000000001');
select is((select count(*)::int from t_c), 1, 'one user''s reconcile claims the chunk of their key');
select ok((select exists (select 1 from t_c c, jsonb_array_elements(c.keys) e, public.api_keys k
                           where k.user_id = '12000000-0000-4000-8000-000000000001' and e ->> 'token' = k.key_token)),
          'the claim lists the user''s key token');
select ok((select lease_until > now() from public.reconcile_chunks where chunk = (select chunk from t_c)), 'the chunk is leased');
select is_empty($$ select * from private.claim_reconcile_chunks(10, 120, false, '12000000-0000-4000-8000-000000000001') $$,
                'a second claim while leased gets nothing (no two runs on one chunk)');

-- ---------------------------------------------------------------- health facts and the ops-sweep job
select results_eq($$ select active_keys, reconcile_stale_seconds from private.health_status() $$,
                  $$ values (true, 180::numeric) $$, 'health_status: active keys exist; stale after 180 s');
delete from private.reconcile_runs where outcome = 'ok'; -- (rolled back) runs of the live stack's cron
insert into private.reconcile_runs (started_at, finished_at, outcome) values (now() - interval '70 seconds', now() - interval '60 seconds', 'ok');
select ok((select last_successful_reconcile_age_seconds between 59 and 61 from private.health_status()), 'the age of the last successful reconcile');
select ok(exists (select 1 from cron.job where jobname = 'ops-sweep' and active), 'the ops-sweep cron job is scheduled');
select ok((select command like '%private.ops_work_due()%' from cron.job where jobname = 'ops-sweep'),
          'ops-sweep is only called when there is work');

select * from finish();
rollback;
