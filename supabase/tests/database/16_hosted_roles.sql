-- Hosted Supabase's roles and grants, and what our migrations expose through them (docs/architecture.md,
-- "Hosted roles"). npm test runs this suite twice: on a cluster with today's grants and on one with
-- the legacy default privileges in public (STACK_GRANTS=legacy), and the allow-lists below must hold on
-- both. The last assertions are Supabase's security lints (supabase/splinter) that apply to us.
begin;
select plan(25);

-- Roles -------------------------------------------------------------------------------------------
select ok(not (select rolsuper from pg_roles where rolname = current_user),
          'the tests run as a role that is not a superuser');
select results_eq(
  $$ select rolsuper, rolcreaterole, rolcreatedb, rolreplication, rolbypassrls, rolcanlogin
       from pg_roles where rolname = 'postgres' $$,
  $$ values (false, true, true, true, true, true) $$,
  'postgres is NOSUPERUSER with CREATEROLE CREATEDB REPLICATION BYPASSRLS LOGIN, as on hosted'
);
select results_eq(
  $$ select rolname::text collate "default" from pg_roles where rolsuper order by 1 $$,
  $$ values ('supabase_admin') $$,
  'supabase_admin is the only superuser'
);
select set_eq(
  $$ select r.rolname::text collate "default" from pg_auth_members m join pg_roles r on r.oid = m.roleid
      where m.member = 'postgres'::regrole and m.admin_option $$,
  $$ values ('anon'), ('authenticated'), ('service_role') $$,
  'postgres holds anon, authenticated and service_role with admin option'
);
select results_eq(
  $$ select pg_get_userbyid(datdba)::text collate "default" from pg_database where datname = current_database() $$,
  $$ values ('postgres') $$,
  'postgres owns the database'
);
select set_eq(
  $$ select nspname::text collate "default", pg_get_userbyid(nspowner)::text collate "default" from pg_namespace
      where nspname in ('public', 'extensions', 'auth') $$,
  $$ values ('public', 'pg_database_owner'), ('extensions', 'postgres'), ('auth', 'supabase_auth_admin') $$,
  'public belongs to the database owner, extensions to postgres, auth to supabase_auth_admin'
);
select ok(not has_schema_privilege('postgres', 'auth', 'CREATE') and has_table_privilege('postgres', 'auth.users', 'INSERT'),
          'postgres may write auth tables but not create in schema auth');

