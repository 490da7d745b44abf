/**
 * Runs the pgTAP files in supabase/tests/ against a database. `supabase test db` needs
 * Docker, so we install pgTAP's extension files (shipped in an npm package) into the
 * embedded Postgres and run each file over one connection, reading the TAP it prints.
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { readFile, readdir } from "node:fs/promises";
import path from "node:path";
import { createRequire } from "node:module";
import { promisify } from "node:util";
import pg from "pg";
import { supabaseDir } from "../shared/paths.ts";
import { serverShareDir } from "./postgres.ts";

const execFileAsync = promisify(execFile);
const require = createRequire(import.meta.url);

export interface TapResult {
  file: string;
  passed: number;
  failed: number;
  /** Lines describing each failure (the failing assertion and pgTAP's diagnostics). */
  failures: string[];
}

/** Copies pgTAP's extension files into the embedded Postgres the server runs from, once. */
export async function installPgtapFiles(): Promise<void> {
  const shareDir = await serverShareDir();
  if (existsSync(path.join(shareDir, "extension", "pgtap.control"))) return;
  const tarball = path.join(path.dirname(require.resolve("@electric-sql/pglite-pgtap")), "pgtap.tar.gz");
  // The tarball holds share/postgresql/extension/...; it unpacks beside our share/postgresql.
  await execFileAsync("tar", ["-xzf", tarball, "-C", path.resolve(shareDir, "..", ".."), "share/postgresql/extension"]);
}

/** Creates the pgtap extension (in `extensions`, as on Supabase) in the test database. */
export async function createPgtapExtension(url: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query("create extension if not exists pgtap with schema extensions");
  } finally {
    await client.end();
  }
}

/** Parses the TAP lines a pgTAP file printed. */
export function parseTap(file: string, lines: string[]): TapResult {
  const result: TapResult = { file, passed: 0, failed: 0, failures: [] };
  let planned: number | undefined;
  let seen = 0;
  for (const line of lines) {
    const plan = /^1\.\.(\d+)/.exec(line);
    if (plan) planned = Number(plan[1]);
    if (/^ok \d+/.test(line)) {
      result.passed++;
      seen++;
    } else if (/^not ok \d+/.test(line)) {
      result.failed++;
      seen++;
      result.failures.push(line);
    } else if (line.startsWith("#") && result.failures.length > 0 && !/^# Looks like/.test(line)) {
      result.failures.push(`  ${line}`);
    }
  }
  if (planned === undefined) {
    result.failed++;
    result.failures.push("no plan: the file must call plan(n)");
  } else if (seen !== planned) {
    const missing = Math.max(planned - seen, 1);
    result.failed += missing;
    result.failures.push(`planned ${planned} tests but ran ${seen}`);
  }
  return result;
}

/** Runs one pgTAP file in a single session; an error aborts the file and fails what it had left. */
export async function runPgtapFile(url: string, file: string): Promise<TapResult> {
  const sql = await readFile(file, "utf8");
  const client = new pg.Client({ connectionString: url, options: "-c search_path=public,extensions" });
  await client.connect();
  const lines: string[] = [];
  try {
    const results = await client.query(sql);
    for (const result of Array.isArray(results) ? results : [results]) {
      for (const row of result.rows ?? []) {
        const value = Object.values(row)[0];
        if (typeof value === "string") lines.push(...value.split("\n"));
      }
    }
    return parseTap(path.basename(file), lines);
  } catch (error) {
    const planned = Number(/plan\((\d+)\)/.exec(sql)?.[1] ?? 1);
    const message = error instanceof Error ? error.message : String(error);
    return {
      file: path.basename(file),
      passed: 0,
      failed: planned,
      failures: [`the file stopped with an error: ${message}`],
    };
  } finally {
    await client.end();
  }
}

/** The pgTAP files, in name order (00-helpers first). */
export async function pgtapFiles(): Promise<string[]> {
  const dir = path.join(supabaseDir, "tests");
  return (await readdir(dir)).filter((name) => name.endsWith(".test.sql")).sort().map((name) => path.join(dir, name));
}
