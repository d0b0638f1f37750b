-- Notifications to users (issue 15): one outbox row per event, shown in the dashboard (unread count,
-- list) and, when an email provider is configured, emailed. What makes a row "once per event" is
-- (user_id, kind, event_key): the event's own identity (a payment reference, an auto top-up attempt, a
-- low-balance crossing, a dispute id, a rotation id), so a trigger, a retry or a duplicate webhook that
-- reports the same event again adds nothing.
--
-- The money path only ever calls private.notify (an insert that cannot fail on a duplicate); delivery
-- by email happens later, elsewhere, and never holds up a payment, a refund or a top-up.

create table public.notifications (
  id bigint generated always as identity primary key,
  user_id uuid not null references auth.users (id) on delete cascade,
  kind text not null check (kind in ('payment_receipt', 'low_balance', 'auto_topup_succeeded', 'auto_topup_failed',
                                     'auto_topup_disabled', 'dispute_opened', 'dispute_resolved', 'key_rotated')),
  event_key text not null check (length(event_key) between 1 and 200),
  title text not null,
  body text not null,
  -- A dashboard route (e.g. '#/receipt/<reference>'), never an absolute URL: the sender prefixes the
  -- dashboard's public URL for emails.
  link text check (link is null or link ~ '^#/'),
  created_at timestamptz not null default now(),
  read_at timestamptz,
  unique (user_id, kind, event_key)
);
create index notifications_user_created_idx on public.notifications (user_id, created_at desc);

-- A user reads their own notifications and marks them read (read_at only); nothing else is writable.
alter table public.notifications enable row level security;
create policy "own notifications" on public.notifications for select to authenticated
  using ((select auth.uid()) = user_id);
create policy "mark own notifications read" on public.notifications for update to authenticated
  using ((select auth.uid()) = user_id) with check ((select auth.uid()) = user_id);
revoke all on table public.notifications from public, anon, authenticated, service_role;
revoke all on sequence public.notifications_id_seq from public, anon, authenticated, service_role;
grant select on table public.notifications to authenticated, service_role;
grant update (read_at) on table public.notifications to authenticated;

create view public.my_notifications with (security_invoker = true) as
select n.id, n.user_id, n.kind, n.title, n.body, n.link, n.created_at, n.read_at, n.read_at is null as unread
  from public.notifications n;
revoke all on table public.my_notifications from public, anon, authenticated, service_role;
grant select on table public.my_notifications to authenticated, service_role;

-- Records one event for one user; returns the new row's id, or null when that event was already recorded.
create function private.notify(p_user_id uuid, p_kind text, p_event_key text, p_title text, p_body text,
                               p_link text default null)
returns bigint
language sql volatile security definer set search_path = '' as $$
  insert into public.notifications (user_id, kind, event_key, title, body, link)
  values (p_user_id, p_kind, p_event_key, p_title, p_body, p_link)
  on conflict (user_id, kind, event_key) do nothing
  returning id
$$;
revoke execute on all functions in schema private from public, anon, authenticated;
grant execute on all functions in schema private to service_role;
