/**
 * `npm test`: every suite against a fresh, migrated test database, with one tally at the end.
 *
 *   1. pgTAP files (supabase/tests/*.test.sql)
 *   2. TypeScript suites on Node's test runner (*.test.ts under supabase/tests, local/test)
 *
 * The last line is `N passed, N failed`, counted over all suites; the exit code is 0 only
 * when nothing failed.
 */
import { spawn } from "node:child_process";
import { readdir } from "node:fs/promises";
import path from "node:path";
import { pgtapFiles, runPgtapFile } from "../pgtap.ts";
import { repoRoot } from "../paths.ts";
import { setUpTestDatabase } from "../test-database.ts";

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
function runNodeSuite(suite: string, files: string[], env: NodeJS.ProcessEnv): Promise<Tally> {
  return new Promise((resolve, reject) => {
    if (files.length === 0) return resolve({ suite, passed: 0, failed: 0 });
    const child = spawn(
      process.execPath,
      ["--import", "tsx", "--test", "--test-reporter=spec", "--test-concurrency=1", ...files],
      { cwd: repoRoot, env: { ...process.env, ...env }, stdio: ["ignore", "pipe", "inherit"] },
    );
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => {
      output += chunk;
      process.stdout.write(chunk);
    });
    child.on("error", reject);
    child.on("close", (code) => {
      const count = (label: string) => Number(new RegExp(`ℹ ${label} (\\d+)`).exec(output)?.[1] ?? 0);
      const tally = { suite, passed: count("pass"), failed: count("fail") + count("cancelled") };
      // A runner that died without a summary still counts as a failure.
      if (code !== 0 && tally.failed === 0) tally.failed = 1;
      resolve(tally);
    });
  });
}

async function main(): Promise<number> {
  const tallies: Tally[] = [];
  console.log("Preparing the test database (embedded Postgres, migrations, seed, pgTAP)...");
  const database = await setUpTestDatabase("billing_test");
  try {
    console.log("\npgTAP (supabase/tests/*.test.sql)");
    tallies.push(await runPgtapSuite(database.url));

    const nodeFiles = [
      ...(await findFiles(path.join(repoRoot, "supabase", "tests"), ".test.ts")),
      ...(await findFiles(path.join(repoRoot, "local", "test"), ".test.ts")),
    ];
    console.log("\nTypeScript suites (node:test)");
    tallies.push(await runNodeSuite("node", nodeFiles, { TEST_DATABASE_URL: database.url }));
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
