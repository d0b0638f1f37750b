-- private.claim_notification_emails (20261202000740) leased emails in private.lease_due, whose UPDATE takes a
-- snapshot of its own, then joined public.notifications and auth.users in the calling statement, whose
-- snapshot is older. An email committed between the two was leased and then dropped by the join: unsent and
-- unclaimable until its lease ran out, so a receipt waited for the next sweep (seen in the integration test
-- "payments at once", a payment committing while a kick's run claimed). Now the lease and the read are two
-- statements: the read's snapshot is taken after the lease and sees every row it leased.
create or replace function private.claim_notification_emails(p_limit integer default null,
                                                             p_lease_seconds integer default 60)
returns table (notification_id bigint, idempotency_key text, email text, kind text, title text, body text, link text,
               created_at timestamptz, attempts integer)
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_ids bigint[];
begin
  select coalesce(array_agg(c.notification_id), '{}') into v_ids
    from private.lease_due(null::private.notification_emails, 'notification_id', 'status',
                           coalesce(p_limit, private.setting_numeric('notification_email_batch_size')::integer),
                           p_lease_seconds) c;
  return query
  select c.notification_id, c.idempotency_key, u.email::text, n.kind, n.title, n.body, n.link, n.created_at, c.attempts
    from private.notification_emails c
    join public.notifications n on n.id = c.notification_id
    join auth.users u on u.id = c.user_id
   where c.notification_id = any(v_ids)
   order by c.notification_id;
end
$$;
