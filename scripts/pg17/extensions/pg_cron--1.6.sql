-- Stand-in for pg_cron 1.6 in the PGlite run (scripts/pg17): the same relations and the schedule/unschedule
-- signatures, recording jobs the way pg_cron does (one row per job name and user, upserted). Nothing runs
-- the jobs: the pgTAP files check what is scheduled and run a job's command themselves.
create schema cron;

create sequence cron.jobid_seq;
create table cron.job (
  jobid bigint primary key default nextval('cron.jobid_seq'),
  schedule text not null,
  command text not null,
  nodename text not null default 'localhost',
  nodeport integer not null default coalesce(inet_server_port(), 5432),
  database text not null default current_database(),
  username text not null default current_user,
  active boolean not null default true,
  jobname text,
  constraint jobname_username_uniq unique (jobname, username)
);
alter table cron.job enable row level security;
create policy cron_job_policy on cron.job using (username = current_user);

create sequence cron.runid_seq;
create table cron.job_run_details (
  jobid bigint,
  runid bigint primary key default nextval('cron.runid_seq'),
  job_pid integer,
  database text,
  username text,
  command text,
  status text,
  return_message text,
  start_time timestamptz,
  end_time timestamptz
);
alter table cron.job_run_details enable row level security;
create policy cron_job_run_details_policy on cron.job_run_details using (username = current_user);

-- pg_cron accepts five cron fields, a @-shortcut, or "N seconds" (1-59); anything else is refused.
create function cron._check_schedule(p_schedule text) returns void language plpgsql immutable as $$
begin
  if p_schedule is null or not (
       p_schedule ~* '^\s*@(yearly|annually|monthly|weekly|daily|hourly|reboot)\s*$'
    or p_schedule ~* '^\s*([1-9]|[1-5][0-9])\s+seconds?\s*$'
    or p_schedule ~* '^\s*[0-9a-z*,/$-]+(\s+[0-9a-z*,/$-]+){4}\s*$') then
    raise exception 'invalid schedule: %', p_schedule using errcode = 'invalid_parameter_value',
      hint = 'Use cron format (e.g. 5 4 * * *), or interval format ''[1-59] seconds''';
  end if;
end
$$;

-- session_user stands for pg_cron's caller (GetUserId() in C; a SQL security definer sees only its owner).
-- A job without a name never conflicts (NULLs are distinct in the unique constraint), as in pg_cron.
create function cron.schedule(job_name text, schedule text, command text) returns bigint
language plpgsql security definer set search_path = '' as $$
declare
  v_jobid bigint;
begin
  perform cron._check_schedule(schedule);
  insert into cron.job (jobname, schedule, command, username)
  values (job_name, schedule, command, session_user)
  on conflict (jobname, username) do update set schedule = excluded.schedule, command = excluded.command
  returning jobid into v_jobid;
  return v_jobid;
end
$$;

create function cron.schedule(schedule text, command text) returns bigint language sql as $$
  select cron.schedule(null::text, schedule, command)
$$;

-- Deletes the caller's job given by id or by name; pg_cron raises when there is none.
create function cron._unschedule(p_job_id bigint, p_job_name text) returns boolean
language plpgsql security definer set search_path = '' as $$
begin
  delete from cron.job j
   where (j.jobid = p_job_id or j.jobname = p_job_name) and j.username = session_user;
  if not found then
    raise exception 'could not find valid entry for job %', coalesce(p_job_id::text, quote_literal(p_job_name));
  end if;
  return true;
end
$$;

create function cron.unschedule(job_id bigint) returns boolean language sql as $$ select cron._unschedule(job_id, null) $$;
create function cron.unschedule(job_name text) returns boolean language sql as $$ select cron._unschedule(null, job_name) $$;

-- pg_cron's own grants, then what hosted Supabase's pg_cron after-create script gives postgres: everything
-- in cron except writing cron.job directly (jobs change only through schedule/unschedule).
grant select on cron.job to public;
grant select, delete on cron.job_run_details to public;
grant usage on schema cron to postgres with grant option;
grant all on all functions in schema cron to postgres with grant option;
grant all privileges on all tables in schema cron to postgres with grant option;
revoke all on table cron.job from postgres;
grant select on table cron.job to postgres with grant option;
