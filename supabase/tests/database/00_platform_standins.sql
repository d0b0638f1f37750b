-- The local platform stand-ins (stack/platform) must behave like hosted Supabase where our SQL relies
-- on them: auth.uid() from the JWT claims PostgREST sets, auth.users closed to the API roles, Vault
-- keeping secrets encrypted, pg_net queueing requests transactionally with hosted's grants.
begin;
select plan(21);

-- auth.* helpers read request.jwt.claims (what PostgREST sets per request; tests.authenticate_as sets them)
select tests.create_user('0a000000-0000-4000-8000-000000000001', 'standin@pgtap.test');
select tests.authenticate_as('0a000000-0000-4000-8000-000000000001');
select is(auth.uid(), '0a000000-0000-4000-8000-000000000001'::uuid, 'auth.uid() is the sub of request.jwt.claims');
select is(auth.role(), 'authenticated', 'auth.role() is the role of request.jwt.claims');
select is(auth.email(), 'standin@pgtap.test', 'auth.email() is the email of request.jwt.claims');
select is(auth.jwt() ->> 'sub', '0a000000-0000-4000-8000-000000000001', 'auth.jwt() returns the claims');
select tests.clear_authentication();
select is(auth.uid(), null::uuid, 'auth.uid() is null without claims');

-- auth.users is not readable by the API roles
select tests.authenticate_as_anon();
select throws_ok('select * from auth.users', '42501', null, 'anon cannot read auth.users');
select tests.authenticate_as('0a000000-0000-4000-8000-000000000001');
select throws_ok('select * from auth.users', '42501', null, 'authenticated cannot read auth.users');
select tests.clear_authentication();

-- Vault: create_secret stores ciphertext, decrypted_secrets gives the plaintext back
do $$ begin perform vault.create_secret('pgtap-plaintext-secret-42', 'pgtap_standin_secret', 'pgTAP test'); end $$;
select is((select decrypted_secret from vault.decrypted_secrets where name = 'pgtap_standin_secret'),
          'pgtap-plaintext-secret-42', 'vault.decrypted_secrets returns the secret');
select ok((select secret from vault.secrets where name = 'pgtap_standin_secret') is not null
          and position('pgtap-plaintext-secret-42' in (select secret from vault.secrets where name = 'pgtap_standin_secret')) = 0,
          'vault.secrets.secret does not hold the plaintext');
select tests.authenticate_as_anon();
select throws_ok('select * from vault.decrypted_secrets', '42501', null, 'anon cannot read vault.decrypted_secrets');
select tests.authenticate_as('0a000000-0000-4000-8000-000000000001');
select throws_ok('select * from vault.secrets', '42501', null, 'authenticated cannot read vault.secrets');
select tests.clear_authentication();

-- pg_net: http_post queues a row visible in the same transaction
create temp table t_req as
select net.http_post(
  url := 'https://hooks.pgtap.test/standin',
  body := '{"hello": "world", "n": 1}'::jsonb,
  headers := '{"Content-Type": "application/json", "X-Test": "yes"}'::jsonb,
  timeout_milliseconds := 1234
) as id;
select ok((select id from t_req) is not null, 'net.http_post returns a request id');
select results_eq(
  $$ select q.method, q.url, q.headers, convert_from(q.body, 'utf8')::jsonb, q.timeout_milliseconds
       from net.http_request_queue q join t_req t on t.id = q.id $$,
  $$ values ('POST'::text, 'https://hooks.pgtap.test/standin'::text,
             '{"Content-Type": "application/json", "X-Test": "yes"}'::jsonb, '{"hello": "world", "n": 1}'::jsonb, 1234) $$,
  'the queued request has the method, url, headers, body and timeout given'
);
create temp table t_req_params as
select net.http_post(url := 'https://hooks.pgtap.test/params', params := '{"a": "1"}'::jsonb) as id;
select is((select q.url from net.http_request_queue q join t_req_params t on t.id = q.id),
          'https://hooks.pgtap.test/params?a=1', 'params are appended to the url');
select is((select q.headers from net.http_request_queue q join t_req_params t on t.id = q.id),
          '{"Content-Type": "application/json"}'::jsonb, 'http_post defaults to a JSON content type');
select is((select q.timeout_milliseconds from net.http_request_queue q join t_req_params t on t.id = q.id),
          5000, 'http_post defaults to a 5000 ms timeout');

-- A call in a rolled-back savepoint leaves no queue row
savepoint before_call;
do $$ begin perform net.http_post(url := 'https://hooks.pgtap.test/rolled-back-savepoint'); end $$;
select isnt_empty($$ select 1 from net.http_request_queue where url = 'https://hooks.pgtap.test/rolled-back-savepoint' $$,
                  'the request is queued before the rollback');
rollback to savepoint before_call;
select is_empty($$ select 1 from net.http_request_queue where url = 'https://hooks.pgtap.test/rolled-back-savepoint' $$,
                'a request made in a rolled-back savepoint leaves no queue row');

-- A call in a block that fails (an implicit subtransaction rolled back) leaves no queue row
do $$
begin
  begin
    perform net.http_post(url := 'https://hooks.pgtap.test/rolled-back-block');
    raise exception 'abort';
  exception when others then null;
  end;
end
$$;
select is_empty($$ select 1 from net.http_request_queue where url = 'https://hooks.pgtap.test/rolled-back-block' $$,
                'a request made in a failed block leaves no queue row');

-- As on hosted (pg_net 0.12+ grants schema net and its functions to PUBLIC, SECURITY INVOKER), any
-- role may queue a request; the API cannot reach it because PostgREST exposes only public, and no
-- function in public calls pg_net (16_hosted_roles.sql checks the grants).
select tests.authenticate_as('0a000000-0000-4000-8000-000000000001');
select lives_ok($$ select net.http_post(url := 'https://hooks.pgtap.test/as-authenticated') $$,
                'authenticated may call net.http_post in SQL, as on hosted');
select tests.authenticate_as_anon();
select lives_ok($$ select net.http_post(url := 'https://hooks.pgtap.test/as-anon') $$,
                'anon may call net.http_post in SQL, as on hosted');
select tests.clear_authentication();

select * from finish();
rollback;
