-- Schemas, extensions and runtime settings.
-- private: internal tables and security-definer functions, never exposed through the API.
create extension if not exists pg_net with schema extensions;
create extension if not exists pg_cron with schema pg_catalog;

create schema if not exists private;
revoke all on schema private from public, anon, authenticated;
grant usage on schema private to service_role;

-- Tunables read by SQL and by the functions (one place, changeable without a deploy).
create table private.settings (
  key text primary key,
  value jsonb not null,
  description text not null default ''
);

insert into private.settings (key, value, description) values
  ('signup_grant_usd', '2.00', 'credit granted to every new user'),
  ('key_rpm_limit', '100', 'requests per minute of a new LiteLLM key'),
  ('key_tpm_limit', '10000', 'tokens per minute of a new LiteLLM key'),
  ('provision_max_attempts', '8', 'attempts before a provisioning job is dead'),
  ('provision_backoff_base_seconds', '5', 'first retry delay; doubles per attempt, with jitter'),
  ('provision_backoff_cap_seconds', '900', 'longest retry delay'),
  ('reconcile_interval_seconds', '60', 'how often each chunk is due (pg_cron runs every minute)'),
  ('reconcile_chunks_per_invocation', '10', 'chunks (of 1000 keys) one reconcile-spend invocation may take (2 s CPU limit)')
on conflict (key) do nothing;

create function private.setting(p_key text) returns jsonb
language sql stable security definer set search_path = '' as $$
  select value from private.settings where key = p_key
$$;

create function private.setting_numeric(p_key text) returns numeric
language sql stable security definer set search_path = '' as $$
  select (value #>> '{}')::numeric from private.settings where key = p_key
$$;
