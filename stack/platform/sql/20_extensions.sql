-- Supabase pre-installs vault; pg_net and pg_cron are created by our migrations (as on hosted).
-- `with schema vault` needs the schema to exist first (CREATE EXTENSION only creates the control file's
-- schema when no WITH SCHEMA is given).
create schema if not exists vault;
create extension if not exists supabase_vault with schema vault;
