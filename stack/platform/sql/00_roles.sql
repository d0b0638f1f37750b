-- Stand-in for hosted Supabase's roles (supabase/postgres: migrations/db/init-scripts and migrations).
-- Runs as supabase_admin, the cluster's bootstrap superuser (as on hosted). Not deployed.
-- The facts and their sources: docs/architecture.md, "Hosted roles".
do $$
begin
  -- postgres: what hosted leaves it after "demote postgres" (not a superuser).
  if not exists (select 1 from pg_roles where rolname = 'postgres') then
    create role postgres login password 'postgres' nosuperuser createdb createrole replication bypassrls;
  end if;
  -- The API roles. Hosted made them INHERIT in 2023 (alter_api_roles_for_inherit).
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin inherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin inherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin inherit bypassrls;
  end if;
  -- PostgREST logs in as authenticator and switches to one of the API roles per request.
  if not exists (select 1 from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit password 'authenticator';
  end if;
  -- GoTrue's role: owns the auth schema (10_auth.sql).
  if not exists (select 1 from pg_roles where rolname = 'supabase_auth_admin') then
    create role supabase_auth_admin login noinherit nocreaterole noreplication password 'supabase_auth_admin';
  end if;
end
$$;

grant anon, authenticated, service_role to authenticator;
-- Predefined roles hosted grants postgres (2023 and 2024 migrations).
grant pg_read_all_data, pg_signal_backend, pg_monitor to postgres;
-- Postgres 16+ projects: postgres may grant the API roles on (with admin option).
grant anon, authenticated, service_role to postgres with admin option;

-- The project database belongs to postgres; on Postgres 15+ so does schema public (owned by
-- pg_database_owner), which keeps no CREATE for PUBLIC.
alter database postgres owner to postgres;
revoke create on schema public from public;
grant usage on schema public to anon, authenticated, service_role;

-- No default privileges in public: hosted projects created since May 30, 2026 grant new public objects to
-- nobody (STACK_GRANTS=legacy adds the older projects' grants, stack/platform/legacy-default-grants.sql).

-- Schema extensions is postgres's (hosted's init scripts ran as postgres); the extensions in it are
-- created by supabase_admin, and postgres gets everything on their objects, with grant option.
create schema if not exists extensions authorization postgres;
grant usage on schema extensions to anon, authenticated, service_role;
alter default privileges in schema extensions grant all on tables to postgres with grant option;
alter default privileges in schema extensions grant all on routines to postgres with grant option;
alter default privileges in schema extensions grant all on sequences to postgres with grant option;

-- Unqualified names resolve through public, then extensions (pgTAP lives there).
alter database postgres set search_path to "$user", public, extensions;
