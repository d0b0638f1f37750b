-- Retention of the append-only operational tables (issue 18): settings rows (days) and a bounded prune job.
--
-- What grows, at 1,000,000 keys (docs/benchmarks.md, "Storage growth"): spend_snapshots, one row per key
-- whose spend changed in a reconcile minute; then webhook deliveries, reconcile runs (about 100 a minute)
-- and repair rows. Each is pruned in bounded steps (at most retention_prune_batch rows per table per run),
-- so a run's cost does not grow with the backlog.
--
-- What the money needs is kept:
-- - spend_snapshots are thinned, never emptied: older than retention_snapshot_full_days, a key keeps its
--   last snapshot of each UTC day. Spend is cumulative and never goes down (20261202000500), so a day's
--   usage (public.my_daily_usage: the sum of the deltas between consecutive snapshots) is that last
--   snapshot minus the previous day's last: unchanged by thinning. The latest snapshot of every key stays.
-- - webhook deliveries of a payment that has a dispute are kept (evidence for it), whatever their age.
-- - the newest successful reconcile run stays (the health check's "last successful reconcile").
-- - the newest budget and block repair of each key stay (what reconcile last did to it).
-- - the ledger, payments, disputes, spend resets (offsets: money) and audit runs are not pruned.
-- pg_net's responses (6 hours, as pg_net's own ttl), rejected webhook posts, rate-limit windows and cron's run
-- log have their rules in the hourly cleanup job, at the end of this file.

-- Its settings (retention_*) are rows of private.settings, inserted in 20261126000100.

-- How far the snapshot thinning has got: every snapshot with id below next_id was looked at.
create table private.retention_state (
  name text primary key,
  next_id bigint not null default 0
);
insert into private.retention_state (name) values ('spend_snapshots') on conflict do nothing;
revoke all on table private.retention_state from public, anon, authenticated, service_role;

-- Thins at most p_batch ids of spend_snapshots, from where the last run stopped, up to the first snapshot
-- that is still within retention_snapshot_full_days: a snapshot goes when a later snapshot of the same key on
-- the same UTC day exists. Ids grow with time, so the watermark only moves forward. Returns rows deleted.
create function private.prune_spend_snapshots(p_batch integer) returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_cutoff timestamptz := now() - make_interval(days => private.setting_numeric('retention_snapshot_full_days')::integer);
  v_from bigint;
  v_to bigint;
  v_young bigint;
  v_deleted integer;
begin
  select next_id into v_from from private.retention_state where name = 'spend_snapshots' for update;
  -- the range: p_batch ids, cut at the first snapshot young enough to keep whole
  select min(s.id) into v_young from public.spend_snapshots s
   where s.id >= v_from and s.id < v_from + p_batch and s.observed_at >= v_cutoff;
  v_to := coalesce(v_young, v_from + p_batch);
  if v_young is null and not exists (select 1 from public.spend_snapshots s where s.id >= v_to) then
    -- nothing beyond the range yet: stop at the last id there is, so later snapshots are looked at later
    select coalesce(max(s.id) + 1, v_from) into v_to from public.spend_snapshots s where s.id >= v_from and s.id < v_to;
  end if;
  with gone as (
    delete from public.spend_snapshots s
     where s.id >= v_from and s.id < v_to and s.observed_at < v_cutoff
       and exists (select 1 from public.spend_snapshots n
                    where n.key_id = s.key_id and n.observed_at >= s.observed_at and n.id <> s.id
                      and (n.observed_at at time zone 'utc')::date = (s.observed_at at time zone 'utc')::date
                      and (n.observed_at, n.id) > (s.observed_at, s.id))
    returning 1
  )
  select count(*) into v_deleted from gone;
  update private.retention_state set next_id = v_to where name = 'spend_snapshots';
  return v_deleted;
end
$$;

