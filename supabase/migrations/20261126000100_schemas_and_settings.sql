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

-- One setting a line: key, value (jsonb), description; a description that does not fit goes on in the
-- indented lines below it. The -- lines name the migration that reads the settings below them.
insert into private.settings (key, value, description)
select f[1], f[2]::jsonb, f[3]
  from (select regexp_match(string_agg(btrim(l.line), ' ' order by l.n), '^(\S+)\s+(\S+)\s+(.*)$') as f
          from (select t.line, t.n, count(*) filter (where t.line !~ '^\s') over (order by t.n) as setting
                  from regexp_split_to_table($settings$
signup_grant_usd                         2.00      credit granted to every new user
key_rpm_limit                            100       requests per minute of a new LiteLLM key
key_tpm_limit                            10000     tokens per minute of a new LiteLLM key
provision_max_attempts                   8         attempts before a provisioning job is dead
provision_backoff_base_seconds           5         first retry delay; doubles per attempt, with jitter
provision_backoff_cap_seconds            900       longest retry delay
reconcile_interval_seconds               60        how often each chunk is due (pg_cron runs every minute)
reconcile_chunks_per_invocation          10        chunks (of 1000 keys) one reconcile-spend invocation may take (2 s
                                                   CPU limit)
-- 20261126000900 (key rotation)
rotation_settle_seconds                  20        seconds between blocking the old key and reading its final spend; set
                                                   to LiteLLM's PROXY_BATCH_WRITE_AT + 6
rotation_max_inline_wait_seconds         30        rotate-key waits this long for the settle time itself; longer waits
                                                   are finished by ops-sweep
rotation_lease_seconds                   120       how long one run owns a rotation (a run that dies frees it after
                                                   this)
rotation_user_min_interval_seconds       60        a user may start a rotation at most this often (admins are not
                                                   limited)
rotation_backoff_base_seconds            30        first retry delay of a failed rotation step (ops-sweep); doubles per
                                                   attempt
rotation_backoff_cap_seconds             900       longest retry delay of a failed rotation
-- 20261126001000 (low balance alerts)
alert_max_attempts                       10        delivery attempts of one alert before it is given up (failed)
alert_backoff_base_seconds               30        first retry delay of an undelivered alert; doubles per attempt
alert_backoff_cap_seconds                3600      longest retry delay of an undelivered alert
alert_batch_size                         20        alerts one function run delivers at most
reconcile_stale_seconds                  180       the health check fails when the last successful reconcile is older
                                                   than this
-- 20261126001100 (admin operations)
admin_adjust_max_usd                     1000      largest credit grant or deduction one admin command may make
-- 20261202000320 (rotation in flight)
retired_key_settle_seconds               900       a retired key is reconciled (late spend charged) until its LiteLLM
                                                   spend has not moved for this long, then deleted: a 600 s request
                                                   (LiteLLM request_timeout) + PROXY_BATCH_WRITE_AT (60) + a reconcile
                                                   cycle (60) + margin
-- 20261202000400 (signup grant on confirmation)
signup_grant_requires_confirmation       true      the sign-up grant waits until the user confirms their email address
                                                   (auth.users.email_confirmed_at); false grants at sign-up
-- 20261202000410 (checkout rate limits)
checkout_window_seconds                  600       length of the checkout rate-limit window
checkout_user_limit                      10        checkout requests one user may make per window
checkout_ip_limit                        30        checkout requests from one client IP per window (offices and mobile
                                                   carriers share addresses)
checkout_max_open_per_user               5         unpaid checkouts (created or initialized) one user may hold; only
                                                   those younger than checkout_open_ttl_seconds count
checkout_open_ttl_seconds                3600      an unpaid checkout older than this no longer counts as open for the
                                                   cap
-- 20261202000420 (rejected webhook posts)
webhook_rejected_max_rows                10000     rejected webhook posts kept (hash, size, time, reason); the oldest
                                                   beyond this are dropped
-- 20261202000510 (recreate missing keys)
recreate_missing_keys_automatically      false     true: reconcile-spend re-creates keys deleted on LiteLLM (same key
                                                   value, alias and budget) as soon as it finds them; false: they stay
                                                   flagged deleted_externally for `npm run admin -- recreate`
-- 20261202000600 (currencies and prices)
merchant_name                            "litellm-credits" the seller's name printed on receipts (npm run admin --
                                                   merchant-name set "...")
-- 20261202000720 (auto top-up)
auto_topup_max_failures                  2         consecutive failed auto top-up charges that switch auto top-up off
auto_topup_batch_size                    20        auto top-up attempts one auto-topup run charges or verifies
auto_topup_lease_seconds                 120       how long a run holds an attempt before another may pick it up (verify
                                                   only)
auto_topup_verify_max_tries              8         verifies of a pending auto top-up charge before it is recorded failed
auto_topup_backoff_base_seconds          30        first wait before verifying a pending auto top-up charge again
auto_topup_backoff_cap_seconds           3600      longest wait between verifies of a pending auto top-up charge
-- 20261202000740 (notification events)
notification_email_max_attempts          8         send attempts of one notification email before it is given up
                                                   (failed)
notification_email_backoff_base_seconds  30        first retry delay of an unsent notification email; doubles per
                                                   attempt
notification_email_backoff_cap_seconds   3600      longest retry delay of an unsent notification email
notification_email_batch_size            20        notification emails one send-notifications run sends at most
notification_kick_join_seconds           1         a new notification email joins a send-notifications call queued less
                                                   than this long ago instead of queuing its own
-- 20261202000800 (usage by model)
usage_pull_days                          2         UTC days usage-pull keeps pulling, today included (older days no
                                                   longer change on LiteLLM)
usage_pull_interval_seconds              300       a day is pulled again this long after its last pull started
usage_pull_pages_per_invocation          5         pages (up to 1000 LiteLLM daily rows, about 1.4 MB, each) one
                                                   usage-pull invocation reads: about 120 ms CPU per page (2 s CPU
                                                   limit)
usage_request_retention_days             7         request ids of the callback are remembered this long (a request
                                                   delivered twice counts once)
usage_other_tolerance_usd                0.000001  a key whose spend differs from the sum of its models by more than
                                                   this is listed in admin_usage_gaps
-- 20261202000900 (promo credit)
promo_redeem_limit                       10        promo code redemption attempts one user may make per window
promo_redeem_window_seconds              600       length of the promo redemption rate-limit window
promo_max_usd                            500       the largest amount a promo code may grant
-- 20261202001010 (retention)
retention_snapshot_full_days             2         spend snapshots older than this are thinned to the last one per key
                                                   and UTC day (daily usage is unchanged)
retention_webhook_accepted_days          30        accepted webhook deliveries (credited, duplicate, ignored, refunded,
                                                   dispute) are deleted after this many days
retention_webhook_other_days             90        other webhook deliveries (rejected, error, received) are deleted
                                                   after this many days; a disputed payment's never
retention_reconcile_runs_days            14        reconcile runs are deleted after this many days (the newest
                                                   successful one stays)
retention_repairs_days                   90        budget and block repairs are deleted after this many days (each key's
                                                   newest stays)
retention_prune_batch                    20000     rows one prune run deletes at most per table
$settings$, '\n') with ordinality as t(line, n)
                 where t.line !~ '^\s*(--.*)?$') l
         group by l.setting) s
on conflict (key) do nothing;

create function private.setting(p_key text) returns jsonb
language sql stable security definer set search_path = '' as $$
  select value from private.settings where key = p_key
$$;

create function private.setting_numeric(p_key text) returns numeric
language sql stable security definer set search_path = '' as $$
  select (value #>> '{}')::numeric from private.settings where key = p_key
$$;

-- How long to wait after attempt p_attempts (1, 2, ...) of a retrying queue before the next one: the
-- settings <p_queue>_backoff_base_seconds, doubled per attempt, at most <p_queue>_backoff_cap_seconds.
-- Shared by provisioning, rotation, alerts, auto top-up verifies and notification emails.
create function private.backoff(p_queue text, p_attempts integer) returns interval
language sql stable security definer set search_path = '' as $$
  select make_interval(secs => least(private.setting_numeric(p_queue || '_backoff_cap_seconds'),
                                     private.setting_numeric(p_queue || '_backoff_base_seconds')
                                       * power(2, greatest(p_attempts, 1) - 1))::double precision)
$$;
