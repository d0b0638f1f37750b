-- STACK_GRANTS=legacy: the default privileges of Supabase projects created before the 2026 change
-- ("tables not exposed to the Data API automatically"). Their init script, run as postgres, made every
-- new table, view, sequence and function in public fully granted to the API roles, and the same for
-- objects supabase_admin creates there. Applied before our migrations, it proves they expose nothing
-- they do not grant explicitly (supabase/tests/database/15_hosted_roles.sql holds the allow-list).
-- Runs as postgres. Sources: docs/architecture.md, "Hosted roles".
alter default privileges in schema public grant all on tables to postgres, anon, authenticated, service_role;
alter default privileges in schema public grant all on functions to postgres, anon, authenticated, service_role;
alter default privileges in schema public grant all on sequences to postgres, anon, authenticated, service_role;
