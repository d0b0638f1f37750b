-- Stand-in for supabase/vault: same relations and function signatures. Secrets are encrypted with
-- pgcrypto and a per-cluster key instead of pgsodium's server key; good enough to keep plaintext out of
-- the secrets table and to exercise the same SQL as hosted Supabase.
create table vault.secrets (
  id uuid primary key default gen_random_uuid(),
  name text,
  description text not null default '',
  secret text not null,
  key_id uuid,
  nonce bytea,
  created_at timestamptz not null default current_timestamp,
  updated_at timestamptz not null default current_timestamp
);
create unique index secrets_name_idx on vault.secrets (name) where name is not null;

create function vault._key() returns text language sql stable as $$
  select 'stand-in:' || (select system_identifier::text from pg_control_system())
$$;

create view vault.decrypted_secrets as
  select s.id, s.name, s.description, s.secret,
         convert_from(extensions.pgp_sym_decrypt_bytea(decode(s.secret, 'base64'), vault._key()), 'utf8') as decrypted_secret,
         s.key_id, s.nonce, s.created_at, s.updated_at
    from vault.secrets s;

create function vault.create_secret(
  new_secret text, new_name text default null, new_description text default '', new_key_id uuid default null
) returns uuid language plpgsql security definer set search_path = '' as $$
declare
  rec record;
begin
  insert into vault.secrets (secret, name, description, key_id)
  values (encode(extensions.pgp_sym_encrypt(new_secret, vault._key()), 'base64'), new_name, coalesce(new_description, ''), new_key_id)
  returning * into rec;
  return rec.id;
end
$$;

create function vault.update_secret(
  secret_id uuid, new_secret text default null, new_name text default null,
  new_description text default null, new_key_id uuid default null
) returns void language plpgsql security definer set search_path = '' as $$
begin
  update vault.secrets s
     set secret = coalesce(encode(extensions.pgp_sym_encrypt(new_secret, vault._key()), 'base64'), s.secret),
         name = coalesce(new_name, s.name),
         description = coalesce(new_description, s.description),
         key_id = coalesce(new_key_id, s.key_id),
         updated_at = current_timestamp
   where s.id = secret_id;
end
$$;

revoke all on vault.secrets, vault.decrypted_secrets from public;
revoke all on function vault.create_secret(text, text, text, uuid), vault.update_secret(uuid, text, text, text, uuid), vault._key() from public;
