-- Close EXECUTE on the private functions. Postgres grants EXECUTE to PUBLIC on every new function, and
-- a per-schema ALTER DEFAULT PRIVILEGES cannot take that global grant away (a per-role one would, but it
-- would also lock the API roles out of functions other tools create later, pgTAP's included). So revoke
-- explicitly, here and in every later migration that adds a private function;
-- supabase/tests/database/01_catalog.sql fails if one is missed.
-- service_role keeps EXECUTE: public.admin_drift, which it reads, calls private.key_target_budget, and
-- function privileges are checked against the view's caller.
revoke execute on all functions in schema private from public, anon, authenticated;
grant execute on all functions in schema private to service_role;
