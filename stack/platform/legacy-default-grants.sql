-- STACK_GRANTS=legacy: the default privileges of Supabase projects created before May 30, 2026 (when
-- new public tables stopped being exposed to the Data API automatically). Their init script, run as
-- postgres, grants every new table, view, sequence and function in public fully to the API roles (and
-- did the same for supabase_admin's objects there; the platform creates none in public here). Applied
-- before our migrations, it proves they expose nothing they do not grant explicitly
-- (supabase/tests/database/16_hosted_roles.sql holds the allow-lists).
-- Runs as postgres. Sources: docs/architecture.md, "Hosted roles".
alter default privileges in schema public grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to postgres, anon, authenticated, service_role;
