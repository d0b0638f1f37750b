-- Helpers shared by the pgTAP files (the layout of supabase/dbdev and basejump): created once, outside
-- the files' rolled-back transactions, in a schema of their own that migrations never touch. pg_prove runs
-- this file first (files run in name order) and it emits TAP like the others.
begin;
select plan(14);

create schema if not exists tests;

-- ---------------------------------------------------------------- users and who the session acts as
-- A user signed up through Auth (the sign-up trigger runs as for a real one), by default with the email
-- confirmed (so the sign-up credit is granted) and the email u-<id>@pgtap.test. Returns the id.
create or replace function tests.create_user(p_id uuid, p_email text default null, p_confirmed boolean default true)
returns uuid language sql as $$
  insert into auth.users (id, email, aud, role, email_confirmed_at)
  values (p_id, coalesce(p_email, 'u-' || p_id || '@pgtap.test'), 'authenticated', 'authenticated',
          case when p_confirmed then now() end)
  returning id
$$;

-- What PostgREST does for a request, for the rest of the transaction: the token's claims in
-- request.jwt.claims (auth.uid() and the RLS policies read them), the token's role as the current role.
-- No SET clause on these functions: it would undo their settings on return.
create or replace function tests.act_as(p_claims jsonb) returns void language plpgsql as $$
begin
  perform set_config('role', 'none', true); -- back to the session's role (postgres), whoever acted before
  perform set_config('request.jwt.claims', coalesce(p_claims::text, ''), true);
  if p_claims is not null then perform set_config('role', p_claims ->> 'role', true); end if;
end
$$;

-- A request with the user's token (role authenticated; the email claim when the user has one).
create or replace function tests.authenticate_as(p_user uuid) returns void language plpgsql as $$
declare
  v_email text;
begin
  perform tests.act_as(null); -- auth.users is closed to the API roles
  select u.email into v_email from auth.users u where u.id = p_user;
  if not found then raise exception 'tests.authenticate_as: no user %', p_user; end if;
  perform tests.act_as(jsonb_strip_nulls(jsonb_build_object('sub', p_user, 'role', 'authenticated', 'email', v_email)));
end
$$;

-- A request with the anon key (publishable key) and with the service_role key (secret key).
create or replace function tests.authenticate_as_anon() returns void language sql as $$
  select tests.act_as('{"role": "anon"}')
$$;
create or replace function tests.authenticate_as_service_role() returns void language sql as $$
  select tests.act_as('{"role": "service_role"}')
$$;

-- Back to the session's own role (postgres), with no claims.
create or replace function tests.clear_authentication() returns void language sql as $$
  select tests.act_as(null)
$$;

-- Called while acting as an API role, to switch or clear; nothing here is deployed.
grant usage on schema tests to anon, authenticated, service_role;
grant execute on function tests.act_as(jsonb), tests.authenticate_as(uuid), tests.authenticate_as_anon(),
  tests.authenticate_as_service_role(), tests.clear_authentication() to anon, authenticated, service_role;

-- ---------------------------------------------------------------- money fixtures

-- The hint of the error a statement raises (its SQLSTATE when it has no hint; null when it raises none).
create or replace function tests.error_hint(p_sql text) returns text language plpgsql as $$
declare
  v_hint text;
begin
  execute p_sql;
  return null;
exception when others then
  get stacked diagnostics v_hint = pg_exception_hint;
  return coalesce(v_hint, sqlstate);
end
$$;

-- A purchase of a plan through the same SQL the webhook uses (create_checkout + apply_payment of a
-- verified, matching payment); fails loudly if it is not credited. Returns the reference.
create or replace function tests.buy(p_user uuid, p_plan text) returns text language plpgsql set search_path = '' as $$
declare
  v_ref text;
  v_outcome text;
begin
  select c.reference into v_ref from private.create_checkout(p_user, p_plan) c;
  select r.outcome into v_outcome
    from public.plans pl, private.apply_payment(v_ref, 'success', pl.price_subunits, pl.price_subunits, pl.currency, 'test', 'test', 1, now()) r
   where pl.code = p_plan;
  if v_outcome is distinct from 'credited' then raise exception 'fixture: payment of % not credited (%)', p_plan, v_outcome; end if;
  return v_ref;
end
$$;

-- Paystack's list of a payment's refunds (GET /refund?transaction=<id>) as private.apply_refunds takes it:
-- one refund per amount, ids 1..n, all with p_status.
create or replace function tests.refund_list(p_reference text, p_amounts integer[], p_status text default 'processed')
returns jsonb language sql as $$
  select coalesce(jsonb_agg(jsonb_build_object('id', a.n, 'transaction', pm.provider_transaction_id, 'amount', a.amount,
                                               'currency', pm.currency, 'status', p_status) order by a.n), '[]'::jsonb)
    from public.payments pm, unnest(p_amounts) with ordinality as a(amount, n)
   where pm.provider = 'paystack' and pm.reference = p_reference
