-- Refunds (ledger rows that move a payment's refund total to credit x processed refunds / amount charged,
-- from Paystack's list of the transaction's refunds) and disputes (opening blocks the key; won unblocks;
-- lost reverses what is left of the credit and unblocks). The edges are in 15_money_edges.sql.
begin;
select plan(44);

create function pg_temp.delivery(p_event text, p_ref text) returns bigint language sql as $$
  select private.record_delivery(p_event, p_ref, true, '{}'::jsonb, null, null)
$$;

insert into auth.users (id, email, aud, role, email_confirmed_at)
select ('07000000-0000-4000-8000-0000000000' || tag)::uuid, 'rd-' || tag || '@pgtap.test', 'authenticated', 'authenticated', now()
  from unnest(array['0a', '0b', '0d', '0e', '0f']) tag;
create temp table t_ref (who text primary key, reference text);
insert into t_ref values
  ('r', tests.buy('07000000-0000-4000-8000-00000000000a', 'pro')),
  ('over', tests.buy('07000000-0000-4000-8000-00000000000b', 'starter')),
  ('d', tests.buy('07000000-0000-4000-8000-00000000000d', 'starter')),
  ('l', tests.buy('07000000-0000-4000-8000-00000000000e', 'pro')),
  ('m1', tests.buy('07000000-0000-4000-8000-00000000000f', 'starter')),
  ('m2', tests.buy('07000000-0000-4000-8000-00000000000f', 'pro'));
do $$
begin
  perform private.complete_provisioning(j.id, 1, private.key_target_budget(j.key_id))
     from private.provisioning_jobs j where j.user_id::text like '07000000-%';
end
$$;

-- ---------------------------------------------------------------- refunds
create function pg_temp.refunds(p_who text, p_amounts integer[], p_delivery boolean default false)
returns table (outcome text, reason text, is_new boolean, target_max_budget numeric) language sql as $$
  select r.outcome, r.reason, r.is_new, r.target_max_budget
    from t_ref t, private.apply_refunds(t.reference, tests.refund_list(t.reference, p_amounts),
                                        case when p_delivery then pg_temp.delivery('refund.processed', t.reference) end) r
   where t.who = p_who
$$;
create temp table t_rf1 as select * from pg_temp.refunds('r', array[750], true);
select results_eq($$ select outcome, reason, is_new, target_max_budget from t_rf1 $$,
                  $$ values ('refunded'::text, null::text, true, 17.00::numeric) $$,
                  'a refund of 750 of a 1500 pro pack is applied: target 2 + 30 - 15 = 17.00');
select results_eq(
  $$ select amount, idempotency_key from public.credit_ledger where user_id = '07000000-0000-4000-8000-00000000000a' and kind = 'refund' $$,
  $$ select -15.00::numeric(12, 2), 'refund:paystack:' || reference || ':750' from t_ref where who = 'r' $$,
  'one refund row of -15.00 (credit x processed refunds / amount charged), keyed by the processed total');
select results_eq($$ select refunded_subunits, status from public.payments where reference = (select reference from t_ref where who = 'r') $$,
                  $$ values (750, 'partially_refunded'::text) $$, 'the payment is partially refunded');
select results_eq($$ select budget_version, sync_status from public.api_keys where user_id = '07000000-0000-4000-8000-00000000000a' $$,
                  $$ values (2::bigint, 'pending'::text) $$, 'the refund bumps the budget version: the lower budget must be pushed');
select results_eq($$ select outcome, reason from private.webhook_deliveries where id = (select max(id) from private.webhook_deliveries) $$,
                  $$ values ('refunded'::text, null::text) $$, 'the delivery is marked refunded');

create temp table t_rf1_again as select * from pg_temp.refunds('r', array[750], true);
select results_eq($$ select outcome, is_new, target_max_budget from t_rf1_again $$,
                  $$ values ('duplicate'::text, false, 17.00::numeric) $$, 'the same list again (a replayed event) adds nothing');
select results_eq(
  $$ select count(*)::int, sum(amount) from public.credit_ledger where user_id = '07000000-0000-4000-8000-00000000000a' and kind = 'refund' $$,
  $$ values (1, -15.00::numeric) $$, 'the duplicate refund adds no ledger row');
select is((select refunded_subunits from public.payments where reference = (select reference from t_ref where who = 'r')), 750,
          'the duplicate refund does not count twice on the payment');
select results_eq($$ select outcome, reason from private.webhook_deliveries where id = (select max(id) from private.webhook_deliveries) $$,
                  $$ values ('duplicate'::text, 'refunds already applied'::text) $$, 'the duplicate delivery is marked duplicate');

