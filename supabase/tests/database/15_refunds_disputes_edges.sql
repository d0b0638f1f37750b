-- Refunds and disputes at the edges (20261126000400): refunds taken back as an absolute from Paystack's
-- list (fees passed to the customer, two equal refunds without references, lists seen out of order,
-- rounding), and disputes whatever the order or content of their events (unknown actions and
-- resolutions change nothing; a key stays blocked while any dispute of its user is open; a lost dispute
-- takes back only what refunds have not, once).
begin;
select plan(39);

insert into auth.users (id, email, aud, role, email_confirmed_at)
select ('15000000-0000-4000-8000-0000000000' || tag)::uuid, 'edge-' || tag || '@pgtap.test', 'authenticated', 'authenticated', now()
  from unnest(array['01', '02', '03', '04', '05', '06', '07', '08']) tag;

-- A payment with fees passed to the customer: requested the plan price, charged p_charged.
create function pg_temp.buy_charged(p_user uuid, p_plan text, p_charged integer) returns text language plpgsql as $$
declare
  v_ref text;
begin
  select c.reference into v_ref from private.create_checkout(p_user, p_plan) c;
  perform 1 from public.plans pl, private.apply_payment(v_ref, 'success', p_charged, pl.price_subunits, 'USD', 'test', 'test', 1, now()) r
   where pl.code = p_plan and r.outcome = 'credited';
  if not found then raise exception 'fixture: % not credited', v_ref; end if;
  return v_ref;
end
$$;
create function pg_temp.refunds(p_ref text, p_amounts integer[]) returns table (outcome text, is_new boolean) language sql as $$
  select r.outcome, r.is_new from private.apply_refunds(p_ref, tests.refund_list(p_ref, p_amounts)) r
$$;
create function pg_temp.refunded(p_user uuid) returns numeric language sql as $$
  select coalesce(-sum(amount), 0) from public.credit_ledger where user_id = p_user and kind = 'refund'
$$;
create function pg_temp.granted(p_user uuid) returns numeric language sql as $$
  select sum(amount) from public.credit_ledger where user_id = p_user
$$;
create function pg_temp.blocked(p_user uuid) returns boolean language sql as $$
  select blocked from public.api_keys where user_id = p_user and status <> 'retired'
$$;

create temp table t_ref (who text primary key, reference text);
insert into t_ref values
  ('fee_full', pg_temp.buy_charged('15000000-0000-4000-8000-000000000001', 'starter', 520)),
  ('fee_half', pg_temp.buy_charged('15000000-0000-4000-8000-000000000002', 'starter', 520)),
  ('equal', tests.buy('15000000-0000-4000-8000-000000000003', 'starter')),
  ('thirds', pg_temp.buy_charged('15000000-0000-4000-8000-000000000004', 'pro', 1540)),
  ('lost_first', tests.buy('15000000-0000-4000-8000-000000000005', 'starter')),
  ('d1', tests.buy('15000000-0000-4000-8000-000000000006', 'starter')),
  ('d2', tests.buy('15000000-0000-4000-8000-000000000006', 'pro')),
  ('late_create', tests.buy('15000000-0000-4000-8000-000000000007', 'starter')),
  ('late_lost', tests.buy('15000000-0000-4000-8000-000000000008', 'pro'));
create function pg_temp.ref(p_who text) returns text language sql as $$ select reference from t_ref where who = p_who $$;

-- ---------------------------------------------------------------- fees passed to the customer
select results_eq($$ select * from pg_temp.refunds(pg_temp.ref('fee_full'), array[520]) $$, $$ values ('refunded'::text, true) $$,
                  'a full refund of a fee-bearing charge (520 charged on a 500 plan) is applied, not rejected');
select is(pg_temp.refunded('15000000-0000-4000-8000-000000000001'), 10.00::numeric, 'it takes back the whole credit (10.00)');
select results_eq($$ select status, refunded_subunits, charged_subunits from public.payments where reference = pg_temp.ref('fee_full') $$,
                  $$ values ('refunded'::text, 520, 520) $$, 'the payment is refunded');
select results_eq($$ select cost, credit from public.my_lots where user_id = '15000000-0000-4000-8000-000000000001' and kind = 'purchase' $$,
                  $$ values (0.00::numeric, 0.00::numeric) $$, 'the refunded lot holds nothing and cost nothing');
