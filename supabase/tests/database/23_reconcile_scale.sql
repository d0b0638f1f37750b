-- Reconcile at scale (issue 18; migrations 20261126000500, 20261126001000, 20261202000500): the last chunk
-- from the seq index, chunk rows created when a new chunk appears, the low-balance trigger's changed-key set
-- (EXCEPT) in a many-row update, and offsets applied by record_spend_batch only where a key of the chunk has
-- one.
begin;
select plan(12);

select tests.active_users('23100000-0000-4000-8000-', 3);
select is(private.last_reconcile_chunk(), (select max(reconcile_chunk) from public.api_keys),
          'the last chunk is max(reconcile_chunk), read from the seq index');
select is(private.audit_last_chunk(), private.last_reconcile_chunk(), 'audit reads the same last chunk');

-- A key in a chunk beyond every chunk row: the next claim creates the rows up to it.
insert into auth.users (id, email, aud, role, email_confirmed_at)
values ('23100000-0000-4000-8000-000000000009', 'scale-9@pgtap.test', 'authenticated', 'authenticated', now());
update public.api_keys set status = 'active'
 where user_id = '23100000-0000-4000-8000-000000000009';
-- seq is an identity: the next key lands one chunk further when seq jumps by 1000
do $$ begin perform setval(pg_get_serial_sequence('public.api_keys', 'seq'), (select max(seq) + 1000 from public.api_keys)); end $$;
insert into auth.users (id, email, aud, role, email_confirmed_at)
values ('23100000-0000-4000-8000-000000000010', 'scale-10@pgtap.test', 'authenticated', 'authenticated', now());
create temp table t_claim as select * from private.claim_reconcile_chunks(1000, 120, true);
select is((select max(chunk) from public.reconcile_chunks), private.last_reconcile_chunk(),
          'a claim creates the chunk rows up to the last chunk');
select is((select count(*)::int from public.reconcile_chunks), private.last_reconcile_chunk() + 1, 'densely, from 0');
update public.reconcile_chunks set lease_until = null;

-- ---------------------------------------------------------------- one read per chunk per cycle
-- Every chunk is due (finished an hour ago); chunk 0 alone finished after this cycle's kick.
update public.reconcile_chunks set last_finished_at = now() - interval '1 hour';
update public.reconcile_chunks set last_finished_at = now() - interval '10 minutes' where chunk = 0;
select is((select count(*)::int from private.claim_reconcile_chunks(1000, 120, false, null, now() - interval '20 minutes')),
          private.last_reconcile_chunk(),
          'a claim in a cycle skips the chunk finished since its kick (a cycle longer than the interval reads no chunk twice)');
select ok(not exists (select 1 from public.reconcile_chunks where chunk = 0 and lease_until is not null),
          '(chunk 0 is left unclaimed)');
update public.reconcile_chunks set lease_until = null;
select is((select count(*)::int from private.claim_reconcile_chunks(1000, 120, false, null, now())),
          private.last_reconcile_chunk() + 1, 'the next kick takes it with the others');
update public.reconcile_chunks set lease_until = null;

-- ---------------------------------------------------------------- low balance over a many-row update
-- Users 2 and 3 hold an open 20 % event although their balance is full: evaluating a user re-arms it, so
-- whether it is still open says whether the trigger evaluated that user.
insert into private.alert_events (user_id, level, granted, spent, remaining)
select u, 20, 2, 1.7, 0.3 from unnest(array['23100000-0000-4000-8000-000000000002', '23100000-0000-4000-8000-000000000003']::uuid[]) u;
-- one statement over the three users: user 1 falls below 5 %, user 2 spends a little, user 3 nothing moves
update public.api_keys k set spend = v.spend, spend_observed_at = now()
  from (values ('23100000-0000-4000-8000-000000000001'::uuid, 1.95::numeric), ('23100000-0000-4000-8000-000000000002', 0.10),
               ('23100000-0000-4000-8000-000000000003', 0)) v(user_id, spend)
 where k.user_id = v.user_id and k.status = 'active';
select results_eq(
  $$ select e.user_id::text, e.level, e.rearmed_at is null from private.alert_events e where e.user_id::text like '23100000-%'
      order by e.user_id, e.level $$,
  $$ values ('23100000-0000-4000-8000-000000000001', 5, true), ('23100000-0000-4000-8000-000000000001', 20, true),
            ('23100000-0000-4000-8000-000000000002', 20, false), ('23100000-0000-4000-8000-000000000003', 20, true) $$,
  'a many-row spend update evaluates exactly the users whose spend moved (1 fires, 2 re-armed, 3 untouched)'
);
update public.api_keys set spend_observed_at = now() where user_id::text like '23100000-%';
select is((select count(*)::int from private.alert_events where user_id::text like '23100000-%' and rearmed_at is null), 3,
          'an update that moves no spend evaluates nobody');

-- ---------------------------------------------------------------- offsets per chunk
create temp table t_k2 as select k.id, k.key_token, k.reconcile_chunk from public.api_keys k
 where k.user_id = '23100000-0000-4000-8000-000000000002' and k.status = 'active';
select is((private.record_spend_batch((select reconcile_chunk from t_k2),
            jsonb_build_array(jsonb_build_object('token', (select key_token from t_k2), 'spend', 0.25, 'max_budget', 2, 'blocked', false)))
          ->> 'snapshots')::int, 1, 'without an offset in the chunk, the reported spend is recorded as it is');
select is((select spend from public.api_keys where id = (select id from t_k2)), 0.25::numeric, '(0.25)');
update public.api_keys set spend_offset = 1 where id = (select id from t_k2);
do $$ begin
  perform private.record_spend_batch((select reconcile_chunk from t_k2),
            jsonb_build_array(jsonb_build_object('token', (select key_token from t_k2), 'spend', 0.30, 'max_budget', 1, 'blocked', false)));
end $$;
select is((select spend from public.api_keys where id = (select id from t_k2)), 1.30::numeric,
          'with an offset in the chunk, it is added (offset 1 + reported 0.30)');

select * from finish();
rollback;