select results_eq(
  $$ select outcome, reason, is_new from pg_temp.refunds('r', array[750, 800]) $$,
  $$ values ('rejected'::text, 'refunds_exceed_charge: 1550 > 1500'::text, false) $$,
  'refunds of 750 + 800 of a 1500 charge are rejected (Paystack would not list them)');
select is((select sum(amount) from public.credit_ledger where user_id = '07000000-0000-4000-8000-00000000000a'), 17.00::numeric,
          'the rejected refund changes nothing');
select results_eq(
  $$ select outcome, target_max_budget from pg_temp.refunds('r', array[750, 750]) $$,
  $$ values ('refunded'::text, 2.00::numeric) $$,
  'the other 750 is refunded: back to the 2.00 sign-up credit');
select results_eq($$ select refunded_subunits, status from public.payments where reference = (select reference from t_ref where who = 'r') $$,
                  $$ values (1500, 'refunded'::text) $$, 'the payment is fully refunded');
select results_eq(
  $$ select outcome, reason from pg_temp.refunds('r', array[750, 750, 1]) $$,
  $$ values ('rejected'::text, 'refunds_exceed_charge: 1501 > 1500'::text) $$, 'nothing more can be refunded');
select results_eq(
  $$ select outcome, reason from private.apply_refunds('lc-unknown-pgtap', '[]'::jsonb) $$,
  $$ values ('rejected'::text, 'unknown_reference'::text) $$, 'refunds of an unknown payment are rejected');
select results_eq(
  $$ select r.outcome, r.reason from t_ref t,
            private.apply_refunds(t.reference, jsonb_set(tests.refund_list(t.reference, array[100]), '{0,currency}', '"NGN"')) r
      where t.who = 'd' $$,
  $$ values ('rejected'::text, 'currency_mismatch'::text) $$, 'a processed refund in another currency is rejected');
select results_eq(
  $$ select r.outcome, r.is_new from t_ref t,
            private.apply_refunds(t.reference, tests.refund_list(t.reference, array[100, 200], 'pending')
                                               || tests.refund_list(t.reference, array[0])) r
      where t.who = 'd' $$,
  $$ values ('duplicate'::text, false) $$, 'pending refunds and a refund of 0 take nothing back');

-- a refund may take the budget below what was already spent: LiteLLM then blocks the key by budget
update public.api_keys set spend = 9.00 where user_id = '07000000-0000-4000-8000-00000000000b';
select results_eq(
  $$ select outcome, target_max_budget from pg_temp.refunds('over', array[500]) $$,
  $$ values ('refunded'::text, 2.00::numeric) $$,
  'a full refund after 9.00 was spent still applies: target 2.00 (below spend, LiteLLM blocks)');

-- ---------------------------------------------------------------- dispute won by the merchant
create temp table t_open as
select * from private.apply_dispute(7001, (select reference from t_ref where who = 'd'), 'create', null,
                                    pg_temp.delivery('charge.dispute.create', (select reference from t_ref where who = 'd')));
select results_eq($$ select outcome, blocked, target_max_budget from t_open $$,
                  $$ values ('dispute'::text, true, 12.00::numeric) $$, 'opening a dispute blocks the key (budget unchanged)');
select is((select blocked from public.api_keys where user_id = '07000000-0000-4000-8000-00000000000d'), true, 'the key is marked blocked');
select is((select status from public.payments where reference = (select reference from t_ref where who = 'd')), 'disputed',
          'the payment is disputed');
select results_eq($$ select outcome, reason from private.webhook_deliveries where id = (select max(id) from private.webhook_deliveries) $$,
                  $$ values ('dispute'::text, 'create'::text) $$, 'the delivery records the dispute action');
select is((select blocked from private.apply_dispute(7001, (select reference from t_ref where who = 'd'), 'remind', null)), true,
          'a reminder keeps the key blocked');
create temp table t_ledger_d as select count(*) as n, sum(amount) as total from public.credit_ledger
 where user_id = '07000000-0000-4000-8000-00000000000d';
select results_eq(
  $$ select outcome, blocked, target_max_budget from private.apply_dispute(7001, (select reference from t_ref where who = 'd'), 'resolve', 'declined') $$,
  $$ values ('dispute'::text, false, 12.00::numeric) $$, 'resolved declined (merchant won): the key is unblocked');
select is((select blocked from public.api_keys where user_id = '07000000-0000-4000-8000-00000000000d'), false, 'the key is no longer blocked');
select results_eq($$ select count(*), sum(amount) from public.credit_ledger where user_id = '07000000-0000-4000-8000-00000000000d' $$,
                  $$ select n, total from t_ledger_d $$, 'a won dispute changes nothing in the ledger');
