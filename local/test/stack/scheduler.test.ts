/**
 * The local scheduler against the test database, with no request made: it runs the jobs
 * defined in private.scheduled_jobs on their schedules (made fast here with overrides), so
 * expired credits get their expiry rows and a usage burst raises an alert by themselves; a
 * failing job is recorded while the others keep running; function jobs are POSTed with the
 * service role key, one at a time.
 */
import assert from "node:assert/strict";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { after, before, describe, test } from "node:test";
import type pg from "pg";
import { consumeCredits, createOrganization, grantCredits, testPool } from "../../../supabase/tests/support/credits.ts";
import { startScheduler, type RunningScheduler } from "../../stack/scheduler.ts";
import { eventually } from "./processes.ts";

const SERVICE_ROLE_KEY = "service-role-key-for-the-scheduler-test";
const quiet = () => {};

let pool: pg.Pool;
before(() => {
  pool = testPool(6);
});
after(async () => {
  await pool.end();
});

/** Adds a job for one test, removing it (and its runs) afterwards. */
async function withJob(
  job: { name: string; kind: "sql"; sql: string } | { name: string; kind: "function"; path: string },
  body: () => Promise<void>,
): Promise<void> {
  await pool.query(
    `insert into private.scheduled_jobs (name, schedule, description, kind, sql_command, function_path)
     values ($1, '0 0 1 1 *', 'Added by the scheduler test.', $2, $3, $4)`,
    [job.name, job.kind, job.kind === "sql" ? job.sql : null, job.kind === "function" ? job.path : null],
  );
  try {
    await body();
  } finally {
    await pool.query("delete from private.scheduled_jobs where name = $1", [job.name]);
    await pool.query("delete from public.job_runs where job_name = $1", [job.name]);
  }
}

function scheduler(only: string[], overrides: Record<string, string>, functionsUrl = "http://127.0.0.1:9/functions/v1"): Promise<RunningScheduler> {
  return startScheduler({
    databaseUrl: process.env.TEST_DATABASE_URL!,
    functionsUrl,
    serviceRoleKey: SERVICE_ROLE_KEY,
    only,
    scheduleOverrides: overrides,
    log: quiet,
  });
}

