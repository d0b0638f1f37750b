-- Stand-in for hosted Supabase's API roles (supabase/postgres init-scripts). Not deployed.
do $$
begin
  if not exists (select 1 from pg_roles where rolname = 'anon') then
    create role anon nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticated') then
    create role authenticated nologin noinherit;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'service_role') then
    create role service_role nologin noinherit bypassrls;
  end if;
  if not exists (select 1 from pg_roles where rolname = 'authenticator') then
    create role authenticator login noinherit password 'authenticator';
  end if;
  if not exists (select 1 from pg_roles where rolname = 'supabase_admin') then
    create role supabase_admin login superuser;
  end if;
end
$$;

grant anon, authenticated, service_role to authenticator;
grant anon, authenticated, service_role to postgres;

-- Hosted projects revoke the default PUBLIC create on public and grant usage to the API roles.
revoke create on schema public from public;
grant usage on schema public to anon, authenticated, service_role;

-- Hosted Supabase stopped auto-granting new public tables to the API roles (2026): we mirror that by
-- adding no default privileges here, so migrations must grant explicitly.

create schema if not exists extensions;
grant usage on schema extensions to anon, authenticated, service_role;
create extension if not exists pgcrypto with schema extensions;

-- Hosted projects resolve unqualified names through public, then extensions (pgTAP lives there).
alter database postgres set search_path to "$user", public, extensions;
