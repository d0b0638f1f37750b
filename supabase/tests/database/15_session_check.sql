-- private.session_is_active: what checkout and rotate-key ask after verifying an access token locally,
-- so a signed-out (or expired, or someone else's) session is refused before its token's exp.
begin;
select plan(7);

insert into auth.users (id, email, aud, role) values
  ('15000000-0000-4000-8000-000000000001', 'session-a@pgtap.test', 'authenticated', 'authenticated'),
  ('15000000-0000-4000-8000-000000000002', 'session-b@pgtap.test', 'authenticated', 'authenticated');
insert into auth.sessions (id, user_id, not_after) values
  ('15000000-0000-4000-8000-0000000000a1', '15000000-0000-4000-8000-000000000001', null),
  ('15000000-0000-4000-8000-0000000000a2', '15000000-0000-4000-8000-000000000001', now() - interval '1 minute'),
  ('15000000-0000-4000-8000-0000000000a3', '15000000-0000-4000-8000-000000000001', now() + interval '1 hour');

select ok(private.session_is_active('15000000-0000-4000-8000-0000000000a1', '15000000-0000-4000-8000-000000000001'),
          'a live session of the token''s user is active');
select ok(private.session_is_active('15000000-0000-4000-8000-0000000000a3', '15000000-0000-4000-8000-000000000001'),
          'a time-boxed session before its not_after is active');
select ok(not private.session_is_active('15000000-0000-4000-8000-0000000000a2', '15000000-0000-4000-8000-000000000001'),
          'a session past its not_after is not');
select ok(not private.session_is_active('15000000-0000-4000-8000-0000000000a1', '15000000-0000-4000-8000-000000000002'),
          'another user''s session is not (the token''s sub must own it)');

delete from auth.sessions where id = '15000000-0000-4000-8000-0000000000a1'; -- what Auth does on sign-out
select ok(not private.session_is_active('15000000-0000-4000-8000-0000000000a1', '15000000-0000-4000-8000-000000000001'),
          'a signed-out (deleted) session is not');
select ok(not private.session_is_active(null, '15000000-0000-4000-8000-000000000001'), 'no session id is not');

select ok(not has_function_privilege('authenticated', 'private.session_is_active(uuid, uuid)', 'EXECUTE')
          and not has_function_privilege('anon', 'private.session_is_active(uuid, uuid)', 'EXECUTE'),
          'the API roles cannot call it');

select * from finish();
rollback;
