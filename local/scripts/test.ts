/**
 * `npm test`: every suite against a fresh, migrated test database, with one tally at the end.
 *
 *   1. pgTAP files (supabase/tests/*.test.sql)
 *   2. TypeScript suites on Node's test runner (*.test.ts under supabase/tests, local/test),
 *      against the local stack (gateway, Edge Functions, Stripe emulator when present)
 *      started once on free ports. Suites find it through TEST_SUPABASE_URL,
 *      TEST_SUPABASE_ANON_KEY, TEST_SUPABASE_SERVICE_ROLE_KEY (and TEST_DATABASE_URL).
 *   3. Edge Function suites on Deno's test runner (*.test.ts under functions/), against the stack
 *   4. the dashboard's vitest suite (web/), its live checks pointed at the stack
 *   5. the dashboard's browser suite (web/e2e/*.e2e.ts): Debian's Chromium driven by
 *      playwright-core through the running dashboard and the Stripe emulator's pages
 *
 * The last line is `N passed, N failed`, counted over all suites; the exit code is 0 only
 * when nothing failed.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { pgtapFiles, runPgtapFile } from "../stack/pgtap.ts";
import { repoRoot } from "../shared/paths.ts";
import { freePort } from "../shared/ports.ts";
import { startStack, type RunningStack } from "../stack/services.ts";
import { setUpTestDatabase } from "../stack/test-database.ts";

interface Tally {
  suite: string;
  passed: number;
  failed: number;
}

async function runPgtapSuite(url: string): Promise<Tally> {
  const tally: Tally = { suite: "pgTAP", passed: 0, failed: 0 };
  for (const file of await pgtapFiles()) {
    const result = await runPgtapFile(url, file);
    tally.passed += result.passed;
    tally.failed += result.failed;
    const mark = result.failed === 0 ? "ok" : "FAIL";
    console.log(`  ${mark}  ${result.file}: ${result.passed} passed, ${result.failed} failed`);
    for (const line of result.failures) console.log(`        ${line}`);
  }
  return tally;
}

async function findFiles(dir: string, suffix: string): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
  return entries
    .filter((entry) => entry.isFile() && entry.name.endsWith(suffix))
    .map((entry) => path.join(entry.parentPath, entry.name))
    .sort();
}

/** Runs Node test files, echoing the spec reporter's output and reading its totals. */
async function runNodeSuite(suite: string, files: string[], env: NodeJS.ProcessEnv): Promise<Tally> {
  if (files.length === 0) return { suite, passed: 0, failed: 0 };
  const { code, output } = await runEchoed(
    process.execPath,
    ["--import", "tsx", "--test", "--test-reporter=spec", "--test-concurrency=1", ...files],
    env,
  );
  const count = (label: string) => Number(new RegExp(`ℹ ${label} (\\d+)`).exec(output)?.[1] ?? 0);
  return settle({ suite, passed: count("pass"), failed: count("fail") + count("cancelled") }, code);
}

/** A runner that failed without reporting a failure (it crashed, or found nothing) still counts as one. */
function settle(tally: Tally, exitCode: number): Tally {
  return exitCode !== 0 && tally.failed === 0 ? { ...tally, failed: 1 } : tally;
}

/** Runs a command, echoing its output, and returns its exit code and combined output. */
function runEchoed(command: string, args: string[], env: NodeJS.ProcessEnv, cwd = repoRoot): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "pipe"] });
    let output = "";
    const echo = (chunk: Buffer) => {
      output += chunk;
      process.stdout.write(chunk);
    };
    child.stdout.on("data", echo);
    child.stderr.on("data", echo);
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, output }));
  });
}

/** `deno test` over the Edge Functions' tests; reads Deno's "N passed | N failed" summary. */
async function runDenoSuite(env: NodeJS.ProcessEnv): Promise<Tally> {
  const { code, output } = await runEchoed(
    path.join(repoRoot, "node_modules", ".bin", "deno"),
    ["test", "--allow-all", "--node-modules-dir=manual", "functions/"],
    { ...env, NO_COLOR: "1" },
  );
  const summary = /(\d+) passed \| (\d+) failed/.exec(output);
  return settle({ suite: "deno", passed: Number(summary?.[1] ?? 0), failed: Number(summary?.[2] ?? 0) }, code);
}

