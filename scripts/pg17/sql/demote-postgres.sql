-- supabase/postgres migration 10000000000000_demote-postgres.sql and the later grants of predefined roles:
-- postgres keeps everything it created but is no superuser. Run as supabase_admin.
alter role postgres nosuperuser createdb createrole login replication bypassrls;
grant pg_read_all_data, pg_signal_backend, pg_monitor to postgres;