$$;

-- p_count users with ids <p_id_prefix><n as 12 digits> (p_id_prefix like '16000000-0000-4000-8000-'), each
-- with its email confirmed (so the sign-up credit is granted) and its key provisioned at its target, as
-- provision-key would leave them.
create or replace function tests.active_users(p_id_prefix text, p_count integer) returns void language plpgsql as $$
begin
  insert into auth.users (id, email, aud, role, email_confirmed_at)
  select (p_id_prefix || lpad(n::text, 12, '0'))::uuid, 'u' || n || '-' || p_id_prefix || '@pgtap.test', 'authenticated', 'authenticated', now()
    from generate_series(1, p_count) n;
  perform private.complete_provisioning(j.id, 1, private.key_target_budget(j.key_id))
     from private.provisioning_jobs j where j.user_id::text like p_id_prefix || '%';
end
$$;

-- Rotates the user's key through the SQL steps rotate-key runs, up to the old key retired with p_spend
-- (p_finish: on to done, the new key confirmed at its target). Returns the rotation id.
create or replace function tests.rotate(p_user uuid, p_spend numeric, p_finish boolean default true) returns bigint language plpgsql as $$
declare
  v_id bigint;
begin
  select r.rotation_id into v_id from private.start_key_rotation(p_user, 'pgtap') r;
  perform private.rotation_block_intent(v_id);
  perform private.rotation_old_blocked(v_id);
  perform private.rotation_retire_old(v_id, p_spend);
  if p_finish then
    perform private.rotation_new_key_active(v_id, (select private.key_target_budget(r.new_key_id) from private.key_rotations r where r.id = v_id));
    perform private.rotation_finish(v_id);
  end if;
  return v_id;
end
$$;

-- Known vault secrets for a test that checks what pg_net is asked to send (the stack's own come back with
-- the file's rollback): project_url https://project.pgtap.test/, cron_secret pgtap-cron-secret-0123456789.
create or replace function tests.use_test_vault_secrets() returns void language plpgsql as $$
begin
  delete from vault.secrets where name in ('project_url', 'cron_secret');
  perform vault.create_secret('https://project.pgtap.test/', 'project_url');
  perform vault.create_secret('pgtap-cron-secret-0123456789', 'cron_secret');
end
$$;

select has_function('tests', 'buy', array['uuid', 'text'], 'tests.buy exists for the other files');
select has_function('tests', 'active_users', array['text', 'integer'], 'tests.active_users exists for the other files');
select has_function('tests', 'rotate', array['uuid', 'numeric', 'boolean'], 'tests.rotate exists for the other files');
select has_function('tests', 'refund_list', array['text', 'integer[]', 'text'], 'tests.refund_list exists for the other files');
select has_function('tests', 'use_test_vault_secrets', 'tests.use_test_vault_secrets exists for the other files');
select has_function('tests', 'create_user', array['uuid', 'text', 'boolean'], 'tests.create_user exists for the other files');
select has_function('tests', 'authenticate_as', array['uuid'], 'tests.authenticate_as exists for the other files');
select has_function('tests', 'authenticate_as_anon', 'tests.authenticate_as_anon exists for the other files');
select has_function('tests', 'authenticate_as_service_role', 'tests.authenticate_as_service_role exists for the other files');
select has_function('tests', 'clear_authentication', 'tests.clear_authentication exists for the other files');

-- The session helpers do what they say (authenticate_as with a real user: 00_platform_standins.sql).
select tests.authenticate_as_anon();
select results_eq($$ select current_user::text collate "default", auth.uid(), auth.role() $$,
                  $$ values ('anon'::text, null::uuid, 'anon'::text) $$, 'authenticate_as_anon: role anon, no user');
select tests.authenticate_as_service_role();
select results_eq($$ select current_user::text collate "default", auth.uid(), auth.role() $$,
                  $$ values ('service_role'::text, null::uuid, 'service_role'::text) $$,
                  'authenticate_as_service_role: role service_role, no user');
select tests.clear_authentication();
select results_eq($$ select current_user::text collate "default", auth.uid(), auth.jwt() $$,
                  $$ values (session_user::text collate "default", null::uuid, null::jsonb) $$,
                  'clear_authentication: back to the session''s role, no claims');
select throws_ok($$ select tests.authenticate_as('00000000-0000-4000-8000-0000000000a1') $$, 'P0001',
                 'tests.authenticate_as: no user 00000000-0000-4000-8000-0000000000a1', 'authenticate_as refuses an unknown user');

select * from finish();
commit;
