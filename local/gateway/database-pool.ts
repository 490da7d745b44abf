/**
 * The gateway's connections to Postgres, and how a lost database reads to a caller.
 *
 * node-postgres emits 'error' on a client whose connection drops (a killed backend, a
 * database restart), whether the client sits idle in the pool or is checked out by a request;
 * an 'error' event nobody listens to ends the Node process, and with it everything `npm start`
 * runs. So every client gets a listener for its whole life, and the request that was using
 * the connection fails on its own with a retriable 503 while the pool opens fresh connections
 * for the next ones: the gateway recovers by itself when the database is back.
 */
import pg from "pg";

/** Seconds a caller should wait before retrying while the database is unreachable. */
export const RETRY_AFTER_SECONDS = 1;

/**
 * How long a request waits for a connection (a free pool slot or a new connection) before it
 * gives up: PostgREST's `db-pool-acquisition-timeout` default.
 */
const ACQUISITION_TIMEOUT_MS = 10_000;

export interface PoolOptions {
  connectionString: string;
  max: number;
  applicationName: string;
  /** Where dropped connections are reported (one line each). */
  log?: (line: string) => void;
}

/** A pool whose connections may drop at any time without taking the process down. */
export function createPool(options: PoolOptions): pg.Pool {
  const log = options.log ?? ((line: string) => console.error(line));
  const pool = new pg.Pool({
    connectionString: options.connectionString,
    max: options.max,
    application_name: options.applicationName,
    connectionTimeoutMillis: ACQUISITION_TIMEOUT_MS,
  });
  const report = (error: Error) => log(`[gateway] ${options.applicationName}: database connection lost: ${error.message}`);
  pool.on("error", report);
  // Checked-out clients lose the pool's idle listener; this one stays for the client's life.
  pool.on("connect", (client) => client.on("error", report));
  return pool;
}

/** Why the database could not serve a request, when that is the reason it failed. */
export type Unavailability =
  /** No connection could be opened (the server is down, starting up or refusing connections). */
  | "unreachable"
  /** The connection serving the request was lost (killed backend, server shut down or restarted). */
  | "lost"
  /** No connection became free within the acquisition timeout. */
  | "timeout";

const UNREACHABLE_NETWORK_CODES = new Set(["ECONNREFUSED", "ENOTFOUND", "EHOSTUNREACH", "ENETUNREACH", "EAI_AGAIN", "ETIMEDOUT"]);
const LOST_NETWORK_CODES = new Set(["ECONNRESET", "EPIPE", "ECONNABORTED"]);

/**
 * Classifies an error from node-postgres: `undefined` for anything that is not the database
 * being unavailable (SQL errors, our bugs), which callers handle as before.
 */
export function databaseUnavailability(error: unknown): Unavailability | undefined {
  if (typeof error !== "object" || error === null) return undefined;
  const { code, message } = error as { code?: unknown; message?: unknown };
  const text = typeof message === "string" ? message : "";
  if (typeof code === "string") {
    if (UNREACHABLE_NETWORK_CODES.has(code)) return "unreachable";
    if (LOST_NETWORK_CODES.has(code)) return "lost";
    // cannot_connect_now: the server is starting up or shutting down.
    if (code === "57P03") return "unreachable";
    // admin_shutdown (pg_terminate_backend, a fast shutdown), crash_shutdown.
    if (code === "57P01" || code === "57P02") return "lost";
    // connection_exception and its subclasses.
    if (code.startsWith("08")) return "lost";
  }
  if (/^Connection terminated/.test(text) || /not queryable/.test(text)) return "lost";
  if (/timeout exceeded when trying to connect/.test(text)) return "timeout";
  return undefined;
}
