/**
 * `npm start`: the whole product on this machine. Embedded Postgres (migrations + seed), the
 * API gateway (REST, Auth, Edge Functions on Deno), the Stripe emulator (unless a real
 * STRIPE_SECRET_KEY is set; its state persists in `.local/stripe-emulator/`), the
 * dashboard and the scheduler (the jobs in private.scheduled_jobs, as pg_cron runs them on a
 * hosted project). Prints every URL, the API keys and a demo login, writes the same values to
 * `.local/.env`, and stops everything it started, Postgres included, on Ctrl-C.
 *
 * Ports (env): API_PORT 54321, POSTGRES_PORT 54322, STRIPE_PORT 12111, DASHBOARD_PORT 5173,
 * MAIL_UI_PORT 54324 and MAIL_SMTP_PORT 54325 (the mail catcher, unless SMTP_URL is set).
 * LOCAL_STATE_DIR moves `.local/` (the tests use throwaway ones).
 */
import { existsSync, readFileSync, rmSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import { externalDatabaseUrl, prepareDatabase } from "../stack/database.ts";
import { ensureDemoAccount, type DemoAccount } from "../stack/demo.ts";
import { ensureOperatorLogin, type OperatorLogin } from "../stack/operator-login.ts";
import { localStateDir } from "../shared/paths.ts";
import { clusterDataDir, devClusterOptions, isClusterRunning, startCluster, stopCluster } from "../stack/postgres.ts";
import { startStack, type RunningStack } from "../stack/services.ts";
import { portFromEnv, portIsFree } from "../shared/ports.ts";

const stateDir = localStateDir;
const lockFile = path.join(stateDir, "start.pid");

/** The pid of a live `npm start` for this state directory, if there is one. */
function runningInstance(): number | undefined {
  if (!existsSync(lockFile)) return undefined;
  const pid = Number(readFileSync(lockFile, "utf8").trim());
  if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid) return undefined;
  try {
    process.kill(pid, 0);
    return pid;
  } catch {
    return undefined;
  }
}

function step(message: string): void {
  console.log(`• ${message}`);
}

function summary(stack: RunningStack, demo: DemoAccount | undefined, operator: OperatorLogin | undefined, envFile: string): string {
  const lines = [
    "",
    "The product is running locally.",
    "",
    `  API (Supabase URL)   ${stack.apiUrl}`,
    `    REST               ${stack.apiUrl}/rest/v1`,
    `    Auth               ${stack.apiUrl}/auth/v1`,
    `    Functions          ${stack.apiUrl}/functions/v1/<name>`,
  ];
  for (const fn of stack.functions) {
    lines.push(
      fn.error
        ? `      ${fn.name.padEnd(16)} FAILED TO START: ${fn.error.split("\n").join("\n        ")}`
        : `      ${fn.name.padEnd(16)} ${stack.apiUrl}/functions/v1/${fn.name}${fn.verifyJwt ? "" : "  (no JWT required)"}`,
    );
  }
  lines.push(
    `  Database             ${stack.databaseUrl}`,
    `  Stripe emulator      ${stack.stripeUrl ?? stack.stripeNote}`,
    `  Mail catcher         ${stack.mailUrl ? `${stack.mailUrl}  (SMTP ${stack.env.SMTP_URL})` : stack.mailNote}`,
    `  Dashboard            ${stack.dashboardUrl ?? stack.dashboardNote}`,
    `  Schedule             ${stack.schedulerNote}`,
    "",
    `  anon key             ${stack.keys.anonKey}`,
    `  service_role key     ${stack.keys.serviceRoleKey}`,
  );
  if (demo) {
    lines.push("", `  Demo login           ${demo.email} / ${demo.password}  (owner of "${demo.organizationName}", ${demo.organizationId})`);
  }
  if (operator) {
    lines.push(`  Operator login       ${operator.email} / ${operator.password}  (the operator console: ${stack.dashboardUrl ?? "the dashboard"}/operator)`);
  }
  lines.push("", `  These values are in ${envFile}.`, "", "Press Ctrl-C to stop everything.");
  return lines.join("\n");
}

/**
 * One `KEY=value` line that both a shell (`set -a; . .local/.env`) and dotenv parsers read back
 * as the same value: plain when it is one word, else single-quoted (EMAIL_FROM has a space
 * and angle brackets, which a shell would take as a redirection).
 */
function envLine(name: string, value: string): string {
  if (/^[\w.,:/@+%=-]*$/.test(value)) return `${name}=${value}`;
  if (!value.includes("'")) return `${name}='${value}'`;
  return `${name}="${value.replace(/["\\$`]/g, "\\$&")}"`;
}