select is((select paid from public.my_account where user_id = '15000000-0000-4000-8000-000000000001'), 0.00::numeric,
          'nothing paid any more');
select results_eq($$ select * from pg_temp.refunds(pg_temp.ref('fee_half'), array[260]) $$, $$ values ('refunded'::text, true) $$,
                  'half of a fee-bearing charge (260 of 520)');
select results_eq($$ select l.credit, l.cost from public.my_lots l where l.user_id = '15000000-0000-4000-8000-000000000002' and l.kind = 'purchase' $$,
                  $$ values (5.00::numeric, 2.50::numeric) $$, 'takes back half the credit (5.00); the half kept cost half the price (2.50)');

-- ---------------------------------------------------------------- two equal refunds without references, lists out of order
select results_eq($$ select * from pg_temp.refunds(pg_temp.ref('equal'), array[250]) $$, $$ values ('refunded'::text, true) $$,
                  'a first refund of 250 of 500');
select results_eq($$ select * from pg_temp.refunds(pg_temp.ref('equal'), array[250, 250]) $$, $$ values ('refunded'::text, true) $$,
                  'a second, equal refund (its event carries no reference) is a second refund, not a duplicate');
select is(pg_temp.refunded('15000000-0000-4000-8000-000000000003'), 10.00::numeric, 'together they take back the whole credit');
select results_eq($$ select * from pg_temp.refunds(pg_temp.ref('equal'), array[250]) $$, $$ values ('duplicate'::text, false) $$,
                  'an older list seen late (one refund) takes nothing back and gives nothing back');
select results_eq($$ select * from pg_temp.refunds(pg_temp.ref('equal'), array[250, 250]) $$, $$ values ('duplicate'::text, false) $$,
                  'the same list again adds nothing');
select results_eq($$ select count(*)::int, sum(amount) from public.credit_ledger where user_id = '15000000-0000-4000-8000-000000000003' and kind = 'refund' $$,
                  $$ values (2, -10.00::numeric) $$, 'two rows, -10.00 in all');
select is((select refunded_subunits from public.payments where reference = pg_temp.ref('equal')), 500,
          'the payment keeps the largest processed total Paystack listed');

-- ---------------------------------------------------------------- rounding: the total is always the absolute
do $$ begin perform pg_temp.refunds(pg_temp.ref('thirds'), array[513]); end $$;
select is(pg_temp.refunded('15000000-0000-4000-8000-000000000004'), 9.99::numeric, '513 of 1540: 30 x 513 / 1540 = 9.99');
do $$ begin perform pg_temp.refunds(pg_temp.ref('thirds'), array[513, 513]); end $$;
select is(pg_temp.refunded('15000000-0000-4000-8000-000000000004'), 19.99::numeric, '1026 of 1540: 19.99 (not 9.99 + 9.99)');
do $$ begin perform pg_temp.refunds(pg_temp.ref('thirds'), array[513, 513, 514]); end $$;
select is(pg_temp.refunded('15000000-0000-4000-8000-000000000004'), 30.00::numeric, 'all 1540: exactly the 30.00 credit');

-- ---------------------------------------------------------------- a lost dispute, then a refund
do $$ begin perform private.apply_dispute(15051, pg_temp.ref('lost_first'), 'create', null); end $$;
select is((select blocked from private.apply_dispute(15051, pg_temp.ref('lost_first'), 'resolve', 'merchant-accepted')), false,
          'a lost dispute unblocks');
select results_eq($$ select kind, amount from public.credit_ledger where user_id = '15000000-0000-4000-8000-000000000005' and amount < 0 $$,
                  $$ values ('dispute_reversal'::text, -10.00::numeric) $$, 'and takes back the whole credit');
select results_eq($$ select * from pg_temp.refunds(pg_temp.ref('lost_first'), array[500]) $$, $$ values ('duplicate'::text, false) $$,
                  'a refund processed afterwards takes nothing more (capped at the credit)');
do $$ begin perform private.apply_dispute(15052, pg_temp.ref('lost_first'), 'resolve', 'auto-accepted'); end $$;
select is(pg_temp.granted('15000000-0000-4000-8000-000000000005'), 2.00::numeric, 'nor does a second lost dispute of the same payment');

