-- Catalog-wide rules every migration must keep: a policy on every table in public, pinned search_path on
-- security-definer functions, private functions closed to the API roles, exact money columns (RLS itself
-- and the other security lints: 16_hosted_roles.sql).
begin;
select plan(13);

select is_empty(
  $$ select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind in ('r', 'p')
        and not exists (select 1 from pg_policy p where p.polrelid = c.oid) $$,
  'every table in schema public has at least one policy (RLS enabled without one reads as empty by design only)'
);

select is_empty(
  $$ select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname in ('public', 'private') and p.prosecdef
        and not coalesce('search_path=""' = any (p.proconfig), false)
        and not exists (select 1 from pg_depend d where d.objid = p.oid and d.deptype = 'e') $$,
  'every SECURITY DEFINER function in public and private sets search_path = '''''
);

select is_empty(
  $$ select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname = 'private'
        and not coalesce(exists (select 1 from unnest(p.proconfig) cfg where cfg like 'search_path=%'), false) $$,
  'every function in private pins its search_path'
);

select is_empty(
  $$ select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname = 'private' and has_function_privilege('anon', p.oid, 'EXECUTE') $$,
  'anon has EXECUTE on no function in schema private'
);

select is_empty(
  $$ select p.oid::regprocedure::text from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname = 'private' and has_function_privilege('authenticated', p.oid, 'EXECUTE') $$,
  'authenticated has EXECUTE on no function in schema private'
);

select ok(not has_schema_privilege('anon', 'private', 'USAGE') and not has_schema_privilege('authenticated', 'private', 'USAGE'),
          'anon and authenticated have no USAGE on schema private');

select is_empty(
  $$ select c.relname, r.rolname from pg_class c join pg_namespace n on n.oid = c.relnamespace
      cross join (values ('anon'), ('authenticated')) r(rolname)
      where n.nspname = 'private' and c.relkind in ('r', 'p', 'v', 'm', 'S')
        and (has_table_privilege(r.rolname, c.oid, 'SELECT') or has_table_privilege(r.rolname, c.oid, 'INSERT')
          or has_table_privilege(r.rolname, c.oid, 'UPDATE') or has_table_privilege(r.rolname, c.oid, 'DELETE')) $$,
  'anon and authenticated have no privilege on any relation in schema private'
);

select is_empty(
  $$ select n.nspname, c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
       from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
      where n.nspname in ('public', 'private') and c.relkind in ('r', 'p', 'v', 'm')
        and a.attnum > 0 and not a.attisdropped
        and a.atttypid in ('real'::regtype, 'double precision'::regtype) $$,
  'no real / double precision column in public or private tables and views (money is exact)'
);

select is_empty(
  $$ select c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
       from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
      where n.nspname in ('public', 'private') and c.relkind in ('r', 'p')
        and a.attnum > 0 and not a.attisdropped
        and a.attname ~ '(^|_)(amount|credit|spend|max_budget)$'
        and a.atttypid <> 'numeric'::regtype $$,
  'every money column (amount, credit, spend, budget, price) is numeric'
);

select is_empty(
  $$ select c.relname, a.attname, format_type(a.atttypid, a.atttypmod)
       from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
      where n.nspname in ('public', 'private') and c.relkind in ('r', 'p')
        and a.attnum > 0 and not a.attisdropped and a.attname ~ 'subunits'
        and a.atttypid not in ('integer'::regtype, 'bigint'::regtype) $$,
  'every Paystack amount (*_subunits) is an integer'
);

select is_empty(
  $$ select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind = 'v' and c.relname like 'my\_%'
        and not coalesce('security_invoker=true' = any (c.reloptions), false) $$,
  'every public.my_* view is security_invoker (the reader''s RLS applies)'
);

select is_empty(
  $$ select c.relname, r.rolname from pg_class c join pg_namespace n on n.oid = c.relnamespace
      cross join (values ('anon'), ('authenticated')) r(rolname)
      where n.nspname = 'public' and c.relname like 'admin\_%' and has_table_privilege(r.rolname, c.oid, 'SELECT') $$,
  'anon and authenticated cannot select any public.admin_* view'
);

select is_empty(
  $$ select c.relname, r.rolname, pv.priv from pg_class c join pg_namespace n on n.oid = c.relnamespace
      cross join (values ('anon'), ('authenticated')) r(rolname)
      cross join (values ('INSERT'), ('UPDATE'), ('DELETE'), ('TRUNCATE')) pv(priv)
      where n.nspname = 'public' and c.relkind in ('r', 'p', 'v', 'm')
        and has_table_privilege(r.rolname, c.oid, pv.priv)
        -- a user removes their own saved card and auto top-up settings (RLS; 16_hosted_roles.sql's allow-list)
        and (c.relname, r.rolname, pv.priv) not in (('payment_methods', 'authenticated', 'DELETE'),
                                                    ('auto_topup_settings', 'authenticated', 'DELETE')) $$,
  'anon and authenticated cannot write any relation in public (all writes go through private functions), but '
  || 'a user may delete their own saved card and auto top-up settings'
);

select * from finish();
rollback;
