-- Scheduled jobs: the one definition of every job (pg_cron and the local scheduler read it),
-- run_job running any job on demand and recording the run, a failing job recorded rather
-- than raised, and who may run jobs or read their runs.

begin;
select plan(31);

-- ============================================================================
-- Setup (as the table owner)
-- ============================================================================

select tests.create_user('olga@jobs.test');
insert into public.organizations (id, name) values ('00000000-0000-4000-8000-0000000001b1', 'Scheduled');
insert into public.organization_members (organization_id, user_id, role)
values ('00000000-0000-4000-8000-0000000001b1', tests.get_user_id('olga@jobs.test'), 'owner');
select tests.add_lot('00000000-0000-4000-8000-0000000001b1', 'subscription', 25, now() - interval '1 minute');

-- ============================================================================
-- The definition
-- ============================================================================

select results_eq(
  $$ select name, schedule, kind, coalesce(sql_command, function_path), enabled
       from private.scheduled_jobs order by name $$,
  $$ values ('auto_top_up', '10 seconds', 'function', 'auto-top-up/run', true),
            ('deliver_notifications', '5 seconds', 'function', 'notifications/deliver', true),
            ('detect_unusual_usage', '0 * * * *', 'sql', 'select public.detect_unusual_usage()', true),
            ('expire_credits', '* * * * *', 'sql', 'select public.expire_credits()', true),
            ('expire_reservations', '* * * * *', 'sql', 'select public.expire_reservations()', true),
            ('prune_job_runs', '17 3 * * *', 'sql', 'select private.prune_job_runs()', true),
            ('reconcile_stripe', '41 4 * * *', 'function', 'stripe-webhook/reconcile', true),
            ('stripe_inbox_sweep', '* * * * *', 'function', 'stripe-webhook/sweep', true) $$,
  'every job is defined once with its schedule: expiry sweeps (credits, reservations) and inbox sweep every minute, unusual usage hourly, notifications every 5 seconds, auto top-up every 10 seconds, pruning and reconciliation daily'
);
select throws_ok(
  $$ insert into private.scheduled_jobs (name, schedule, description, kind, sql_command)
     values ('bad_schedule', 'every minute', 'x', 'sql', 'select 1') $$,
  '23514', null, 'a schedule neither cron nor "N seconds" is refused');
select throws_ok(
  $$ insert into private.scheduled_jobs (name, schedule, description, kind, sql_command)
     values ('too_fast', '0 seconds', 'x', 'sql', 'select 1') $$,
  '23514', null, 'pg_cron''s seconds form runs from 1 to 59 seconds');
select throws_ok(
  $$ insert into private.scheduled_jobs (name, schedule, description, kind, function_path)
     values ('sql_without_command', '* * * * *', 'x', 'sql', 'health') $$,
  '23514', null, 'a SQL job needs a command and no function');

-- Runs recorded here start within this transaction (started_at >= now()); earlier runs in
-- the database are not this file's.

-- Test jobs: one that fails, one that calls a function.
insert into private.scheduled_jobs (name, schedule, description, kind, sql_command, function_path) values
  ('failing_for_test', '* * * * *', 'Divides by zero.', 'sql', 'select 1 / 0 as never', null),
  ('function_for_test', '* * * * *', 'Calls a function.', 'function', null, 'health');

-- ============================================================================
-- Service role
-- ============================================================================

select tests.authenticate_as_service_role();

select is(public.run_job('expire_credits') ->> 'outcome', 'succeeded', 'the service role runs a job on demand and it succeeds');
select is((select count(*)::int from public.credit_transactions
            where organization_id = '00000000-0000-4000-8000-0000000001b1' and kind = 'expiry'), 1,
  'the job did its work: the expired lot has its expiry ledger row');
select is((select result from public.job_runs where job_name = 'expire_credits' and started_at >= now()), '{"expire_credits": 1}'::jsonb,
  'the run is recorded with the job''s result');
select ok((select outcome = 'succeeded' and error is null and duration_ms >= 0 and started_at <= clock_timestamp()
             from public.job_runs where job_name = 'expire_credits' and started_at >= now()),
  'the recorded run has its outcome, start and a duration');

select lives_ok($$ select public.run_job('failing_for_test') $$, 'a failing SQL job does not raise out of run_job');
select is((select outcome || ' / ' || error from public.job_runs where job_name = 'failing_for_test'),
  'failed / 22012: division by zero', 'the failure is recorded with its SQLSTATE and message');
select is(public.run_job('detect_unusual_usage') ->> 'outcome', 'succeeded',
  'another job runs normally after a failure in the same transaction');
select is(jsonb_typeof(public.run_job('detect_unusual_usage') -> 'result' -> 'detect_unusual_usage'), 'number',
  'detect_unusual_usage runs with its defaults and reports how many organizations it alerted');

select throws_ok($$ select public.run_job('no_such_job') $$, 'PT404', null, 'an unknown job is refused');
select throws_ok($$ select public.run_job('function_for_test') $$, '55000', null,
  'a function job without pg_net raises a clear error (the local scheduler calls functions itself)');
select throws_ok($$ select public.schedule_jobs() $$, '55000', null,
  'scheduling on pg_cron without the extension raises a clear error');

select isnt(public.record_job_run('function_for_test', now(), 12, 'succeeded', null, '{"ok": true}'), null,
  'the service role records a function job''s run');
select is((select outcome || ' ' || duration_ms from public.job_runs where job_name = 'function_for_test'), 'succeeded 12',
  'as given');
select throws_ok($$ select public.record_job_run('function_for_test', now(), 1, 'failed', null, null) $$, '22023', null,
  'a failed run needs its error');
select throws_ok($$ select public.record_job_run('function_for_test', now(), 1, 'done', null, null) $$, '22023', null,
  'an unknown outcome is refused');
select throws_ok($$ select public.record_job_run('no_such_job', now(), 1, 'succeeded', null, null) $$, 'PT404', null,
  'a run of an unknown job is refused');
select throws_ok($$ insert into public.job_runs (job_name, started_at, duration_ms, outcome) values ('expire_credits', now(), 0, 'succeeded') $$,
  '42501', null, 'the service role cannot write runs directly');

select public.record_job_run('expire_credits', now() - interval '8 days', 5, 'succeeded');
select is(public.run_job('prune_job_runs') -> 'result', '{"prune_job_runs": 1}'::jsonb,
  'the pruning job deletes runs older than 7 days');
select is((select count(*)::int from public.job_runs where started_at < now() - interval '7 days'), 0,
  'and none is left');
select ok((select count(*) from public.job_runs) >= 5, 'the service role reads the runs');

-- ============================================================================
-- Owner
-- ============================================================================

select tests.authenticate_as('olga@jobs.test');
select throws_ok($$ select public.run_job('expire_credits') $$, '42501', null, 'an owner cannot run jobs');
select throws_ok($$ select count(*) from public.job_runs $$, '42501', null, 'nor read their runs');
select throws_ok($$ select public.record_job_run('expire_credits', now(), 1, 'succeeded', null, null) $$, '42501', null,
  'nor record runs');
select throws_ok($$ select public.schedule_jobs() $$, '42501', null, 'nor schedule them');
select throws_ok($$ select count(*) from private.scheduled_jobs $$, '42501', null, 'nor read the definition');

-- ============================================================================
-- Anon
-- ============================================================================

select tests.clear_authentication();
select throws_ok($$ select public.run_job('expire_credits') $$, '42501', null, 'anon cannot run jobs');
select throws_ok($$ select count(*) from public.job_runs $$, '42501', null, 'nor read their runs');

select * from finish();
rollback;
