-- Is a signed-in user's session still alive? checkout and rotate-key verify the user's access token
-- locally (signature against the project's JWKS, issuer, audience, expiry), which alone would accept a
-- token until its exp even after the user signed out (Auth deletes the session on logout). Asking this
-- function costs one database round trip instead of an Auth round trip, and closes that gap where money
-- or keys are at stake. The session must belong to the token's user and must not be past not_after
-- (Auth's time-boxed sessions).
create function private.session_is_active(p_session_id uuid, p_user_id uuid) returns boolean
language sql stable security definer set search_path = '' as $$
  select exists (
    select 1 from auth.sessions s
     where s.id = p_session_id and s.user_id = p_user_id and (s.not_after is null or s.not_after > now())
  )
$$;

revoke execute on all functions in schema private from public, anon, authenticated;
grant execute on all functions in schema private to service_role;
