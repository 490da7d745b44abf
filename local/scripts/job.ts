/**
 * `npm run job -- <name>`: runs one scheduled job now, as the schedule would, against the dev
 * database (or DATABASE_URL / SUPABASE_DB_URL), and prints the recorded run. Function jobs
 * go to the running stack's gateway: SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY, or the
 * values `npm start` wrote to `.local/.env`. Without a name, lists the jobs. Exits 1 when
 * the run failed.
 */
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { parseEnv } from "node:util";
import pg from "pg";
import { externalDatabaseUrl } from "../stack/database.ts";
import { clusterUrl, devClusterOptions } from "../stack/postgres.ts";
import { loadJobs, runJobNow, type FunctionTarget } from "../stack/scheduler.ts";
import { localStateDir } from "../shared/paths.ts";

/** The gateway to send function jobs to, from the environment or the running `npm start`. */
function functionTarget(): FunctionTarget | undefined {
  const values: Record<string, string | undefined> = { ...process.env };
  const envFile = path.join(localStateDir, ".env");
  if (!(values.SUPABASE_URL && values.SUPABASE_SERVICE_ROLE_KEY) && existsSync(envFile)) {
    for (const [key, value] of Object.entries(parseEnv(readFileSync(envFile, "utf8")))) values[key] ??= value;
  }
  if (!values.SUPABASE_URL || !values.SUPABASE_SERVICE_ROLE_KEY) return undefined;
  return { functionsUrl: `${values.SUPABASE_URL.replace(/\/$/, "")}/functions/v1`, serviceRoleKey: values.SUPABASE_SERVICE_ROLE_KEY };
}

async function main(): Promise<number> {
  const name = process.argv[2];
  const url = externalDatabaseUrl() ?? clusterUrl(devClusterOptions());
  const client = new pg.Client({ connectionString: url });
  try {
    await client.connect();
  } catch (error) {
    throw new Error(`cannot reach the database at ${url} (${error instanceof Error ? error.message : error}): start it with npm start or npm run db:up, or set DATABASE_URL`);
  }
  try {
    if (!name) {
      console.log("Usage: npm run job -- <name>\n\nJobs (private.scheduled_jobs):");
      for (const job of await loadJobs(client)) {
        console.log(`  ${job.name.padEnd(24)} ${job.schedule.padEnd(12)} ${job.enabled ? "" : "(disabled) "}${job.description}`);
      }
      return 0;
    }
    const run = await runJobNow(client, name, functionTarget());
    console.log(JSON.stringify(run, null, 2));
    return run.outcome === "failed" ? 1 : 0;
  } finally {
    await client.end();
  }
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    console.error(error instanceof Error ? error.message : error);
    process.exit(1);
  },
);
