/**
 * SQL functions called over a direct Postgres connection (SUPABASE_DB_URL) instead of through
 * the REST API: one hop fewer for a path that must answer fast (the webhook's store before
 * its acknowledgement). The SQL function must see a service caller, as through the REST API:
 * a login that `private.caller_is_service` already accepts (the local superuser under `npm
 * start`) calls it in one statement; any other (`postgres` on hosted Supabase, a member of
 * service_role) calls it in a transaction of its own after `set local role service_role`.
 */
import pg from "pg";
import { DatabaseFailure, type SqlArgs, type SqlFunction, type SqlResult } from "./supabase.ts";

/** Connections per function instance: as many as concurrent deliveries we expect (the bench sends 16). */
const POOL_SIZE = 16;
/** How long to wait for a connection before the store counts as the database being down. */
const CONNECT_TIMEOUT_MS = 5_000;

export interface DirectSql {
  call<Fn extends SqlFunction>(fn: Fn, args: SqlArgs<Fn>): Promise<SqlResult<Fn>>;
  end(): Promise<void>;
}

/**
 * An error the server sent (pg's DatabaseError, with its SQLSTATE) keeps its code; anything
 * else (refused, reset, EPIPE, timed out) is a lost connection.
 */
function failure(error: unknown): DatabaseFailure {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof pg.DatabaseError && typeof error.code === "string") return new DatabaseFailure(error.code, message);
  // No SQLSTATE: the server was never reached or the connection broke (08006, status 0 = unreachable).
  return new DatabaseFailure("08006", message, 0);
}

/**
 * Whether the login itself passes `private.caller_is_service` (a superuser, or a role that
 * bypasses RLS: the same test that function makes for a direct login), asked once per
 * connection. Then calls need no role switch; otherwise each runs as `service_role`.
 */
const serviceLogins = new WeakMap<pg.PoolClient, boolean>();
async function loginIsService(client: pg.PoolClient): Promise<boolean> {
  let known = serviceLogins.get(client);
  if (known === undefined) {
    const { rows } = await client.query<{ service: boolean }>(
      "select coalesce((select rolsuper or rolbypassrls from pg_catalog.pg_roles where rolname = session_user), false) as service",
    );
    known = rows[0]!.service;
    serviceLogins.set(client, known);
  }
  return known;
}

export function directSql(databaseUrl: string): DirectSql {
  const pool = new pg.Pool({ connectionString: databaseUrl, max: POOL_SIZE, connectionTimeoutMillis: CONNECT_TIMEOUT_MS });
  // An idle connection the server closes must not crash the function; the next call reconnects.
  pool.on("error", () => {});
  return {
    async call(fn, args) {
      const names = Object.keys(args);
      if (!/^[a-z_][a-z0-9_]*$/.test(fn) || names.some((name) => !/^[a-z_][a-z0-9_]*$/.test(name))) {
        throw new Error(`not a SQL function call: ${fn}`);
      }
      const values = names.map((name) => {
        const value = (args as Record<string, unknown>)[name];
        // jsonb arguments travel as JSON text; scalars as themselves.
        return value !== null && typeof value === "object" ? JSON.stringify(value) : value;
      });
      const call = `select public.${fn}(${names.map((name, i) => `${name} => $${i + 1}`).join(", ")}) as result`;
      let client: pg.PoolClient;
      try {
        client = await pool.connect();
      } catch (error) {
        throw failure(error);
      }
      let broken: Error | undefined;
      let inTransaction = false;
      try {
        if (await loginIsService(client)) {
          // One statement, one round trip: the login is already what the REST API's role is.
          return (await client.query<{ result: SqlResult<typeof fn> }>(call, values)).rows[0]!.result;
        }
        inTransaction = true;
        await client.query("begin");
        await client.query("set local role service_role");
        const { rows } = await client.query<{ result: SqlResult<typeof fn> }>(call, values);
        await client.query("commit");
        return rows[0]!.result;
      } catch (error) {
        if (inTransaction) {
          await client.query("rollback").catch((rollbackError: Error) => {
            broken = rollbackError;
          });
        }
        throw failure(error);
      } finally {
        // A connection that could not roll back is dropped, not reused.
        client.release(broken);
      }
    },
    end: () => pool.end(),
  };
}
