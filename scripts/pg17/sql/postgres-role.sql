-- Hosted Supabase's order (supabase/postgres migrations/db/migrate.sh): the bootstrap superuser is
-- supabase_admin; it creates postgres as a superuser that owns the database, postgres runs the platform's
-- init scripts (here stack/platform/sql, so postgres owns what they create), then postgres is demoted
-- (demote-postgres.sql). Run as supabase_admin.
create role postgres superuser login;
alter database postgres owner to postgres;