-- Exposure: the allow-lists. Names are rendered through regclass / regprocedure on both sides. --------
select set_eq(
  $$ select r.rolname, c.oid::regclass::text, pv.priv
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      cross join (values ('anon'), ('authenticated'), ('service_role')) r(rolname)
      cross join (values ('SELECT'), ('INSERT'), ('UPDATE'), ('DELETE'), ('TRUNCATE'), ('REFERENCES'), ('TRIGGER')) pv(priv)
      where n.nspname in ('public', 'private') and c.relkind in ('r', 'p', 'v', 'm', 'f')
        and has_table_privilege(r.rolname, c.oid, pv.priv) $$,
  $$ select r, t::regclass::text, 'SELECT' from (values
       ('anon', 'public.plans'), ('anon', 'public.currencies'), ('anon', 'public.plan_prices'),
       ('anon', 'public.prices'), ('authenticated', 'public.currencies'), ('authenticated', 'public.plan_prices'),
       ('authenticated', 'public.prices'),
       ('authenticated', 'public.my_currency'), ('authenticated', 'public.my_receipts'),
       ('service_role', 'public.currencies'), ('service_role', 'public.plan_prices'), ('service_role', 'public.prices'),
       ('service_role', 'public.my_currency'), ('service_role', 'public.my_receipts'),
       ('authenticated', 'public.plans'), ('authenticated', 'public.profiles'), ('authenticated', 'public.payments'),
       ('authenticated', 'public.credit_ledger'), ('authenticated', 'public.api_keys'), ('authenticated', 'public.checkouts'),
       ('authenticated', 'public.spend_snapshots'), ('authenticated', 'public.my_lots'), ('authenticated', 'public.my_account'),
       ('authenticated', 'public.my_key'), ('authenticated', 'public.my_payments'), ('authenticated', 'public.my_daily_usage'),
       ('service_role', 'public.plans'), ('service_role', 'public.profiles'), ('service_role', 'public.payments'),
       ('service_role', 'public.credit_ledger'), ('service_role', 'public.api_keys'), ('service_role', 'public.checkouts'),
       ('service_role', 'public.spend_snapshots'), ('service_role', 'public.reconcile_chunks'),
       ('service_role', 'public.my_lots'), ('service_role', 'public.my_account'), ('service_role', 'public.my_key'),
       ('service_role', 'public.my_payments'), ('service_role', 'public.my_daily_usage'),
       ('service_role', 'public.admin_sync_failures'), ('service_role', 'public.admin_drift'),
       ('service_role', 'public.admin_dead_jobs'), ('service_role', 'public.admin_rejected_deliveries'), ('service_role', 'public.admin_spend_resets'), ('service_role', 'public.admin_litellm_repairs'),
       ('service_role', 'public.admin_key_rotations'), ('service_role', 'public.admin_alerts'),
       ('service_role', 'private.key_rotations'), ('service_role', 'private.alert_events'),
       -- notifications (20261202000700)
       ('authenticated', 'public.notifications'), ('authenticated', 'public.my_notifications'),
       ('service_role', 'public.notifications'), ('service_role', 'public.my_notifications'),
       -- usage by model (20261202000800)
       ('authenticated', 'public.usage_by_model'), ('authenticated', 'public.usage_counted'),
       ('authenticated', 'public.usage_gaps'), ('authenticated', 'public.my_usage_by_model'),
       ('service_role', 'public.usage_by_model'), ('service_role', 'public.usage_counted'),
       ('service_role', 'public.usage_gaps'), ('service_role', 'public.my_usage_by_model'),
       ('service_role', 'public.admin_usage_gaps'),
       -- saved cards and auto top-up (20261202000710, 20261202000720); the user also removes them (DELETE below)
       ('authenticated', 'public.payment_methods'), ('authenticated', 'public.auto_topup_settings'),
       ('service_role', 'public.payment_methods'), ('service_role', 'public.auto_topup_settings'),
       ('service_role', 'private.topup_crossings'), ('service_role', 'private.auto_topup_attempts'),
       -- promo credit and the ledger statement (20261202000900, 20261202000910)
       ('authenticated', 'public.promo_redemptions'), ('authenticated', 'public.my_promo_lots'),
       ('authenticated', 'public.my_ledger'), ('service_role', 'public.promo_redemptions'),
       ('service_role', 'public.my_promo_lots'), ('service_role', 'public.my_ledger'), ('service_role', 'public.admin_promo_codes')
     ) a(r, t)
     union all
     select 'authenticated', t::regclass::text, 'DELETE' from (values ('public.payment_methods'), ('public.auto_topup_settings')) d(t) $$,
  'the API roles hold exactly the allow-listed table privileges in public and private (SELECT; DELETE of own saved cards and auto top-up settings)'
);

select set_eq(
  $$ select r.rolname, c.oid::regclass::text, a.attname::text collate "default", pv.priv
       from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
      cross join (values ('anon'), ('authenticated'), ('service_role')) r(rolname)
      cross join (values ('SELECT'), ('INSERT'), ('UPDATE'), ('REFERENCES')) pv(priv)
      where n.nspname in ('public', 'private') and c.relkind in ('r', 'p', 'v', 'm', 'f')
        and a.attnum > 0 and not a.attisdropped
        and has_column_privilege(r.rolname, c.oid, a.attnum, pv.priv)
        and not has_table_privilege(r.rolname, c.oid, pv.priv) $$,
  $$ values ('authenticated', 'public.reconcile_chunks'::regclass::text, 'chunk', 'SELECT'),
            ('authenticated', 'public.reconcile_chunks'::regclass::text, 'last_finished_at', 'SELECT'),
            ('authenticated', 'public.notifications'::regclass::text, 'read_at', 'UPDATE')
     union all
     select 'authenticated', 'public.auto_topup_settings'::regclass::text, c, p
       from (values ('user_id', 'INSERT'), ('enabled', 'INSERT'), ('threshold_usd', 'INSERT'), ('plan_code', 'INSERT'),
                    ('currency', 'INSERT'), ('monthly_max_count', 'INSERT'), ('monthly_max_usd', 'INSERT'),
                    ('enabled', 'UPDATE'), ('threshold_usd', 'UPDATE'), ('plan_code', 'UPDATE'), ('currency', 'UPDATE'),
                    ('monthly_max_count', 'UPDATE'), ('monthly_max_usd', 'UPDATE')) x(c, p) $$,
  'the only column grants are authenticated reading reconcile_chunks.chunk and last_finished_at, marking notifications '
  || 'read, and writing their auto top-up choices (not disabled_reason nor consecutive_failures)'
);

