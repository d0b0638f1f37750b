-- Helpers shared by the pgTAP files (the layout of supabase/dbdev and basejump): created once, outside
-- the files' rolled-back transactions, in a schema of their own that migrations never touch. pg_prove runs
-- this file first (files run in name order) and it emits TAP like the others.
begin;
select plan(2);

create schema if not exists tests;

-- A purchase of a plan through the same SQL the webhook uses (create_checkout + apply_payment of a
-- verified, matching payment); fails loudly if it is not credited. Returns the reference.
create or replace function tests.buy(p_user uuid, p_plan text) returns text language plpgsql as $$
declare
  v_ref text;
  v_outcome text;
begin
  select c.reference into v_ref from private.create_checkout(p_user, p_plan) c;
  select r.outcome into v_outcome
    from public.plans pl, private.apply_payment(v_ref, 'success', pl.price_subunits, pl.price_subunits, pl.currency, 'test', 'test', 1, now()) r
   where pl.code = p_plan;
  if v_outcome is distinct from 'credited' then raise exception 'fixture: payment of % not credited (%)', p_plan, v_outcome; end if;
  return v_ref;
end
$$;

-- Paystack's list of a payment's refunds (GET /refund?transaction=<id>) as private.apply_refunds takes it:
-- one refund per amount, ids 1..n, all with p_status.
create or replace function tests.refund_list(p_reference text, p_amounts integer[], p_status text default 'processed')
returns jsonb language sql as $$
  select coalesce(jsonb_agg(jsonb_build_object('id', a.n, 'transaction', pm.provider_transaction_id, 'amount', a.amount,
                                               'currency', pm.currency, 'status', p_status) order by a.n), '[]'::jsonb)
    from public.payments pm, unnest(p_amounts) with ordinality as a(amount, n)
   where pm.provider = 'paystack' and pm.reference = p_reference
$$;

select has_function('tests', 'buy', array['uuid', 'text'], 'tests.buy exists for the other files');
select has_function('tests', 'refund_list', array['text', 'integer[]', 'text'], 'tests.refund_list exists for the other files');
select * from finish();
commit;