-- ---------------------------------------------------------------- an unknown dispute action with two disputes open
do $$
begin
  perform private.apply_dispute(15061, pg_temp.ref('d1'), 'create', null);
  perform private.apply_dispute(15062, pg_temp.ref('d2'), 'create', null);
end
$$;
select is(pg_temp.blocked('15000000-0000-4000-8000-000000000006'), true, 'two disputes open: blocked');
create temp table t_unknown as
select * from private.apply_dispute(15061, pg_temp.ref('d1'), 'escalate', null,
                                    private.record_delivery('charge.dispute.escalate', pg_temp.ref('d1'), true, '{}'::jsonb, null, null));
select results_eq($$ select outcome, reason, blocked from t_unknown $$,
                  $$ values ('ignored'::text, 'unknown dispute action: escalate'::text, null::boolean) $$,
                  'an unknown action (charge.dispute.escalate) is ignored');
select results_eq($$ select outcome, reason from private.webhook_deliveries where id = (select max(id) from private.webhook_deliveries) $$,
                  $$ values ('ignored'::text, 'unknown dispute action: escalate'::text) $$, 'and recorded as such');
select results_eq($$ select id, status from private.disputes where id in (15061, 15062) order by id $$,
                  $$ values (15061::bigint, 'create'::text), (15062::bigint, 'create'::text) $$,
                  'it changed no dispute''s state');
select results_eq($$ select outcome, reason from private.apply_dispute(15061, pg_temp.ref('d1'), 'resolve', 'withdrawn') $$,
                  $$ values ('ignored'::text, 'unknown dispute resolution: withdrawn'::text) $$,
                  'a resolution we do not know is ignored too (a person decides)');
select is((select blocked from private.apply_dispute(15062, pg_temp.ref('d2'), 'resolve', 'declined')), true,
          'resolving the other dispute keeps the key blocked: the first is still open');
select is(pg_temp.blocked('15000000-0000-4000-8000-000000000006'), true, 'the key stays blocked');
select is((select blocked from private.apply_dispute(15061, pg_temp.ref('d1'), 'resolve', 'declined')), false,
          'resolving the last open one unblocks');

-- ---------------------------------------------------------------- events out of order
select is((select blocked from private.apply_dispute(15071, pg_temp.ref('late_create'), 'resolve', 'declined')), false,
          'a resolution that arrives before its dispute was opened blocks nothing');
select is((select blocked from private.apply_dispute(15071, pg_temp.ref('late_create'), 'create', null)), false,
          'the late create does not reopen it');
do $$ begin perform private.apply_dispute(15071, pg_temp.ref('late_create'), 'remind', null); end $$;
select results_eq($$ select status, resolution, is_open from private.disputes where id = 15071 $$,
                  $$ values ('resolve'::text, 'declined'::text, false) $$, 'nor does a late reminder: a resolution is final');
select is(pg_temp.blocked('15000000-0000-4000-8000-000000000007'), false, 'the key is not blocked');
select is((select status from public.payments where reference = pg_temp.ref('late_create')), 'credited', 'the payment is credited');

do $$ begin perform pg_temp.refunds(pg_temp.ref('late_lost'), array[300]); end $$; -- 6.00 of 30 taken back
select is((select blocked from private.apply_dispute(15081, pg_temp.ref('late_lost'), 'resolve', 'merchant-accepted')), false,
          'a lost dispute whose create comes later');
select results_eq($$ select kind, amount from public.credit_ledger where user_id = '15000000-0000-4000-8000-000000000008' and amount < 0 order by id $$,
                  $$ values ('refund'::text, -6.00::numeric), ('dispute_reversal'::text, -24.00::numeric) $$,
                  'takes back only what the refund had not (30 - 6 = 24)');
do $$
begin
  perform private.apply_dispute(15081, pg_temp.ref('late_lost'), 'create', null);
  perform private.apply_dispute(15081, pg_temp.ref('late_lost'), 'resolve', 'merchant-accepted');
end
$$;
select is(pg_temp.granted('15000000-0000-4000-8000-000000000008'), 2.00::numeric,
          'the late create and a replayed resolution take nothing more: exactly once');
select is(pg_temp.blocked('15000000-0000-4000-8000-000000000008'), false, 'and do not block the key');
select is((select status from public.payments where reference = pg_temp.ref('late_lost')), 'reversed', 'the payment is reversed');

select * from finish();
rollback;