select is_empty(
  $$ select r.rolname, c.oid::regclass::text, pv.priv
       from pg_class c join pg_namespace n on n.oid = c.relnamespace
      cross join (values ('anon'), ('authenticated'), ('service_role')) r(rolname)
      cross join (values ('USAGE'), ('SELECT'), ('UPDATE')) pv(priv)
      where n.nspname in ('public', 'private') and c.relkind = 'S'
        and has_sequence_privilege(r.rolname, c.oid, pv.priv) $$,
  'the API roles hold no privilege on any sequence in public or private'
);

select set_eq(
  $$ select r.rolname, p.oid::regprocedure::text
       from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      cross join (values ('anon'), ('authenticated')) r(rolname)
      where n.nspname in ('public', 'private')
        and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')
        and has_function_privilege(r.rolname, p.oid, 'EXECUTE') $$,
  $$ values ('authenticated', 'public.key_spend(public.api_keys)'::regprocedure::text),
            ('authenticated', 'public.remaining_credit(uuid)'::regprocedure::text),
            ('authenticated', 'public.percent_left(numeric, numeric)'::regprocedure::text),
            ('authenticated', 'public.preferred_currency(uuid)'::regprocedure::text) $$,
  'anon and authenticated may execute exactly four functions in public and private: key_spend, remaining_credit, '
  || 'percent_left and preferred_currency (security invoker, for the my_* views)'
);

-- Extensions ------------------------------------------------------------------------------------------
select results_eq(
  $$ select extnamespace::regnamespace::text from pg_extension where extname = 'pg_cron' $$,
  $$ values ('pg_catalog') $$,
  'pg_cron is installed in pg_catalog, as hosted''s Cron module does'
);
select is_empty(
  $$ select w.extname from (values ('pg_net', 'extensions'), ('pgcrypto', 'extensions'), ('pgtap', 'extensions'),
                                   ('plpgsql_check', 'extensions'), ('supabase_vault', 'vault')) w(extname, nspname)
       left join pg_extension e on e.extname = w.extname
      where e.oid is null and w.extname <> 'plpgsql_check' -- (only where the server ships it)
         or e.extnamespace::regnamespace::text <> w.nspname $$,
  'pg_net, pgcrypto, pgtap (and plpgsql_check) are installed in extensions, supabase_vault in vault'
);
select is_empty(
  $$ select extname from pg_extension where extnamespace = 'public'::regnamespace and extname <> 'plpgsql' $$,
  'no extension is installed in public (lint extension_in_public)'
);
select is_empty(
  $$ select p.oid::regprocedure::text from pg_proc p
      where p.oid in ('net.http_get(text, jsonb, jsonb, integer)'::regprocedure,
                      'net.http_post(text, jsonb, jsonb, jsonb, integer)'::regprocedure,
                      'net.http_delete(text, jsonb, jsonb, integer)'::regprocedure)
        and (p.prosecdef or not has_function_privilege('public', p.oid, 'EXECUTE')) $$,
  'pg_net''s http_get, http_post and http_delete are SECURITY INVOKER and executable by PUBLIC (pg_net 0.12+ on hosted)'
);
select is_empty(
  $$ select r from unnest(array['postgres', 'anon', 'authenticated', 'service_role', 'supabase_functions_admin']) r
      where not has_schema_privilege(r, 'net', 'USAGE') $$,
  'postgres, the API roles and supabase_functions_admin have USAGE on schema net (grant_pg_net_access)'
);
select ok(has_table_privilege('public', 'net.http_request_queue', 'INSERT') and has_table_privilege('public', 'net._http_response', 'DELETE'),
          'pg_net''s queue and response tables are granted to PUBLIC, as pg_net 0.12+ does');
