/**
 * The whole local product on one machine, for `npm start` and `npm test`: the gateway
 * (REST, Auth, Edge Functions) over a prepared database, the Stripe emulator unless a real
 * Stripe key is set, the mail catcher unless a real SMTP_URL is set, the dashboard, and (for
 * `npm start`) the scheduler that runs the scheduled jobs as pg_cron does on a hosted project.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, readFile } from "node:fs/promises";
import path from "node:path";
import { startGateway, type RunningGateway } from "../gateway/gateway.ts";
import type { FunctionStatus } from "../gateway/edge-functions.ts";
import { apiKeys, type ApiKeys } from "../gateway/keys.ts";
import { functionSettingsFrom } from "../shared/function-settings.ts";
import { repoRoot } from "../shared/paths.ts";
import { jobsOnPgCron, startScheduler, type RunningScheduler } from "./scheduler.ts";
import { startMailCatcher, type MailCatcher } from "./mail-catcher.ts";
import { startStripeEmulator, type StripeEmulator, type StripeEmulatorOptions } from "../stripe-emulator/server.ts";

export interface StackOptions {
  /** Superuser URL of the prepared (migrated, seeded) database. */
  databaseUrl: string;
  apiPort: number;
  stripePort: number;
  dashboardPort: number;
  /** Progress lines ("Starting the gateway..."). */
  log?: (line: string) => void;
  /** Whether to start the dashboard dev server (default: when it exists). */
  dashboard?: boolean;
  /**
   * Where the Stripe emulator keeps its state between runs (`npm start`); absent, it starts
   * empty and keeps everything in memory (`npm test`).
   */
  stripeStateFile?: string;
  /**
   * Whether to run the scheduled jobs (default false). `npm start` does; the test stack does
   * not, so no background sweep writes ledger rows while a suite asserts an exact ledger (the
   * scheduler's own tests start a scheduler of their own).
   */
  scheduler?: boolean;
  /**
   * The local mail catcher's ports and where it keeps emails; it is started unless SMTP_URL
   * is set (then the functions send through that server instead).
   */
  mailCatcher: { uiPort: number; smtpPort: number; directory: string };
}

export interface RunningStack {
  apiUrl: string;
  keys: ApiKeys;
  databaseUrl: string;
  functions: FunctionStatus[];
  stripeUrl?: string;
  /** Why the Stripe emulator is not running, when it is not. */
  stripeNote: string;
  /** The mail catcher's web UI (its REST API is under /api), when it runs. */
  mailUrl?: string;
  /** Why the mail catcher is not running, when it is not. */
  mailNote: string;
  dashboardUrl?: string;
  dashboardNote: string;
  /** The running scheduler, when `scheduler` was asked for and started. */
  scheduler?: RunningScheduler;
  schedulerNote: string;
  /** The contract's variable names and their values for this stack. */
  env: Record<string, string>;
  stop(): Promise<void>;
  /** Kills child processes synchronously (exit handlers). */
  killNow(): void;
}

/** Test-mode keys for the emulator (it accepts any sk_test_ key); never real Stripe keys. */
const LOCAL_SECRET_KEY = "sk_test_local_emulator";
const LOCAL_PUBLISHABLE_KEY = "pk_test_local_emulator";
const LOCAL_WEBHOOK_SECRET = "whsec_local_emulator_signing_secret";
/**
 * The Standard Webhooks secret for the product's own notifications when none is configured
 * (base64 of a fixed local string): local only, so a local receiver can verify signatures.
 */
const LOCAL_NOTIFICATION_SECRET = `whsec_${Buffer.from("local-billing-notifications-secret").toString("base64")}`;
const LOCAL_EMAIL_FROM = "Billing <billing@localhost>";

