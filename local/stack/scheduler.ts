/**
 * The local stand-in for Supabase Cron: runs the jobs defined in private.scheduled_jobs (the
 * same rows pg_cron runs on a hosted project) on their schedules, for `npm start`.
 *
 * A SQL job runs as `select public.run_job(name)`, which runs it in a subtransaction and
 * records the run. A function job is POSTed to the gateway's function URL with the service
 * role key (what pg_net does on a hosted project) and recorded with public.record_job_run.
 * One run per job at a time (a run due while the last one is still going is skipped); a
 * failing job is recorded and logged, never thrown out of the scheduler.
 */
import { Cron } from "croner";
import pg from "pg";

export interface ScheduledJob {
  name: string;
  schedule: string;
  description: string;
  kind: "sql" | "function";
  functionPath: string | null;
  enabled: boolean;
}

export interface JobRun {
  job: string;
  outcome: "succeeded" | "failed" | "requested" | "skipped";
  started_at: string;
  duration_ms: number;
  error: string | null;
  result: unknown;
}

/** Where function jobs are sent: the gateway's `/functions/v1` and the service role key. */
export interface FunctionTarget {
  functionsUrl: string;
  serviceRoleKey: string;
}

export interface SchedulerOptions extends FunctionTarget {
  /** A database login that passes private.require_service (the local superuser). */
  databaseUrl: string;
  /** Schedules that replace a job's own, by job name (tests run jobs every second or two). */
  scheduleOverrides?: Record<string, string>;
  /** Runs only these jobs (tests); default every enabled job. */
  only?: string[];
  /** One line per failure (and per recovery); default console.error. */
  log?: (line: string) => void;
}

export interface RunningScheduler {
  jobs: ScheduledJob[];
  stop(): Promise<void>;
}

/** How long a function job may take before it is recorded as failed. */
const FUNCTION_TIMEOUT_MS = 60_000;

/** The scheduled jobs, in name order. */
export async function loadJobs(db: pg.Pool | pg.Client): Promise<ScheduledJob[]> {
  const { rows } = await db.query<ScheduledJob>(
    `select name, schedule, description, kind, function_path as "functionPath", enabled
       from private.scheduled_jobs order by name`,
  );
  return rows;
}

/**
 * A croner timer for one of the two schedule forms pg_cron accepts: five-field cron, read in
 * UTC as pg_cron does, or 'N seconds' (every N seconds).
 */
export function scheduleTimer(schedule: string, run: () => Promise<void>): Cron {
  const seconds = /^(\d+) seconds$/.exec(schedule);
  if (seconds) return new Cron("* * * * * *", { interval: Number(seconds[1]), timezone: "UTC" }, run);
  if (schedule.trim().split(/\s+/).length !== 5) throw new Error(`unsupported schedule "${schedule}": use five-field cron or "N seconds"`);
  return new Cron(schedule, { timezone: "UTC" }, run);
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** POSTs to a function job's route and records the run; the answer decides the outcome. */
async function runFunctionJob(db: pg.Pool | pg.Client, job: ScheduledJob, target: FunctionTarget, signal?: AbortSignal): Promise<JobRun> {
  const startedAt = new Date();
  const started = performance.now();
  let outcome: JobRun["outcome"] = "succeeded";
  let error: string | null = null;
  let result: unknown = null;
  try {
    const response = await fetch(`${target.functionsUrl.replace(/\/$/, "")}/${job.functionPath}`, {
      method: "POST",
      headers: {
        Authorization: `Bearer ${target.serviceRoleKey}`,
        apikey: target.serviceRoleKey,
        "Content-Type": "application/json",
      },
      body: JSON.stringify({ job: job.name }),
      signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(FUNCTION_TIMEOUT_MS)]) : AbortSignal.timeout(FUNCTION_TIMEOUT_MS),
    });
    const text = await response.text();
    try {
      result = text ? JSON.parse(text) : null;
    } catch {
      result = { body: text.slice(0, 1000) };
    }
    if (!response.ok) {
      outcome = "failed";
      error = `HTTP ${response.status}: ${text.slice(0, 500)}`;
      result = null;
    }
  } catch (failure) {
    outcome = "failed";
    error = message(failure);
  }
  const durationMs = Math.round(performance.now() - started);
  await db.query("select public.record_job_run($1, $2, $3, $4, $5, $6)", [
    job.name, startedAt, durationMs, outcome, error, result === null ? null : JSON.stringify(result),
  ]);
  return { job: job.name, outcome, started_at: startedAt.toISOString(), duration_ms: durationMs, error, result };
}