-- Repairs (budget_repairs, block_repairs: the same shape) older than p_days, except each key's newest; at
-- most p_batch rows. Returns rows deleted.
create function private.prune_repairs(p_table text, p_days numeric, p_batch integer) returns integer
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_n integer;
begin
  if p_table not in ('budget_repairs', 'block_repairs') then
    raise exception 'prune_repairs: not a repairs table: %', p_table;
  end if;
  execute format($q$
    with gone as (
      delete from private.%1$I r
       where r.id in (
         select x.id from private.%1$I x
          where x.created_at < now() - make_interval(days => $1)
            and exists (select 1 from private.%1$I n where n.key_id = x.key_id and n.id > x.id)
          order by x.id limit $2)
      returning 1
    )
    select count(*)::integer from gone $q$, p_table)
    into v_n using p_days::integer, p_batch;
  return v_n;
end
$$;

-- One prune run over every table this migration covers; returns the rows deleted per table.
create function private.prune_operational() returns jsonb
language plpgsql volatile security definer set search_path = '' as $$
declare
  v_batch integer := private.setting_numeric('retention_prune_batch')::integer;
  v_days numeric;
  v_result jsonb := '{}'::jsonb;
  v_n integer;
begin
  v_result := v_result || jsonb_build_object('spend_snapshots', private.prune_spend_snapshots(v_batch));

  with gone as (
    delete from private.webhook_deliveries d
     where d.id in (
       select w.id from private.webhook_deliveries w
        where w.received_at < now() - make_interval(days => least(
                private.setting_numeric('retention_webhook_accepted_days'),
                private.setting_numeric('retention_webhook_other_days'))::integer)
          and (w.received_at < now() - make_interval(days => private.setting_numeric('retention_webhook_other_days')::integer)
               or w.outcome in ('credited', 'duplicate', 'ignored', 'refunded', 'dispute'))
          and not exists (select 1 from public.payments p join private.disputes x on x.payment_id = p.id
                           where p.reference = w.reference)
        order by w.received_at limit v_batch)
    returning 1
  )
  select count(*) into v_n from gone;
  v_result := v_result || jsonb_build_object('webhook_deliveries', v_n);

  v_days := private.setting_numeric('retention_reconcile_runs_days');
  with gone as (
    delete from private.reconcile_runs r
     where r.id in (
       select x.id from private.reconcile_runs x
        where x.started_at < now() - make_interval(days => v_days::integer)
          and x.id <> coalesce((select max(o.id) from private.reconcile_runs o where o.outcome = 'ok'), -1)
        order by x.id limit v_batch)
    returning 1
  )
  select count(*) into v_n from gone;
  v_result := v_result || jsonb_build_object('reconcile_runs', v_n);

  v_days := private.setting_numeric('retention_repairs_days');
  return v_result || jsonb_build_object('budget_repairs', private.prune_repairs('budget_repairs', v_days, v_batch),
                                        'block_repairs', private.prune_repairs('block_repairs', v_days, v_batch));
end
$$;

-- Every minute: at 1,000,000 keys with 1% changing a minute, snapshot thinning has about 14 million rows a
-- day to look at; 20,000 ids a minute is 28.8 million a day.
select cron.schedule('retention-prune', '* * * * *', $$ select private.prune_operational() $$);

-- Housekeeping, hourly: pg_net responses after 6 h (as pg_net does); webhook deliveries, snapshots, runs and
-- repairs by the prune above (bounded; a disputed payment's deliveries kept); rejected webhook posts after 30
-- days (20261202000420: the row cap bounds them sooner under a flood); rate-limit windows (20261202000410)
-- after a day; cron's own run log after 7 days.
select cron.schedule('cleanup', '17 * * * *', $$
  delete from net._http_response where created < now() - interval '6 hours';
  select private.prune_operational();
  delete from private.rejected_webhook_posts where received_at < now() - interval '30 days';
  delete from private.rate_limit_hits where window_start < now() - interval '1 day';
  delete from cron.job_run_details where end_time < now() - interval '7 days';
$$);

revoke execute on all functions in schema private from public, anon, authenticated;
grant execute on all functions in schema private to service_role;