select is((select status from public.payments where reference = (select reference from t_ref where who = 'd')), 'credited',
          'the payment is credited again');
select results_eq($$ select status, resolution from private.disputes where id = 7001 $$,
                  $$ values ('resolve'::text, 'declined'::text) $$, 'the dispute is recorded as resolved, declined');

-- ---------------------------------------------------------------- dispute lost (after a partial refund)
do $$ begin perform pg_temp.refunds('l', array[750]); end $$;
select is((select blocked from private.apply_dispute(7002, (select reference from t_ref where who = 'l'), 'create', null)), true,
          'a dispute on a partially refunded payment blocks the key');
create temp table t_lost as
select * from private.apply_dispute(7002, (select reference from t_ref where who = 'l'), 'resolve', 'merchant-accepted');
select results_eq($$ select outcome, blocked, target_max_budget from t_lost $$,
                  $$ values ('dispute'::text, false, 2.00::numeric) $$,
                  'resolved merchant-accepted (money returned): unblocked, the target drops to the sign-up 2.00');
select results_eq(
  $$ select amount, idempotency_key from public.credit_ledger where user_id = '07000000-0000-4000-8000-00000000000e' and kind = 'dispute_reversal' $$,
  $$ values (-15.00::numeric(12, 2), 'dispute:paystack:7002'::text) $$,
  'one dispute_reversal row of the remaining credit (30 - 15 already refunded)');
select is((select blocked from public.api_keys where user_id = '07000000-0000-4000-8000-00000000000e'), false, 'the key is unblocked');
select results_eq($$ select status, refunded_subunits from public.payments where reference = (select reference from t_ref where who = 'l') $$,
                  $$ values ('reversed'::text, 750) $$, 'the payment is reversed (refunded_subunits stays what Paystack refunded)');
select is((select budget_version from public.api_keys where user_id = '07000000-0000-4000-8000-00000000000e'), 3::bigint,
          'purchase, refund and reversal each bumped the budget version');
do $$ begin perform private.apply_dispute(7002, (select reference from t_ref where who = 'l'), 'resolve', 'merchant-accepted'); end $$;
select is((select count(*)::int from public.credit_ledger where user_id = '07000000-0000-4000-8000-00000000000e' and kind = 'dispute_reversal'), 1,
          'a repeated resolution reverses nothing more');
select is((select sum(amount) from public.credit_ledger where user_id = '07000000-0000-4000-8000-00000000000e'), 2.00::numeric,
          'the user is back to the sign-up credit');
select results_eq(
  $$ select outcome, is_new from pg_temp.refunds('l', array[750, 750]) $$,
  $$ values ('duplicate'::text, false) $$,
  'a refund processed after the lost dispute cannot take the same money back twice');
select is((select sum(amount) from public.credit_ledger where user_id = '07000000-0000-4000-8000-00000000000e'), 2.00::numeric,
          'still the sign-up credit');

-- ---------------------------------------------------------------- two open disputes
do $$
begin
  perform private.apply_dispute(7003, (select reference from t_ref where who = 'm1'), 'create', null);
  perform private.apply_dispute(7004, (select reference from t_ref where who = 'm2'), 'create', null);
end
$$;
select is((select blocked from private.apply_dispute(7003, (select reference from t_ref where who = 'm1'), 'resolve', 'declined')), true,
          'resolving one dispute keeps the key blocked while another is open');
select is((select blocked from public.api_keys where user_id = '07000000-0000-4000-8000-00000000000f'), true, 'the key stays blocked');
select is((select blocked from private.apply_dispute(7004, (select reference from t_ref where who = 'm2'), 'resolve', 'declined')), false,
          'resolving the last open dispute unblocks the key');

-- ---------------------------------------------------------------- unknowns
select results_eq(
  $$ select outcome, reason from private.apply_dispute(7005, 'lc-unknown-pgtap', 'create', null) $$,
  $$ values ('rejected'::text, 'unknown_reference'::text) $$, 'a dispute on an unknown payment is rejected');
select results_eq(
  $$ select outcome, reason, blocked from private.apply_dispute(7006, (select reference from t_ref where who = 'd'), 'escalate', null) $$,
  $$ values ('ignored'::text, 'unknown dispute action: escalate'::text, null::boolean) $$, 'an unknown dispute action is ignored');
select is((select blocked from public.api_keys where user_id = '07000000-0000-4000-8000-00000000000d'), false,
          'an ignored dispute action does not block the key');

select * from finish();
rollback;