/**
 * Runs one job now, as the schedule would, and returns its recorded run. SQL jobs through
 * public.run_job; function jobs against `target` (the running gateway). PT404 (thrown) for a
 * job that is not defined.
 */
export async function runJobNow(db: pg.Pool | pg.Client, name: string, target: FunctionTarget | undefined, signal?: AbortSignal): Promise<JobRun> {
  const { rows } = await db.query<ScheduledJob>(
    `select name, schedule, description, kind, function_path as "functionPath", enabled
       from private.scheduled_jobs where name = $1`,
    [name],
  );
  const job = rows[0];
  if (job?.kind === "function") {
    if (!target) throw new Error(`job ${name} calls the Edge Function ${job.functionPath}: it needs the running stack (SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY)`);
    return runFunctionJob(db, job, target, signal);
  }
  // Unknown names reach run_job too, which answers PT404.
  const result = await db.query<{ run: JobRun }>("select public.run_job($1) as run", [name]);
  return result.rows[0]!.run;
}

/**
 * How many of the jobs pg_cron already runs in this database (a hosted project given as
 * DATABASE_URL): the local scheduler stays off there rather than run the schedule twice.
 */
export async function jobsOnPgCron(databaseUrl: string): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const installed = await client.query("select 1 from pg_extension where extname = 'pg_cron'");
    if (installed.rowCount === 0) return 0;
    const { rows } = await client.query<{ on_cron: number }>(
      "select count(*)::int as on_cron from cron.job where command like 'select public.run_job(%'",
    );
    return rows[0]?.on_cron ?? 0;
  } finally {
    await client.end();
  }
}

export async function startScheduler(options: SchedulerOptions): Promise<RunningScheduler> {
  const log = options.log ?? ((line: string) => console.error(line));
  // One connection per job that can run at once is plenty; runs of one job never overlap.
  const pool = new pg.Pool({ connectionString: options.databaseUrl, max: 4 });
  // A dropped connection is reported by the next query; an idle client's error must not crash us.
  pool.on("error", (error) => log(`scheduler: database connection lost: ${error.message}`));
  const stopping = new AbortController();
  const inFlight = new Set<Promise<void>>();
  const timers: Cron[] = [];

  let jobs: ScheduledJob[];
  try {
    jobs = (await loadJobs(pool)).filter((job) => (options.only ? options.only.includes(job.name) : job.enabled));
  } catch (error) {
    await pool.end();
    throw error;
  }

  for (const job of jobs) {
    let running = false;
    let lastFailure: string | null = null;
    const tick = async (): Promise<void> => {
      if (running || stopping.signal.aborted) return;
      running = true;
      const done = (async () => {
        try {
          const run = await runJobNow(pool, job.name, options, stopping.signal);
          // Log a failure once, and the recovery, rather than every five seconds.
          if (run.outcome === "failed" && run.error !== lastFailure) log(`scheduler: job ${job.name} failed: ${run.error}`);
          if (run.outcome !== "failed" && lastFailure !== null) log(`scheduler: job ${job.name} ${run.outcome} again`);
          lastFailure = run.outcome === "failed" ? run.error : null;
        } catch (error) {
          // Recording itself failed (database down, stopping): say so and carry on.
          if (!stopping.signal.aborted && message(error) !== lastFailure) log(`scheduler: job ${job.name} could not run: ${message(error)}`);
          lastFailure = message(error);
        } finally {
          running = false;
        }
      })();
      inFlight.add(done);
      await done;
      inFlight.delete(done);
    };
    try {
      timers.push(scheduleTimer(options.scheduleOverrides?.[job.name] ?? job.schedule, tick));
    } catch (error) {
      log(`scheduler: job ${job.name} is not scheduled: ${message(error)}`);
    }
  }

  return {
    jobs,
    stop: async () => {
      for (const timer of timers) timer.stop();
      stopping.abort();
      await Promise.allSettled([...inFlight]);
      await pool.end();
    },
  };
}
