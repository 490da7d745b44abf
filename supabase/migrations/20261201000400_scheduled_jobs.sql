-- Scheduled work, defined once: every job the product runs by itself, its schedule and what it
-- runs live in private.scheduled_jobs. On hosted Supabase pg_cron runs them (this migration
-- schedules them when the extension is installed; public.schedule_jobs() does it later);
-- under `npm start` the local scheduler reads the same table. Every run is recorded in
-- public.job_runs, so an operator can see that the schedule is alive. Adding a job is one
-- insert in a later migration (and, on hosted projects, `select public.schedule_jobs()`,
-- which that migration can call the same way this one does).

-- ============================================================================
-- Tables
-- ============================================================================

create table private.scheduled_jobs (
  name text primary key check (name ~ '^[a-z][a-z0-9_]{0,62}$'),
  -- The two forms both pg_cron and the local scheduler understand: five-field cron (UTC, as
  -- pg_cron's default cron.timezone) or pg_cron's sub-minute interval '[1-59] seconds'.
  schedule text not null check (
    schedule ~ '^([1-9]|[1-5][0-9]) seconds$'
    or schedule ~ '^[0-9*/,-]+( [0-9A-Za-z*/,-]+){4}$'),
  description text not null check (char_length(description) between 1 and 500),
  kind text not null check (kind in ('sql', 'function')),
  sql_command text,
  function_path text check (function_path ~ '^[a-z0-9][a-z0-9_/-]*$'),
  -- A disabled job stays defined (and runnable on demand) but is not scheduled.
  enabled boolean not null default true,
  check ((kind = 'sql' and sql_command is not null and function_path is null)
      or (kind = 'function' and function_path is not null and sql_command is null))
);
-- No policies: read by run_job/schedule_jobs (as the owner) and the local scheduler (a
-- database login); written only by migrations.
alter table private.scheduled_jobs enable row level security;
revoke all on private.scheduled_jobs from public, anon, authenticated;
grant select on private.scheduled_jobs to service_role;

comment on table private.scheduled_jobs is
  'Every job the product runs by itself: pg_cron (hosted) and the local scheduler (npm start) both read it.';
comment on column private.scheduled_jobs.schedule is
  'Five-field cron in UTC (''* * * * *'') or pg_cron''s ''N seconds'' (1 to 59).';
comment on column private.scheduled_jobs.sql_command is
  'kind sql: a query (select ...) run by public.run_job; its first row is recorded as the run''s result.';
comment on column private.scheduled_jobs.function_path is
  'kind function: the Edge Function route under /functions/v1/, POSTed with the service role key.';

create table public.job_runs (
  id bigint generated always as identity primary key,
  -- No foreign key on purpose: a run's history outlives a job removed from the schedule
  -- until it is pruned. run_job and record_job_run accept only defined jobs.
  job_name text not null,
  started_at timestamptz not null,
  duration_ms integer not null check (duration_ms >= 0),
  outcome text not null check (outcome in ('succeeded', 'failed', 'requested', 'skipped')),
  error text,
  result jsonb,
  check ((outcome = 'failed') = (error is not null))
);
alter table public.job_runs enable row level security;
-- No policies: members never see the schedule's internals; operators get a view later.
revoke all on public.job_runs from public, anon, authenticated;
revoke insert, update, delete, truncate on public.job_runs from service_role;
grant select on public.job_runs to service_role;

comment on table public.job_runs is
  'One row per run of a scheduled job (kept 7 days). Service role only.';
comment on column public.job_runs.outcome is
  'succeeded / failed; requested: a function job handed to pg_net (its answer is in net._http_response); skipped: the previous run of the job was still going.';
comment on column public.job_runs.error is 'SQLSTATE and message, or the HTTP status and body, of a failed run.';
comment on column public.job_runs.result is 'A SQL job''s first result row, or a function''s JSON answer.';

create index job_runs_job_started_idx on public.job_runs (job_name, started_at desc);
create index job_runs_started_idx on public.job_runs (started_at);

-- ============================================================================
-- Functions
-- ============================================================================

/**
 * Records one run. Service role only: the local scheduler records its function jobs with it
 * (run_job records the runs it makes itself). 22023 for an unknown outcome, PT404 for a job
 * that is not defined.
 */
create function public.record_job_run(
  p_name text,
  p_started_at timestamptz,
  p_duration_ms integer,
  p_outcome text,
  p_error text default null,
  p_result jsonb default null
) returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_id bigint;
begin
  perform private.require_service();
  if not exists (select 1 from private.scheduled_jobs j where j.name = p_name) then
    raise exception 'no scheduled job is named %', p_name using errcode = 'PT404';
  end if;
  if p_outcome is null or p_outcome not in ('succeeded', 'failed', 'requested', 'skipped')
     or p_started_at is null or p_duration_ms is null or p_duration_ms < 0
     or (p_outcome = 'failed') <> (p_error is not null) then
    raise exception 'a run needs a start, a duration of zero or more and an outcome (succeeded, failed with an error, requested, skipped)'
      using errcode = '22023';
  end if;
  insert into public.job_runs (job_name, started_at, duration_ms, outcome, error, result)
  values (p_name, p_started_at, p_duration_ms, p_outcome, p_error, p_result)
  returning id into v_id;
  return v_id;
end;
$$;
comment on function public.record_job_run(text, timestamptz, integer, text, text, jsonb) is
  'Service role: records a run of a scheduled job (the local scheduler''s function jobs).';
revoke all on function public.record_job_run(text, timestamptz, integer, text, text, jsonb) from public, anon, authenticated;
grant execute on function public.record_job_run(text, timestamptz, integer, text, text, jsonb) to service_role;

/** Milliseconds from p_started_at to now (the wall clock, not the transaction's start). */
create function private.elapsed_ms(p_started_at timestamptz) returns integer
language sql
volatile
set search_path = ''
as $$
  select greatest(0, round(extract(epoch from (pg_catalog.clock_timestamp() - p_started_at)) * 1000))::integer
$$;
revoke all on function private.elapsed_ms(timestamptz) from public;

/**
 * Asks pg_net to POST to an Edge Function route, with the project URL and the service role
 * key from Supabase Vault (secrets `project_url` and `service_role_key`): Supabase's
 * documented way to call an Edge Function from pg_cron. Returns pg_net's request id; the
 * answer lands in net._http_response. 55000 when pg_net, Vault or a secret is missing.
 */
create function private.request_function(p_function_path text, p_job_name text) returns bigint
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_url text;
  v_key text;
  v_request_id bigint;
begin
  if not exists (select 1 from pg_catalog.pg_extension where extname = 'pg_net') then
    raise exception 'job % calls an Edge Function, which needs the pg_net extension: create extension pg_net with schema extensions (or run it with the local scheduler)', p_job_name
      using errcode = '55000';
  end if;
  if pg_catalog.to_regclass('vault.decrypted_secrets') is null then
    raise exception 'job % needs Supabase Vault for the project URL and service role key', p_job_name
      using errcode = '55000';
  end if;
  execute $q$select (select s.decrypted_secret from vault.decrypted_secrets s where s.name = 'project_url'),
                    (select s.decrypted_secret from vault.decrypted_secrets s where s.name = 'service_role_key')$q$
    into v_url, v_key;
  if v_url is null or v_key is null then
    raise exception 'job % needs the Vault secrets project_url and service_role_key: select vault.create_secret(''https://<ref>.supabase.co'', ''project_url''); select vault.create_secret(''<service role key>'', ''service_role_key'');', p_job_name
      using errcode = '55000';
  end if;
  -- Dynamic, so this function is created (and the migration passes) where pg_net is absent.
  execute $q$select net.http_post(
      url := $1,
      headers := jsonb_build_object('Content-Type', 'application/json', 'Authorization', 'Bearer ' || $2),
      body := jsonb_build_object('job', $3),
      timeout_milliseconds := 60000)$q$
    into v_request_id
    using pg_catalog.rtrim(v_url, '/') || '/functions/v1/' || p_function_path, v_key, p_job_name;
  return v_request_id;
end;
$$;
revoke all on function private.request_function(text, text) from public;

/**
 * Runs one scheduled job now and records the run; returns the run as
 * {"job", "outcome", "started_at", "duration_ms", "error", "result"}. Service role only
 * (42501); PT404 for a job that is not defined.
 *
 * A SQL job runs in a subtransaction: its failure is rolled back and recorded as `failed`
 * with its SQLSTATE and message, and run_job itself returns normally, so whoever runs the
 * schedule carries on with the other jobs. A function job is handed to pg_net (`requested`);
 * without pg_net it raises 55000 (the local scheduler calls functions itself). One run per
 * job at a time: when the previous run still holds the job's lock, this one is recorded as
 * `skipped` and does nothing.
 */
create function public.run_job(p_name text) returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_job private.scheduled_jobs;
  v_started_at timestamptz := pg_catalog.clock_timestamp();
  v_outcome text;
  v_error text;
  v_result jsonb;
  v_state text;
  v_message text;
begin
  perform private.require_service();
  select * into v_job from private.scheduled_jobs j where j.name = p_name;
  if not found then
    raise exception 'no scheduled job is named %', p_name using errcode = 'PT404';
  end if;

  -- Held until the caller's transaction ends (pg_cron runs each job in its own). The key is
  -- (hashtext('scheduled_jobs'), hashtext(name)).
  if not pg_catalog.pg_try_advisory_xact_lock(pg_catalog.hashtext('scheduled_jobs'), pg_catalog.hashtext(v_job.name)) then
    v_outcome := 'skipped';
    v_result := jsonb_build_object('reason', 'the previous run of this job is still going');
  elsif v_job.kind = 'function' then
    v_result := jsonb_build_object('request_id', private.request_function(v_job.function_path, v_job.name));
    v_outcome := 'requested';
  else
    begin
      execute 'select pg_catalog.to_jsonb(r) from (' || v_job.sql_command || ') r limit 1' into v_result;
      v_outcome := 'succeeded';
    exception when others then
      get stacked diagnostics v_state = returned_sqlstate, v_message = message_text;
      v_outcome := 'failed';
      v_error := v_state || ': ' || v_message;
      v_result := null;
    end;
  end if;

  insert into public.job_runs (job_name, started_at, duration_ms, outcome, error, result)
  values (v_job.name, v_started_at, private.elapsed_ms(v_started_at), v_outcome, v_error, v_result)
  returning jsonb_build_object('job', job_name, 'outcome', outcome, 'started_at', started_at,
                               'duration_ms', duration_ms, 'error', error, 'result', result)
    into v_result;
  return v_result;
end;
$$;
comment on function public.run_job(text) is
  'Service role: runs a scheduled job now and records the run; a failing SQL job is recorded, not raised.';
revoke all on function public.run_job(text) from public, anon, authenticated;
grant execute on function public.run_job(text) to service_role;

/** Deletes runs older than p_keep; returns how many. Run by the prune_job_runs job. */
create function private.prune_job_runs(p_keep interval default interval '7 days') returns integer
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_count integer;
begin
  delete from public.job_runs r where r.started_at < pg_catalog.now() - p_keep;
  get diagnostics v_count = row_count;
  return v_count;
end;
$$;
revoke all on function private.prune_job_runs(interval) from public;

/**
 * (Re)creates the pg_cron entries from private.scheduled_jobs: one cron job per enabled job,
 * named as the job, running `select public.run_job('<name>')`; entries of jobs since removed
 * or disabled are unscheduled. Function jobs are scheduled only when pg_net is installed.
 * Returns {"scheduled": [...], "not_scheduled": [{"job", "reason"}]}. 55000 without pg_cron.
 */
create function private.schedule_jobs_on_cron() returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
declare
  v_job private.scheduled_jobs;
  v_stale text;
  v_has_net boolean := exists (select 1 from pg_catalog.pg_extension where extname = 'pg_net');
  v_scheduled jsonb := '[]';
  v_not_scheduled jsonb := '[]';
begin
  if not exists (select 1 from pg_catalog.pg_extension where extname = 'pg_cron') then
    raise exception 'pg_cron is not installed: enable Cron (Dashboard > Integrations > Cron, or create extension pg_cron with schema pg_catalog), then select public.schedule_jobs()'
      using errcode = '55000';
  end if;
  -- Dynamic SQL throughout: the cron schema exists only where pg_cron does.
  for v_stale in execute
    $q$select c.jobname from cron.job c
        where c.command like 'select public.run_job(%'
          and not exists (select 1 from private.scheduled_jobs j
                           where j.name = c.jobname and j.enabled and (j.kind = 'sql' or $1))$q$
    using v_has_net
  loop
    execute 'select cron.unschedule($1)' using v_stale;
  end loop;
  for v_job in select * from private.scheduled_jobs j order by j.name loop
    if not v_job.enabled then
      v_not_scheduled := v_not_scheduled || jsonb_build_object('job', v_job.name, 'reason', 'disabled');
    elsif v_job.kind = 'function' and not v_has_net then
      v_not_scheduled := v_not_scheduled || jsonb_build_object('job', v_job.name,
        'reason', 'calls an Edge Function: needs pg_net (create extension pg_net with schema extensions)');
    else
      execute 'select cron.schedule($1, $2, $3)'
        using v_job.name, v_job.schedule, pg_catalog.format('select public.run_job(%L)', v_job.name);
      v_scheduled := v_scheduled || pg_catalog.to_jsonb(v_job.name);
    end if;
  end loop;
  return jsonb_build_object('scheduled', v_scheduled, 'not_scheduled', v_not_scheduled);
end;
$$;
revoke all on function private.schedule_jobs_on_cron() from public;

/** Service role: private.schedule_jobs_on_cron for a project that enabled pg_cron after migrating. */
create function public.schedule_jobs() returns jsonb
language plpgsql
security definer
set search_path = ''
as $$
begin
  perform private.require_service();
  return private.schedule_jobs_on_cron();
end;
$$;
comment on function public.schedule_jobs() is
  'Service role: (re)creates the pg_cron entries from the scheduled jobs; run it after enabling pg_cron (and pg_net).';
revoke all on function public.schedule_jobs() from public, anon, authenticated;
grant execute on function public.schedule_jobs() to service_role;

-- ============================================================================
-- The jobs
-- ============================================================================

-- Reservation expiry (within a minute), auto top-up and reconciliation arrive with their
-- issues, each as one insert here in a later migration.
insert into private.scheduled_jobs (name, schedule, description, kind, sql_command, function_path) values
  ('expire_credits', '* * * * *',
   'Writes the expiry ledger rows of lots whose time is up (within a minute of their expiry).',
   'sql', 'select public.expire_credits()', null),
  ('stripe_inbox_sweep', '* * * * *',
   'Applies Stripe events verified and stored but left unapplied (background task killed, deploy, crash).',
   'function', null, 'stripe-webhook/sweep'),
  ('detect_unusual_usage', '0 * * * *',
   'Alerts organizations whose last-hour consumption is over 5 times their 7-day hourly average (and at least 100 credits).',
   'sql', 'select public.detect_unusual_usage()', null),
  ('deliver_notifications', '5 seconds',
   'Delivers pending notifications: signed webhooks to BILLING_WEBHOOK_URL and alert emails.',
   'function', null, 'notifications/deliver'),
  ('prune_job_runs', '17 3 * * *',
   'Deletes job runs older than 7 days.',
   'sql', 'select private.prune_job_runs()', null);

-- ============================================================================
-- pg_cron (hosted Supabase, when Cron is enabled)
-- ============================================================================

do $$
begin
  if exists (select 1 from pg_catalog.pg_extension where extname = 'pg_cron') then
    perform private.schedule_jobs_on_cron();
  end if;
end;
$$;
