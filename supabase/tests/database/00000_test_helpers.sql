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
    from public.plans pl, private.apply_payment(v_ref, 'success', pl.price_subunits, null, pl.currency, 'test', 'test', 1, now()) r
   where pl.code = p_plan;
  if v_outcome is distinct from 'credited' then raise exception 'fixture: payment of % not credited (%)', p_plan, v_outcome; end if;
  return v_ref;
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
select has_function('tests', 'use_test_vault_secrets', 'tests.use_test_vault_secrets exists for the other files');
select * from finish();
commit;
