/**
 * Brings a database to the product's schema: the local platform bootstrap (only where the
 * database is not already a Supabase one), then the migrations and the seed through the
 * real Supabase CLI (`supabase db push`), exactly as a hosted project gets them.
 */
import { spawn } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import pg from "pg";
import { binDir, repoRoot } from "./paths.ts";

const bootstrapFile = path.join(repoRoot, "local", "sql", "platform-bootstrap.sql");

/** Runs a callback with a single connection, always closing it. */
export async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** True when the database already has Supabase's platform schema (a hosted project). */
async function hasPlatformSchema(client: pg.Client): Promise<boolean> {
  const { rows } = await client.query<{ ready: boolean }>(
    `select to_regclass('auth.users') is not null
        and exists (select 1 from pg_roles where rolname = 'service_role') as ready`,
  );
  return rows[0]?.ready ?? false;
}

/** Applies the local platform bootstrap unless the database is already a Supabase one. */
export async function bootstrapPlatform(url: string, options: { force?: boolean } = {}): Promise<boolean> {
  return withClient(url, async (client) => {
    if (!options.force && (await hasPlatformSchema(client))) return false;
    await client.query(await readFile(bootstrapFile, "utf8"));
    return true;
  });
}

/** Runs a command from node_modules/.bin, returning its exit code and combined output. */
export function runBin(
  name: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(path.join(binDir, name), args, {
      cwd: options.cwd ?? repoRoot,
      env: { ...process.env, SUPABASE_TELEMETRY_DISABLED: "1", DO_NOT_TRACK: "1", ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, output }));
  });
}

/** Applies pending migrations and the seed with the Supabase CLI. */
export async function pushMigrations(url: string): Promise<string> {
  const { code, output } = await runBin("supabase", [
    "db", "push", `--remote=${url}`, "--include-all", "--include-seed", "--yes", "--workdir", repoRoot,
  ]);
  if (code !== 0) throw new Error(`supabase db push failed:\n${output}`);
  return output;
}

/** Bootstrap (local only) + migrations + seed. */
export async function prepareDatabase(url: string, options: { forceBootstrap?: boolean } = {}): Promise<void> {
  await bootstrapPlatform(url, { force: options.forceBootstrap });
  await pushMigrations(url);
}

/** Drops and recreates a database on the cluster, returning its URL. */
export async function recreateDatabase(adminUrl: string, name: string): Promise<string> {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`unsafe database name: ${name}`);
  await withClient(adminUrl, async (client) => {
    await client.query(`drop database if exists ${name} with (force)`);
    await client.query(`create database ${name}`);
  });
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return url.toString();
}

/** The database the user pointed us at (DATABASE_URL or SUPABASE_DB_URL), if any. */
export function externalDatabaseUrl(): string | undefined {
  return process.env.DATABASE_URL || process.env.SUPABASE_DB_URL || undefined;
}