/** The dashboard's vitest suite; counts come from vitest's JSON report. */
async function runWebSuite(env: NodeJS.ProcessEnv): Promise<Tally> {
  const report = path.join(repoRoot, ".local", "web-vitest.json");
  await rm(report, { force: true });
  const { code } = await runEchoed(
    "npm",
    ["test", "-w", "web", "--", "--reporter=default", "--reporter=json", `--outputFile.json=${report}`],
    env,
  );
  const tally: Tally = { suite: "web", passed: 0, failed: 0 };
  if (existsSync(report)) {
    const json = JSON.parse(await readFile(report, "utf8")) as { numPassedTests: number; numFailedTests: number; numPendingTests: number };
    tally.passed = json.numPassedTests;
    // A skipped test is not a pass: the live checks must run against the stack.
    tally.failed = json.numFailedTests + json.numPendingTests;
  }
  return settle(tally, code);
}

/**
 * The browser suite, against the stack's dashboard. Screenshots of each tab go to
 * SCREENSHOTS_DIR when set (`SCREENSHOTS_DIR=docs/screenshots npm test` refreshes the
 * README's), otherwise to a fresh temporary directory.
 */
async function runBrowserSuite(stack: RunningStack): Promise<Tally> {
  if (!stack.dashboardUrl || !stack.stripeUrl) {
    console.log(`  cannot run: dashboard ${stack.dashboardNote}; Stripe emulator ${stack.stripeNote}`);
    return { suite: "browser", passed: 0, failed: 1 };
  }
  const screenshots = process.env.SCREENSHOTS_DIR || (await mkdtemp(path.join(os.tmpdir(), "billing-screenshots-")));
  return runNodeSuite("browser", await findFiles(path.join(repoRoot, "web", "e2e"), ".e2e.ts"), {
    TEST_APP_URL: stack.dashboardUrl,
    TEST_SUPABASE_URL: stack.apiUrl,
    TEST_SUPABASE_ANON_KEY: stack.keys.anonKey,
    TEST_SUPABASE_SERVICE_ROLE_KEY: stack.keys.serviceRoleKey,
    TEST_STRIPE_API_BASE: stack.stripeUrl,
    SCREENSHOTS_DIR: screenshots,
  });
}

/**
 * What a Ctrl-C must stop besides the suites (which share our process group and get it too):
 * the stack's children and the test cluster run in groups of their own.
 */
const running: { stack?: RunningStack; database?: { close(): Promise<void> } } = {};
let interrupted = false;
function interrupt(): void {
  if (interrupted) return;
  interrupted = true;
  console.log("\nInterrupted: stopping the local stack and the test database...");
  void (async () => {
    await running.stack?.stop().catch(() => undefined);
    await running.database?.close().catch(() => undefined);
    console.log("0 passed, 1 failed");
    process.exit(130);
  })();
}
process.on("SIGINT", interrupt);
process.on("SIGTERM", interrupt);