describe("the local scheduler", () => {
  test("reads every job from private.scheduled_jobs", async () => {
    const running = await startScheduler({ databaseUrl: process.env.TEST_DATABASE_URL!, functionsUrl: "http://127.0.0.1:9", serviceRoleKey: SERVICE_ROLE_KEY, log: quiet });
    try {
      assert.deepEqual(
        running.jobs.map((job) => `${job.name} ${job.schedule}`),
        ["auto_top_up 10 seconds", "deliver_notifications 5 seconds", "detect_unusual_usage 0 * * * *", "expire_credits * * * * *", "expire_reservations * * * * *", "prune_job_runs 17 3 * * *", "reconcile_stripe 41 4 * * *", "stripe_inbox_sweep * * * * *"],
      );
    } finally {
      await running.stop();
    }
  });

  test("a lot that expires gets its expiry ledger row with no request made", async () => {
    const organizationId = await createOrganization(pool, "scheduler-expiry");
    const { rows } = await pool.query<{ expires_at: string }>("select (clock_timestamp() + interval '3 seconds')::text as expires_at");
    await grantCredits(pool, organizationId, 40, "subscription", rows[0]!.expires_at, "in_scheduler_expiry");
    const running = await scheduler(["expire_credits"], { expire_credits: "1 seconds" });
    try {
      const expiry = await eventually("the expiry ledger row", async () => {
        const { rows } = await pool.query<{ amount: number; balance_after: number }>(
          "select amount, balance_after from public.credit_transactions where organization_id = $1 and kind = 'expiry'",
          [organizationId],
        );
        return rows[0];
      });
      assert.deepEqual(expiry, { amount: -40, balance_after: 0 }, "the whole lot expired, once");
      const { rows: runs } = await pool.query("select 1 from public.job_runs where job_name = 'expire_credits' and outcome = 'succeeded'");
      assert.ok(runs.length >= 1, "the runs are recorded");
    } finally {
      await running.stop();
    }
  });

  test("a burst far above an organization's trailing average raises an unusual_usage alert at the next run", async () => {
    const bursting = await createOrganization(pool, "scheduler-burst");
    const steady = await createOrganization(pool, "scheduler-steady");
    for (const organizationId of [bursting, steady]) await grantCredits(pool, organizationId, 50_000, "purchased", null, `cs_${organizationId}`);
    // A week of history: about 1 credit an hour for the bursting organization, about 100 an
    // hour for the steady one. Consumptions are append-only and consume_credits stamps now(),
    // so the past is written directly, as the table owner (the detector reads only these rows).
    await pool.query(
      `insert into public.credit_consumptions
         (organization_id, event_key, quantity, credits, purchased_used, subscription_used, precedence, result, created_at)
       select o.id, 'api_call_basic', o.daily, o.daily, o.daily, 0, (enum_range(null::public.credit_precedence))[1], '{}',
              now() - make_interval(days => d)
         from (values ($1::uuid, 24), ($2::uuid, 2400)) as o (id, daily)
        cross join generate_series(1, 7) as d`,
      [bursting, steady],
    );
    // The last hour: 600 credits against ~1 an hour, and 150 against ~100 an hour.
    await consumeCredits(pool, bursting, "api_call_basic", 600);
    await consumeCredits(pool, steady, "api_call_basic", 150);

    const running = await scheduler(["detect_unusual_usage"], { detect_unusual_usage: "1 seconds" });
    try {
      const alert = await eventually("the unusual_usage alert", async () => {
        const { rows } = await pool.query<{ severity: string; data: { last_hour: number } }>(
          "select severity::text, data from public.billing_alerts where organization_id = $1 and kind = 'unusual_usage'",
          [bursting],
        );
        return rows[0];
      });
      assert.equal(alert.severity, "warning");
      assert.equal(Number(alert.data.last_hour), 600);
      // A run after the alert has seen the steady organization too.
      await eventually("a later run", async () => {
        const { rows } = await pool.query(
          `select 1 from public.job_runs r
            where r.job_name = 'detect_unusual_usage' and r.outcome = 'succeeded'
              and r.started_at > (select created_at from public.billing_alerts where organization_id = $1 and kind = 'unusual_usage')`,
          [bursting],
        );
        return rows.length > 0 ? true : undefined;
      });
      const { rows } = await pool.query("select 1 from public.billing_alerts where organization_id = $1 and kind = 'unusual_usage'", [steady]);
      assert.equal(rows.length, 0, "usage in line with the trailing average raises nothing");
    } finally {
      await running.stop();
    }
  });

  test("a job that throws is recorded as failed while the others keep running", async () => {
    await withJob({ name: "throws_for_scheduler_test", kind: "sql", sql: "select 1 / 0 as never" }, async () => {
      const running = await scheduler(["throws_for_scheduler_test", "expire_credits"], {
        throws_for_scheduler_test: "1 seconds",
        expire_credits: "1 seconds",
      });
      try {
        const firstFailure = await eventually("two failed runs", async () => {
          const { rows } = await pool.query<{ error: string; first: Date }>(
            `select max(error) as error, min(started_at) as first, count(*)::int as runs from public.job_runs
              where job_name = 'throws_for_scheduler_test' and outcome = 'failed' having count(*) >= 2`,
          );
          return rows[0];
        });
        assert.equal(firstFailure.error, "22012: division by zero", "the failure is recorded with its error");
        await eventually("two runs of the other job after the first failure", async () => {
          const { rows } = await pool.query(
            "select 1 from public.job_runs where job_name = 'expire_credits' and outcome = 'succeeded' and started_at > $1",
            [firstFailure.first],
          );
          return rows.length >= 2 ? true : undefined;
        });
      } finally {
        await running.stop();
      }
    });
  });

  describe("function jobs", () => {
    let server: Server;
    let functionsUrl: string;
    const requests: { path: string; headers: IncomingHttpHeaders }[] = [];
    let concurrent = 0;
    let maxConcurrent = 0;

    before(async () => {
      // Stands in for the gateway: /ok answers 200, /broken 500, /slow 200 after a while.
      server = createServer((request, response) => {
        requests.push({ path: request.url ?? "", headers: request.headers });
        concurrent++;
        maxConcurrent = Math.max(maxConcurrent, concurrent);
        const answer = () => {
          concurrent--;
          const broken = request.url?.endsWith("/broken");
          response.writeHead(broken ? 500 : 200, { "Content-Type": "application/json" });
          response.end(JSON.stringify(broken ? { error: { code: "boom", message: "broken" } } : { applied: 2 }));
        };
        request.resume();
        if (request.url?.endsWith("/slow")) setTimeout(answer, 2500);
        else answer();
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      functionsUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}/functions/v1`;
    });
    after(async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    });

    test("are POSTed with the service role key and recorded with the answer", async () => {
      await withJob({ name: "ok_for_scheduler_test", kind: "function", path: "probe/ok" }, async () => {
        await withJob({ name: "broken_for_scheduler_test", kind: "function", path: "probe/broken" }, async () => {
          const running = await scheduler(["ok_for_scheduler_test", "broken_for_scheduler_test"], {
            ok_for_scheduler_test: "1 seconds",
            broken_for_scheduler_test: "1 seconds",
          }, functionsUrl);
          try {
            const runs = await eventually("a run of each", async () => {
              const { rows } = await pool.query<{ job_name: string; outcome: string; error: string | null; result: unknown }>(
                `select distinct on (job_name) job_name, outcome, error, result from public.job_runs
                  where job_name in ('ok_for_scheduler_test', 'broken_for_scheduler_test') order by job_name, started_at`,
              );
              return rows.length === 2 ? rows : undefined;
            });
            assert.deepEqual(runs, [
              { job_name: "broken_for_scheduler_test", outcome: "failed", error: 'HTTP 500: {"error":{"code":"boom","message":"broken"}}', result: null },
              { job_name: "ok_for_scheduler_test", outcome: "succeeded", error: null, result: { applied: 2 } },
            ]);
          } finally {
            await running.stop();
          }
          const ok = requests.find((r) => r.path === "/functions/v1/probe/ok");
          assert.equal(ok?.headers.authorization, `Bearer ${SERVICE_ROLE_KEY}`, "with the service role key");
        });
      });
    });

    test("one run of a job at a time: a run due while the last is still going is skipped", async () => {
      await withJob({ name: "slow_for_scheduler_test", kind: "function", path: "probe/slow" }, async () => {
        maxConcurrent = 0;
        const running = await scheduler(["slow_for_scheduler_test"], { slow_for_scheduler_test: "1 seconds" }, functionsUrl);
        try {
          await eventually("two runs", async () => {
            const { rows } = await pool.query("select 1 from public.job_runs where job_name = 'slow_for_scheduler_test'");
            return rows.length >= 2 ? true : undefined;
          });
        } finally {
          await running.stop();
        }
        assert.equal(maxConcurrent, 1, "never two requests of the job at once");
      });
    });
  });

  test("run_job skips a job whose previous run still holds its lock", async () => {
    const holder = await pool.connect();
    try {
      await holder.query("begin");
      await holder.query("select pg_advisory_xact_lock(hashtext('scheduled_jobs'), hashtext('expire_credits'))");
      const { rows } = await pool.query<{ run: { outcome: string } }>("select public.run_job('expire_credits') as run");
      assert.equal(rows[0]!.run.outcome, "skipped");
      await holder.query("rollback");
      const { rows: after } = await pool.query<{ run: { outcome: string } }>("select public.run_job('expire_credits') as run");
      assert.equal(after[0]!.run.outcome, "succeeded", "and runs once the lock is free");
    } finally {
      holder.release();
    }
  });
});