async function main(): Promise<void> {
  const other = runningInstance();
  if (other) {
    console.error(`npm start is already running (pid ${other}) for ${stateDir}.`);
    console.error(`Its URLs and keys are in ${path.join(stateDir, ".env")}. Stop it with Ctrl-C in its terminal (or kill ${other}) first.`);
    process.exit(1);
  }
  const ports = {
    api: portFromEnv("API_PORT", 54321),
    postgres: portFromEnv("POSTGRES_PORT", 54322),
    stripe: portFromEnv("STRIPE_PORT", 12111),
    dashboard: portFromEnv("DASHBOARD_PORT", 5173),
    mailUi: portFromEnv("MAIL_UI_PORT", 54324),
    mailSmtp: portFromEnv("MAIL_SMTP_PORT", 54325),
  };
  if (!(await portIsFree(ports.api))) {
    console.error(`Port ${ports.api} (API gateway) is already in use: is another stack (or \`supabase start\`) running? Set API_PORT to use another port.`);
    process.exit(1);
  }
  await mkdir(stateDir, { recursive: true });
  await writeFile(lockFile, `${process.pid}\n`);

  let stack: RunningStack | undefined;
  let startedCluster = false;
  const cluster = { ...devClusterOptions(stateDir), port: ports.postgres };
  const started = Date.now();

  const startUp = async (): Promise<void> => {
    const external = externalDatabaseUrl();
    let databaseUrl: string;
    if (external) {
      step("Using the database from DATABASE_URL / SUPABASE_DB_URL.");
      databaseUrl = external;
    } else {
      step(`Starting embedded Postgres 17 on port ${ports.postgres} (data in ${await clusterDataDir(cluster)})...`);
      startedCluster = !(await isClusterRunning(cluster));
      databaseUrl = await startCluster(cluster);
    }
    step("Applying platform bootstrap (local only), migrations and seed...");
    await prepareDatabase(databaseUrl);
    let demo: DemoAccount | undefined;
    let operator: OperatorLogin | undefined;
    if (!external) {
      step("Ensuring the demo and operator logins...");
      demo = await ensureDemoAccount(databaseUrl);
      operator = await ensureOperatorLogin(databaseUrl);
    }
    stack = await startStack({
      databaseUrl,
      apiPort: ports.api,
      stripePort: ports.stripe,
      dashboardPort: ports.dashboard,
      // The emulator keeps its objects beside the database, so the Stripe ids the database
      // holds stay valid across restarts.
      stripeStateFile: path.join(stateDir, "stripe-emulator", "state.json"),
      scheduler: true,
      mailCatcher: { uiPort: ports.mailUi, smtpPort: ports.mailSmtp, directory: path.join(stateDir, "mail") },
      log: step,
    });
    const envFile = path.join(stateDir, ".env");
    await writeFile(envFile, Object.entries(stack.env).map(([k, v]) => envLine(k, v)).join("\n") + "\n");
    console.log(summary(stack, demo, operator, envFile));
    console.log(`\nReady in ${((Date.now() - started) / 1000).toFixed(1)}s.`);
  };

  /**
   * Stops what we started, in order: the scheduler (so no job starts against a stopping
   * stack), the dashboard and the functions, the emulator, then
   * Postgres (pg_ctl waits until its data is safely shut down). A signal during start-up
   * waits for the step under way, so that whatever it started is known and stopped too.
   * Every child runs in a process group of its own, so the terminal's Ctrl-C reaches only
   * this process; a second Ctrl-C while stopping changes nothing.
   */
  let startup: Promise<void> | undefined;
  let stopping: Promise<void> | undefined;
  const stop = (code: number): void => {
    if (stopping) {
      console.log("Still stopping: the scheduler, the dashboard, the functions, the Stripe emulator, the mail catcher and Postgres are shutting down in order...");
      return;
    }
    stopping = (async () => {
      console.log("\nStopping...");
      let exitCode = code;
      try {
        await startup?.catch(() => undefined);
        await stack?.stop();
        if (startedCluster) await stopCluster(cluster);
      } catch (error) {
        console.error(`Stopping failed: ${error instanceof Error ? error.message : String(error)}`);
        exitCode = exitCode || 1;
      } finally {
        rmSync(lockFile, { force: true });
        console.log("Stopped.");
        process.exit(exitCode);
      }
    })();
  };
  process.on("SIGINT", () => stop(0));
  process.on("SIGTERM", () => stop(0));
  process.on("SIGHUP", () => stop(0));
  // Last resort if we die another way: no Deno or dashboard process outlives us.
  process.on("exit", () => {
    stack?.killNow();
    rmSync(lockFile, { force: true });
  });

  startup = startUp();
  startup.catch((error: unknown) => {
    console.error(`\nnpm start failed: ${error instanceof Error ? error.message : String(error)}`);
    stop(1);
  });
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
