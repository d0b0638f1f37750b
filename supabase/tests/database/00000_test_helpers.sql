-- Helpers shared by the pgTAP files (the layout of supabase/dbdev and basejump): created once, outside
-- the files' rolled-back transactions, in a schema of their own that migrations never touch. pg_prove runs
-- this file first (files run in name order) and it emits TAP like the others.
begin;
select plan(5);

create schema if not exists tests;

-- A purchase of a plan through the same SQL the webhook uses (create_checkout + apply_payment of a
-- verified, matching payment); fails loudly if it is not credited. Returns the reference.
create or replace function tests.buy(p_user uuid, p_plan text) returns text language plpgsql set search_path = '' as $$
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

-- p_count users with ids <p_id_prefix><n as 12 digits> (p_id_prefix like '16000000-0000-4000-8000-'), each
-- with its email confirmed (so the sign-up credit is granted) and its key provisioned at its target, as
-- provision-key would leave them.
create or replace function tests.active_users(p_id_prefix text, p_count integer) returns void language plpgsql as $$
begin
  insert into auth.users (id, email, aud, role, email_confirmed_at)
  select (p_id_prefix || lpad(n::text, 12, '0'))::uuid, 'u' || n || '-' || p_id_prefix || '@pgtap.test', 'authenticated', 'authenticated', now()
    from generate_series(1, p_count) n;
  perform private.complete_provisioning(j.id, 1, private.key_target_budget(j.key_id))
     from private.provisioning_jobs j where j.user_id::text like p_id_prefix || '%';
end
$$;

-- Rotates the user's key through the SQL steps rotate-key runs, up to the old key retired with p_spend
-- (p_finish: on to done, the new key confirmed at its target). Returns the rotation id.
create or replace function tests.rotate(p_user uuid, p_spend numeric, p_finish boolean default true) returns bigint language plpgsql as $$
declare
  v_id bigint;
begin
  select r.rotation_id into v_id from private.start_key_rotation(p_user, 'pgtap') r;
  perform private.rotation_block_intent(v_id);
  perform private.rotation_old_blocked(v_id);
  perform private.rotation_retire_old(v_id, p_spend);
  if p_finish then
    perform private.rotation_new_key_active(v_id, (select private.key_target_budget(r.new_key_id) from private.key_rotations r where r.id = v_id));
    perform private.rotation_finish(v_id);
  end if;
  return v_id;
end
$$;

-- Known vault secrets for a test that checks what pg_net is asked to send (the stack's own come back with
-- the file's rollback): project_url https://project.pgtap.test/, cron_secret pgtap-cron-secret-0123456789.
create or replace function tests.use_test_vault_secrets() returns void language plpgsql as $$
begin
  delete from vault.secrets where name in ('project_url', 'cron_secret');
  perform vault.create_secret('https://project.pgtap.test/', 'project_url');
  perform vault.create_secret('pgtap-cron-secret-0123456789', 'cron_secret');
end
$$;

select has_function('tests', 'buy', array['uuid', 'text'], 'tests.buy exists for the other files');
select has_function('tests', 'active_users', array['text', 'integer'], 'tests.active_users exists for the other files');
select has_function('tests', 'rotate', array['uuid', 'numeric', 'boolean'], 'tests.rotate exists for the other files');
select has_function('tests', 'refund_list', array['text', 'integer[]', 'text'], 'tests.refund_list exists for the other files');
select has_function('tests', 'use_test_vault_secrets', 'tests.use_test_vault_secrets exists for the other files');
select * from finish();
commit;
