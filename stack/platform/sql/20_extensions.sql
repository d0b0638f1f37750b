-- The extensions our migrations use, created by supabase_admin with hosted's grants. Not deployed.
-- Hosted lets postgres run CREATE EXTENSION for an allow-listed set through supautils, which
-- switches to supabase_admin and then runs per-extension "after-create" grants. Debian has no
-- supautils, so the platform creates them here first and the migrations' `create extension if not
-- exists` find them in place (a no-op, checked before any privilege). Sources: docs/architecture.md,
-- "Hosted roles".

-- Hosted's event triggers grant_pg_net_access and grant_pg_cron_access, here as one trigger after
-- CREATE EXTENSION:
-- * pg_net: create supabase_functions_admin; postgres, the API roles and it get USAGE on schema net.
-- * pg_cron: postgres gets the cron schema, its functions and tables with grant option, except that
--   cron.job is read-only for postgres (jobs change only through cron.schedule / alter_job / unschedule)
--   and cron.job_run_details takes no triggers.
create or replace function extensions.grant_extension_access() returns event_trigger language plpgsql as $$
declare
  v_created text[] := array(select e.extname::text from pg_event_trigger_ddl_commands() c
                             join pg_extension e on e.oid = c.objid);
begin
  if 'pg_net' = any(v_created) then
    if not exists (select 1 from pg_roles where rolname = 'supabase_functions_admin') then
      create role supabase_functions_admin login noinherit createrole noreplication;
    end if;
    grant usage on schema net to supabase_functions_admin, postgres, anon, authenticated, service_role;
  end if;
  if 'pg_cron' = any(v_created) then
    grant usage on schema cron to postgres with grant option;
    grant all on all functions in schema cron to postgres with grant option;
    grant all on all tables in schema cron to postgres with grant option;
    grant all on all sequences in schema cron to postgres with grant option;
    alter default privileges in schema cron grant all on tables to postgres with grant option;
    alter default privileges in schema cron grant all on functions to postgres with grant option;
    alter default privileges in schema cron grant all on sequences to postgres with grant option;
    revoke all on table cron.job from postgres;
    grant select on table cron.job to postgres with grant option;
    revoke trigger on cron.job_run_details from postgres;
  end if;
end
$$;
drop event trigger if exists issue_extension_access;
create event trigger issue_extension_access on ddl_command_end when tag in ('CREATE EXTENSION')
  execute function extensions.grant_extension_access();

create extension if not exists pgcrypto with schema extensions;

-- Vault is pre-installed on hosted. `with schema vault` needs the schema first (CREATE EXTENSION only
-- creates the control file's schema when no WITH SCHEMA is given).
create schema if not exists vault;
create extension if not exists supabase_vault with schema vault;
-- Hosted's after-create grants for supabase_vault: postgres reads and deletes secrets and creates or
-- updates them through the functions. The stand-in's decrypted_secrets calls vault._key() where the real
-- one calls vault._crypto_aead_det_decrypt, which hosted grants to postgres as well.
grant usage on schema vault to postgres with grant option;
grant select, delete on vault.secrets, vault.decrypted_secrets to postgres with grant option;
grant execute on function vault.create_secret(text, text, text, uuid), vault.update_secret(uuid, text, text, text, uuid)
  to postgres with grant option;
grant execute on function vault._key() to postgres with grant option;
-- The stand-in's key comes from pg_control_system(), which only superusers may call: the key function
-- runs as its owner (supabase_admin), like pgsodium's server key that no project role can read.
alter function vault._key() security definer set search_path = '';

create extension if not exists pg_net with schema extensions;
-- The stand-in's install script predates pg_net 0.12, whose script makes http_get/http_post/http_delete
-- SECURITY INVOKER and grants the schema, its tables and sequences and (by default) its functions to
-- PUBLIC; hosted runs 0.12+ with exactly those grants (its 2025 "pg_net perms fix" migration).
alter function net.http_get(text, jsonb, jsonb, integer) security invoker;
alter function net.http_post(text, jsonb, jsonb, jsonb, integer) security invoker;
alter function net.http_delete(text, jsonb, jsonb, integer) security invoker;
grant execute on all functions in schema net to public;
grant usage on schema net to public;
grant all on all tables in schema net to public;
grant all on all sequences in schema net to public;

-- Hosted's Cron module installs pg_cron in pg_catalog (its schema `cron` holds the jobs).
create extension if not exists pg_cron with schema pg_catalog;

-- pgTAP (supabase test db) and plpgsql_check (supabase db lint) in extensions, never in public;
-- plpgsql_check where the server ships it (the stack's preflight requires it; an embedded Postgres may not).
create extension if not exists pgtap with schema extensions;
do $$
begin
  if exists (select 1 from pg_available_extensions where name = 'plpgsql_check') then
    create extension if not exists plpgsql_check with schema extensions;
  end if;
end
$$;