/** Starts the dashboard's dev server when web/ has one. */
async function startDashboard(port: number, env: Record<string, string>): Promise<ChildProcess | string> {
  const manifest = JSON.parse(await readFile(path.join(repoRoot, "web", "package.json"), "utf8")) as { scripts?: Record<string, string> };
  if (!manifest.scripts?.dev) return "not available yet (web/ has no dev script)";
  // Its own process group, so stopping it reaches vite behind npm and sh (a signal to npm
  // alone leaves vite running, holding our stdout).
  return spawn("npm", ["run", "dev", "--workspace", "web", "--", "--port", String(port), "--strictPort", "--host", "127.0.0.1"], {
    cwd: repoRoot,
    env: { ...process.env, ...env },
    stdio: ["ignore", "inherit", "inherit"],
    detached: true,
  });
}

/** Signals every process in a child's process group (the child was spawned detached). */
function signalGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch {
    // The group is already gone.
  }
}

export async function startStack(options: StackOptions): Promise<RunningStack> {
  const log = options.log ?? (() => {});
  const keys = await apiKeys();
  const apiUrl = `http://127.0.0.1:${options.apiPort}`;

  // With a real Stripe key the functions talk to Stripe itself; otherwise to the emulator.
  let stripeRunning: StripeEmulator | undefined;
  const stripeNote = process.env.STRIPE_SECRET_KEY ? "not started: STRIPE_SECRET_KEY is set, using real Stripe" : "running";
  const webhookSecret = process.env.STRIPE_WEBHOOK_SECRET || LOCAL_WEBHOOK_SECRET;
  if (process.env.STRIPE_SECRET_KEY) {
    log(`  Stripe emulator ${stripeNote}`);
  } else {
    log(`Starting the Stripe emulator on port ${options.stripePort}...`);
    // `stateFile` is the emulator's persistence option (being added to StripeEmulatorOptions
    // alongside this change); spelled out here so this file compiles before and after it lands.
    const emulatorOptions: StripeEmulatorOptions & { stateFile?: string } = {
      port: options.stripePort,
      webhookUrl: `${apiUrl}/functions/v1/stripe-webhook`,
      webhookSecret,
      ...(options.stripeStateFile ? { stateFile: options.stripeStateFile } : {}),
    };
    if (options.stripeStateFile) await mkdir(path.dirname(options.stripeStateFile), { recursive: true });
    stripeRunning = await startStripeEmulator(emulatorOptions);
  }

  // Alert emails go to the local catcher unless a real SMTP server is configured.
  let mailCatcher: MailCatcher | undefined;
  const mailNote = process.env.SMTP_URL ? "not started: SMTP_URL is set, sending through it" : "running";
  if (process.env.SMTP_URL) {
    log(`  Mail catcher ${mailNote}`);
  } else {
    log(`Starting the mail catcher (web UI on port ${options.mailCatcher.uiPort}, SMTP on ${options.mailCatcher.smtpPort})...`);
    try {
      mailCatcher = await startMailCatcher(options.mailCatcher);
    } catch (error) {
      await stripeRunning?.stop();
      throw error;
    }
  }

  const secrets = functionSettingsFrom();
  if (mailCatcher) secrets.SMTP_URL = mailCatcher.smtpUrl;
  secrets.EMAIL_FROM ??= LOCAL_EMAIL_FROM;
  secrets.BILLING_WEBHOOK_SECRET ??= LOCAL_NOTIFICATION_SECRET;
  if (stripeRunning) {
    secrets.STRIPE_API_BASE = stripeRunning.url;
    secrets.STRIPE_SECRET_KEY = LOCAL_SECRET_KEY;
    secrets.STRIPE_WEBHOOK_SECRET = webhookSecret;
    secrets.VITE_STRIPE_PUBLISHABLE_KEY = LOCAL_PUBLISHABLE_KEY;
  }
  secrets.APP_URL ??= `http://127.0.0.1:${options.dashboardPort}`;

  log(`Starting the API gateway on port ${options.apiPort} and the Edge Functions (Deno)...`);
  let gateway: RunningGateway;
  try {
    gateway = await startGateway({ port: options.apiPort, databaseUrl: options.databaseUrl, keys, secrets });
  } catch (error) {
    await stripeRunning?.stop();
    await mailCatcher?.stop();
    throw error;
  }

  const env: Record<string, string> = {
    DATABASE_URL: options.databaseUrl,
    SUPABASE_DB_URL: options.databaseUrl,
    SUPABASE_URL: gateway.url,
    SUPABASE_ANON_KEY: keys.anonKey,
    SUPABASE_SERVICE_ROLE_KEY: keys.serviceRoleKey,
    STRIPE_SECRET_KEY: secrets.STRIPE_SECRET_KEY ?? "",
    STRIPE_WEBHOOK_SECRET: secrets.STRIPE_WEBHOOK_SECRET ?? "",
    STRIPE_API_BASE: secrets.STRIPE_API_BASE ?? "",
    APP_URL: secrets.APP_URL,
    VITE_SUPABASE_URL: gateway.url,
    VITE_SUPABASE_ANON_KEY: keys.anonKey,
    VITE_STRIPE_PUBLISHABLE_KEY: secrets.VITE_STRIPE_PUBLISHABLE_KEY ?? "",
    SMTP_URL: secrets.SMTP_URL ?? "",
    EMAIL_FROM: secrets.EMAIL_FROM,
    BILLING_WEBHOOK_URL: secrets.BILLING_WEBHOOK_URL ?? "",
    BILLING_WEBHOOK_SECRET: secrets.BILLING_WEBHOOK_SECRET,
  };

  let dashboard: ChildProcess | undefined;
  let dashboardNote = "disabled";
  if (options.dashboard !== false) {
    log(`Starting the dashboard on port ${options.dashboardPort}...`);
    const started = await startDashboard(options.dashboardPort, env);
    if (typeof started === "string") {
      dashboardNote = started;
      log(`  Dashboard ${started}`);
    } else {
      dashboard = started;
      dashboardNote = "running";
    }
  }

  let scheduler: RunningScheduler | undefined;
  let schedulerNote = "not running (npm start runs it)";
  const onCron = options.scheduler ? await jobsOnPgCron(options.databaseUrl).catch(() => 0) : 0;
  if (onCron > 0) {
    schedulerNote = `not running: pg_cron runs ${onCron} jobs in this database`;
    log(`  Scheduler ${schedulerNote}`);
  } else if (options.scheduler) {
    log("Starting the scheduler (the jobs in private.scheduled_jobs)...");
    try {
      scheduler = await startScheduler({
        databaseUrl: options.databaseUrl,
        functionsUrl: `${gateway.url}/functions/v1`,
        serviceRoleKey: keys.serviceRoleKey,
        log: (line) => log(line),
      });
      schedulerNote = `running ${scheduler.jobs.length} jobs (runs recorded in public.job_runs)`;
    } catch (error) {
      // The product still serves requests without its schedule; say why it is missing.
      schedulerNote = `FAILED TO START: ${error instanceof Error ? error.message : String(error)}`;
      log(`  Scheduler ${schedulerNote}`);
    }
  }

  return {
    apiUrl: gateway.url,
    keys,
    databaseUrl: options.databaseUrl,
    functions: gateway.functions,
    stripeUrl: stripeRunning?.url,
    stripeNote,
    mailUrl: mailCatcher?.url,
    mailNote,
    dashboardUrl: dashboard ? `http://127.0.0.1:${options.dashboardPort}` : undefined,
    dashboardNote,
    scheduler,
    schedulerNote,
    env,
    killNow: () => {
      gateway.killNow();
      if (dashboard) signalGroup(dashboard, "SIGKILL");
    },
    stop: async () => {
      // The scheduler first: its runs call the functions and the database stopped below.
      await scheduler?.stop();
      if (dashboard) {
        const running = dashboard.exitCode === null && dashboard.signalCode === null;
        const exited = new Promise((resolve) => (running ? dashboard!.once("exit", resolve) : resolve(undefined)));
        signalGroup(dashboard, "SIGTERM");
        await exited;
        // Whatever of the group ignored SIGTERM does not outlive the stack.
        signalGroup(dashboard, "SIGKILL");
      }
      await gateway.close();
      await stripeRunning?.stop();
      await mailCatcher?.stop();
    },
  };
}
