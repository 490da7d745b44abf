/**
 * `npm run lint`: type checks (tsc; deno check for the Edge Functions), deno lint, and the
 * Supabase database advisors against a freshly migrated database (0 findings of level ERROR,
 * every WARN explained).
 */
import { readdir } from "node:fs/promises";
import path from "node:path";
import { runAdvisors } from "../stack/advisors.ts";
import { runBin } from "../stack/database.ts";
import { repoRoot } from "../shared/paths.ts";
import { setUpTestDatabase } from "../stack/test-database.ts";

async function step(name: string, run: () => Promise<string | undefined>): Promise<boolean> {
  process.stdout.write(`${name}... `);
  try {
    const note = await run();
    console.log(note ? `ok (${note})` : "ok");
    return true;
  } catch (error) {
    console.log("FAILED");
    console.log(error instanceof Error ? error.message : error);
    return false;
  }
}

async function checked(bin: string, args: string[]): Promise<string | undefined> {
  const { code, output } = await runBin(bin, args);
  if (code !== 0) throw new Error(output);
  return undefined;
}

async function functionEntrypoints(): Promise<string[]> {
  const files: string[] = [];
  // The Edge Functions, and the benchmark's baseline function, which runs on Deno too.
  for (const dir of [path.join(repoRoot, "functions"), path.join(repoRoot, "bench", "functions")]) {
    const entries = await readdir(dir, { withFileTypes: true, recursive: true }).catch(() => []);
    files.push(...entries
      .filter((e) => e.isFile() && e.name.endsWith(".ts"))
      .map((e) => path.relative(repoRoot, path.join(e.parentPath, e.name))));
  }
  return files;
}

async function main(): Promise<number> {
  const results: boolean[] = [];
  results.push(await step("tsc", () => checked("tsc", ["-p", "."])));
  results.push(await step("tsc (web)", () => checked("tsc", ["-p", "web"])));
  const denoFiles = await functionEntrypoints();
  if (denoFiles.length > 0) {
    // manual: resolve npm packages from the existing node_modules; Deno must not try to
    // install the workspace's dependencies itself.
    results.push(await step("deno check", () => checked("deno", ["check", "--node-modules-dir=manual", ...denoFiles])));
    results.push(await step("deno lint", () => checked("deno", ["lint"])));
  } else {
    console.log("deno check / deno lint... skipped (no Edge Function sources yet)");
  }
  results.push(
    await step("supabase db advisors", async () => {
      const database = await setUpTestDatabase("billing_lint");
      try {
        const report = await runAdvisors(database.url);
        for (const w of report.waivedWarnings) console.log(`\n  WARN ${w.name}: ${w.detail}\n    reason: ${w.reason}`);
        const problems = [...report.errors, ...report.unexplainedWarnings];
        if (problems.length > 0) {
          throw new Error(problems.map((f) => `${f.level} ${f.name}: ${f.detail}`).join("\n"));
        }
        return `0 errors, ${report.waivedWarnings.length} explained warnings`;
      } finally {
        await database.close();
      }
    }),
  );
  return results.every(Boolean) ? 0 : 1;
}

main().then((code) => process.exit(code), (error: unknown) => {
  console.error(error);
  process.exit(1);
});