async function main(): Promise<number> {
  const tallies: Tally[] = [];
  console.log("Preparing the test database (embedded Postgres, migrations, seed, pgTAP)...");
  const database = await setUpTestDatabase("billing_test");
  running.database = database;
  try {
    console.log("\npgTAP (supabase/tests/*.test.sql)");
    tallies.push(await runPgtapSuite(database.url));

    const nodeFiles = [
      ...(await findFiles(path.join(repoRoot, "supabase", "tests"), ".test.ts")),
      ...(await findFiles(path.join(repoRoot, "local", "test"), ".test.ts")),
    ];
    console.log("\nStarting the local stack on free ports...");
    // The fault tests make the emulator slow; a short Stripe timeout keeps them quick (the
    // functions give up after about three timeouts, with their two retries).
    process.env.STRIPE_TIMEOUT_MS ??= "2000";
    // Notifications go to a receiver the notification suite starts on this port, and emails to
    // the stack's own mail catcher, never to anything the developer's environment names.
    const receiverPort = await freePort();
    process.env.BILLING_WEBHOOK_URL = `http://127.0.0.1:${receiverPort}/billing-webhooks`;
    process.env.BILLING_WEBHOOK_SECRET = `whsec_${Buffer.from("test-billing-notifications-secret").toString("base64")}`;
    delete process.env.SMTP_URL;
    let stack: RunningStack | undefined;
    try {
      try {
        stack = await startStack({
          databaseUrl: database.url,
          apiPort: await freePort(),
          stripePort: await freePort(),
          dashboardPort: await freePort(),
          mailCatcher: {
            uiPort: await freePort(),
            smtpPort: await freePort(),
            directory: await mkdtemp(path.join(os.tmpdir(), "billing-test-mail-")),
          },
          log: (line) => console.log(`  ${line}`),
        });
        running.stack = stack;
        for (const fn of stack.functions) {
          if (fn.error) console.log(`  function ${fn.name} failed to start: ${fn.error}`);
        }
        console.log(`  gateway at ${stack.apiUrl}`);
      } catch (error) {
        // Counted as a failure; the suites still run (gateway suites start a gateway of their own).
        console.log(`  the local stack failed to start: ${error instanceof Error ? error.message : String(error)}`);
        tallies.push({ suite: "local stack", passed: 0, failed: 1 });
      }
      console.log("\nTypeScript suites (node:test)");
      tallies.push(
        await runNodeSuite("node", nodeFiles, {
          TEST_DATABASE_URL: database.url,
          ...(stack
            ? {
                TEST_SUPABASE_URL: stack.apiUrl,
                TEST_SUPABASE_ANON_KEY: stack.keys.anonKey,
                TEST_SUPABASE_SERVICE_ROLE_KEY: stack.keys.serviceRoleKey,
                TEST_JWT_SECRET: stack.keys.jwtSecret,
              }
            : {}),
          ...(stack?.stripeUrl ? { TEST_STRIPE_API_BASE: stack.stripeUrl } : {}),
          ...(stack?.dashboardUrl ? { TEST_APP_URL: stack.dashboardUrl } : {}),
        }),
      );
      if (stack) {
        console.log("\nEdge Function suites (deno test)");
        tallies.push(
          await runDenoSuite({
            TEST_SUPABASE_URL: stack.apiUrl,
            TEST_SUPABASE_ANON_KEY: stack.keys.anonKey,
            TEST_SUPABASE_SERVICE_ROLE_KEY: stack.keys.serviceRoleKey,
            ...(stack.stripeUrl ? { TEST_STRIPE_API_BASE: stack.stripeUrl } : {}),
            TEST_STRIPE_WEBHOOK_SECRET: stack.env.STRIPE_WEBHOOK_SECRET ?? "",
            TEST_DATABASE_URL: database.url,
            TEST_NOTIFICATION_RECEIVER_PORT: String(receiverPort),
            TEST_BILLING_WEBHOOK_SECRET: stack.env.BILLING_WEBHOOK_SECRET ?? "",
            ...(stack.mailUrl ? { TEST_MAIL_CATCHER_URL: stack.mailUrl } : {}),
          }),
        );
        console.log("\nDashboard suite (vitest)");
        tallies.push(
          await runWebSuite({
            WEB_LIVE_SUPABASE_URL: stack.apiUrl,
            WEB_LIVE_ANON_KEY: stack.keys.anonKey,
            WEB_LIVE_SERVICE_ROLE_KEY: stack.keys.serviceRoleKey,
          }),
        );
        console.log("\nDashboard in a browser (playwright-core + Chromium)");
        tallies.push(await runBrowserSuite(stack));
      }
    } finally {
      await stack?.stop();
    }
  } finally {
    await database.close();
  }

  console.log("");
  for (const t of tallies) console.log(`${t.suite}: ${t.passed} passed, ${t.failed} failed`);
  const passed = tallies.reduce((sum, t) => sum + t.passed, 0);
  const failed = tallies.reduce((sum, t) => sum + t.failed, 0);
  console.log(`${passed} passed, ${failed} failed`);
  return failed === 0 && passed > 0 ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (error) => {
    console.error(error);
    console.log("0 passed, 1 failed");
    process.exit(1);
  },
);
