/**
 * Brings a database to the product's schema: the local platform bootstrap (only where the
 * database is not already a Supabase one), then the migrations and the seed through the
 * real Supabase CLI (`supabase db push`), exactly as a hosted project gets them.
 */
import { readFile, readdir } from "node:fs/promises";
import path from "node:path";
import pg from "pg";
import { binDir, repoRoot, supabaseDir } from "../shared/paths.ts";
import { runCommand, type CommandResult } from "./run-command.ts";

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
        and to_regclass('auth.refresh_tokens') is not null
        and to_regclass('auth.sessions') is not null
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
export function runBin(name: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CommandResult> {
  return runCommand(path.join(binDir, name), args, {
    cwd: options.cwd ?? repoRoot,
    env: { ...process.env, SUPABASE_TELEMETRY_DISABLED: "1", DO_NOT_TRACK: "1", ...options.env },
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

/**
 * Migrations the database recorded as applied whose file has changed since. `db push` skips
 * an applied version, so an edited migration would otherwise leave a silently stale schema.
 * The CLI records each migration as its statements; they match the file once whitespace and
 * statement separators are set aside.
 */
export async function changedMigrations(url: string): Promise<string[]> {
  const migrationsDir = path.join(supabaseDir, "migrations");
  const files = new Map((await readdir(migrationsDir)).map((name) => [name.split("_")[0], name]));
  const normalise = (sql: string) => sql.replace(/[\s;]+/g, "");
  return withClient(url, async (client) => {
    const { rows } = await client.query<{ version: string; statements: string[] | null }>(
      `select version, statements from supabase_migrations.schema_migrations
        where to_regclass('supabase_migrations.schema_migrations') is not null order by version`,
    ).catch(() => ({ rows: [] }));
    const changed: string[] = [];
    for (const row of rows) {
      const file = files.get(row.version);
      if (!file || !row.statements) continue;
      const current = await readFile(path.join(migrationsDir, file), "utf8");
      if (normalise(current) !== normalise(row.statements.join(""))) changed.push(file);
    }
    return changed;
  });
}

/** Bootstrap (local only) + migrations + seed. Refuses a database built from older migration files. */
export async function prepareDatabase(url: string, options: { forceBootstrap?: boolean } = {}): Promise<void> {
  await bootstrapPlatform(url, { force: options.forceBootstrap });
  const changed = await changedMigrations(url);
  if (changed.length > 0) {
    throw new Error(
      `These migrations changed after they were applied to this database: ${changed.join(", ")}.\n` +
        "The database no longer matches supabase/migrations. For the embedded database run `npm run reset` " +
        "(it wipes .local/) and start again; for another database, add a new migration instead of editing an applied one.",
    );
  }
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
