-- The ledger is append-only (invariant 1): nobody updates or deletes a row, postgres and service_role
-- included; corrections are new rows, and the constraints keep every row meaningful.
begin;
select plan(15);

insert into auth.users (id, email, aud, role, email_confirmed_at)
values ('04000000-0000-4000-8000-00000000000a', 'ledger-a@pgtap.test', 'authenticated', 'authenticated', now());
create temp table t_before as
select id, user_id, kind, amount, idempotency_key from public.credit_ledger where user_id = '04000000-0000-4000-8000-00000000000a';

select throws_ok($$ update public.credit_ledger set amount = 100 where user_id = '04000000-0000-4000-8000-00000000000a' $$,
                 '42501', null, 'postgres cannot update a ledger row');
select throws_ok($$ delete from public.credit_ledger where user_id = '04000000-0000-4000-8000-00000000000a' $$,
                 '42501', null, 'postgres cannot delete a ledger row');
select throws_ok($$ truncate public.credit_ledger cascade $$, '42501', null, 'postgres cannot truncate the ledger');
select throws_ok($$ update public.credit_ledger set reason = 'edited' where false $$,
                 '42501', null, 'even an update that matches no row is refused');

select tests.authenticate_as_service_role();
select throws_ok($$ update public.credit_ledger set amount = 100 where user_id = '04000000-0000-4000-8000-00000000000a' $$,
                 '42501', null, 'service_role cannot update a ledger row');
select throws_ok($$ delete from public.credit_ledger where user_id = '04000000-0000-4000-8000-00000000000a' $$,
                 '42501', null, 'service_role cannot delete a ledger row');
select tests.clear_authentication();

select results_eq(
  $$ select id, user_id, kind, amount, idempotency_key from public.credit_ledger where user_id = '04000000-0000-4000-8000-00000000000a' $$,
  $$ select * from t_before $$,
  'the ledger rows are unchanged after the refused writes'
);

-- Corrections are new rows, and each row is constrained
select lives_ok(
  $$ insert into public.credit_ledger (user_id, kind, amount, idempotency_key, reason, created_by)
     values ('04000000-0000-4000-8000-00000000000a', 'adjustment', -0.50, 'adjust:pgtap:1', 'goodwill correction', 'pgtap') $$,
  'a correction is appended as an adjustment row'
);
select is((select sum(amount) from public.credit_ledger where user_id = '04000000-0000-4000-8000-00000000000a'), 1.50::numeric,
          'the balance is the sum of the rows (2.00 - 0.50)');
select throws_ok(
  $$ insert into public.credit_ledger (user_id, kind, amount, idempotency_key)
     values ('04000000-0000-4000-8000-00000000000a', 'signup_grant', 2.00, 'signup:04000000-0000-4000-8000-00000000000a') $$,
  '23505', null, 'an event cannot be recorded twice (idempotency_key is unique)'
);
select throws_ok(
  $$ insert into public.credit_ledger (user_id, kind, amount, idempotency_key)
     values ('04000000-0000-4000-8000-00000000000a', 'adjustment', 5.00, 'adjust:pgtap:2') $$,
  '23514', null, 'an adjustment needs a reason'
);
select throws_ok(
  $$ insert into public.credit_ledger (user_id, kind, amount, idempotency_key)
     values ('04000000-0000-4000-8000-00000000000a', 'signup_grant', -2.00, 'grant:pgtap:neg') $$,
  '23514', null, 'a grant cannot be negative'
);
select throws_ok(
  $$ insert into public.credit_ledger (user_id, kind, amount, idempotency_key)
     values ('04000000-0000-4000-8000-00000000000a', 'purchase', 10.00, 'purchase:pgtap:nopayment') $$,
  '23514', null, 'a purchase row needs a payment'
);
select throws_ok(
  $$ insert into public.credit_ledger (user_id, kind, amount, idempotency_key)
     values ('04000000-0000-4000-8000-00000000000a', 'refund', -1.00, 'refund:pgtap:nopayment') $$,
  '23514', null, 'a refund row needs a payment'
);
select throws_ok(
  $$ insert into public.credit_ledger (user_id, kind, amount, idempotency_key, reason)
     values ('04000000-0000-4000-8000-00000000000a', 'adjustment', 0, 'adjust:pgtap:zero', 'nothing') $$,
  '23514', null, 'a zero row is refused'
);

select * from finish();
rollback;
