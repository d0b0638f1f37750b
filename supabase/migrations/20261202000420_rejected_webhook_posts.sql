-- Abuse control: posts to paystack-webhook that fail the gate (bad or missing signature, a source IP off
-- the optional allow-list) keep only their hash, size, time and reason, in a table of their own with a cap
-- on its rows: a public URL gets floods, and what a flood writes must stay small and bounded. Oversized
-- bodies are refused (413) by the function before anything is stored. Accepted deliveries stay in
-- private.webhook_deliveries as before.

-- Its settings (webhook_rejected_max_rows) are rows of private.settings, inserted in 20261126000100.

create table private.rejected_webhook_posts (
  id bigint generated always as identity primary key,
  provider text not null default 'paystack',
  received_at timestamptz not null default now(),
  body_sha256 text not null check (body_sha256 ~ '^[0-9a-f]{64}$'),
  body_bytes integer not null check (body_bytes >= 0),
  reason text not null check (length(reason) between 1 and 100)
);
create index rejected_webhook_posts_received_idx on private.rejected_webhook_posts (received_at);
-- No API role reads it: only the security-definer functions here (and the admin view) do.
revoke all on table private.rejected_webhook_posts from public, anon, authenticated, service_role;

-- Records one rejected post and drops the oldest beyond webhook_rejected_max_rows (a range on the primary
-- key: cheap on every insert, and ids only grow, so at most the cap is kept).
create function private.record_rejected_post(p_body_sha256 text, p_body_bytes integer, p_reason text) returns bigint
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_id bigint;
begin
  insert into private.rejected_webhook_posts (body_sha256, body_bytes, reason)
  values (p_body_sha256, p_body_bytes, p_reason)
  returning id into v_id;
  delete from private.rejected_webhook_posts
   where id <= v_id - private.setting_numeric('webhook_rejected_max_rows');
  return v_id;
end
$$;

-- The admin view lists both: deliveries rejected after the gate (signed, but not applicable) and posts
-- refused at the gate (no event, reference or IP is kept for them; body_bytes says how big they were).
create view public.admin_rejected_deliveries as
select d.id, d.provider, d.event, d.reference, d.signature_valid, d.outcome, d.reason, d.source_ip, d.received_at,
       null::integer as body_bytes
  from private.webhook_deliveries d where d.outcome in ('rejected', 'error') or not d.signature_valid
union all
select p.id, p.provider, null, null, false, 'rejected', p.reason, null, p.received_at, p.body_bytes
  from private.rejected_webhook_posts p;

revoke all on table public.admin_rejected_deliveries from public, anon, authenticated, service_role;
grant select on table public.admin_rejected_deliveries to service_role;

revoke execute on all functions in schema private from public, anon, authenticated;
grant execute on all functions in schema private to service_role;