select ok(has_schema_privilege('postgres', 'cron', 'USAGE')
          and has_table_privilege('postgres', 'cron.job', 'SELECT')
          and not has_table_privilege('postgres', 'cron.job', 'INSERT, UPDATE, DELETE')
          and has_table_privilege('postgres', 'cron.job_run_details', 'DELETE')
          and not has_table_privilege('postgres', 'cron.job_run_details', 'TRIGGER'),
          'postgres uses schema cron, reads cron.job without writing it, cleans cron.job_run_details, adds no trigger there');
select ok(not has_schema_privilege('anon', 'cron', 'USAGE') and not has_schema_privilege('authenticated', 'cron', 'USAGE')
          and not has_schema_privilege('anon', 'vault', 'USAGE') and not has_schema_privilege('authenticated', 'vault', 'USAGE'),
          'anon and authenticated have no USAGE on schemas cron and vault');
select ok(has_table_privilege('postgres', 'vault.secrets', 'SELECT, DELETE') and not has_table_privilege('postgres', 'vault.secrets', 'INSERT, UPDATE')
          and has_function_privilege('postgres', 'vault.create_secret(text, text, text, uuid)', 'EXECUTE'),
          'postgres reads and deletes vault secrets and creates them only through vault.create_secret, as on hosted');

-- Supabase's security lints that apply (supabase/splinter) -----------------------------------------
select is_empty(
  $$ select c.oid::regclass::text from pg_class c where c.relnamespace = 'public'::regnamespace
        and c.relkind in ('r', 'p') and not c.relrowsecurity $$,
  'every table in public has row level security enabled (lint rls_disabled_in_public)'
);
select is_empty(
  $$ select c.oid::regclass::text from pg_class c where c.relnamespace = 'public'::regnamespace and c.relkind = 'v'
        and (has_table_privilege('anon', c.oid, 'SELECT') or has_table_privilege('authenticated', c.oid, 'SELECT'))
        and not coalesce(c.reloptions && array['security_invoker=true', 'security_invoker=on', 'security_invoker=1', 'security_invoker=yes'], false) $$,
  'no view anon or authenticated can read in public runs with its owner''s rights (lint security_definer_view)'
);
select is_empty(
  $$ select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname not in ('pg_catalog', 'information_schema', 'pg_toast', 'auth', 'cron', 'extensions', 'graphql',
                              'graphql_public', 'net', 'pgbouncer', 'realtime', 'storage', 'supabase_functions',
                              'supabase_migrations', 'vault', 'tests')
        and n.nspname not like 'pg\_temp%' and n.nspname not like 'pg\_toast\_temp%'
        and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e')
        and not coalesce(p.proconfig && array['search_path=""'], false)
        -- Three deliberate exceptions: security-invoker SQL functions whose every name is schema-qualified and
        -- which the planner must inline into the my_* views, the alert triggers and reconcile's batch (a SET
        -- clause prevents inlining: about 4x slower for 1,000 users; migrations 20261126000600, 20261126000300).
        -- The tests schema is never deployed.
        and p.oid not in ('public.remaining_credit(uuid)'::regprocedure, 'public.percent_left(numeric, numeric)'::regprocedure,
                          'public.key_target(uuid, text, numeric, numeric, numeric)'::regprocedure) $$,
  'every function of ours but remaining_credit, percent_left and key_target sets search_path = '''' (lint function_search_path_mutable)'
);
select is_empty(
  $$ select distinct c.oid::regclass::text
       from pg_depend d join pg_rewrite rw on rw.oid = d.objid join pg_class c on c.oid = rw.ev_class
      where d.refobjid = 'auth.users'::regclass and c.relnamespace = 'public'::regnamespace
        and (has_table_privilege('anon', c.oid, 'SELECT') or has_table_privilege('authenticated', c.oid, 'SELECT')) $$,
  'no view in public that anon or authenticated can read is built on auth.users (lint auth_users_exposed)'
);
select is_empty(
  $$ select r.rolname, p.oid::regprocedure::text from pg_proc p
      cross join (values ('anon'), ('authenticated')) r(rolname)
      where p.pronamespace = 'public'::regnamespace and p.prosecdef and has_function_privilege(r.rolname, p.oid, 'EXECUTE') $$,
  'anon and authenticated can execute no SECURITY DEFINER function in public (lints 0028 and 0029)'
);

select * from finish();
rollback;
