/**
 * Database clients. The service client acts as the platform and never carries a user's
 * token; the user client carries the caller's JWT so RLS decides what they see.
 */
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import type { Database, Json } from "../../supabase/types/database.ts";
import { functionEnv } from "./env.ts";

export type { Database, Json };

/** A client typed by the generated database types (`npm run gen:types`). */
export type DatabaseClient = SupabaseClient<Database>;

type SqlFunctions = Database["public"]["Functions"];

/** The SQL functions the API exposes, by name. */
export type SqlFunction = keyof SqlFunctions;

/**
 * The arguments of a SQL function, as the generated types name them. Postgres has no
 * non-null parameters, and the generator types each one as its base type, so every argument
 * may also be null here (a sync outside a webhook passes no event id, say).
 */
export type SqlArgs<Fn extends SqlFunction> = { [Arg in keyof SqlFunctions[Fn]["Args"]]: SqlFunctions[Fn]["Args"][Arg] | null };

/** What a SQL function returns, as the generated types say (jsonb is `Json`). */
export type SqlResult<Fn extends SqlFunction> = SqlFunctions[Fn]["Returns"];

const noSession = { auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false } };

let service: DatabaseClient | undefined;

export function serviceClient(): DatabaseClient {
  const env = functionEnv();
  service ??= createClient<Database>(env.supabaseUrl, env.supabaseServiceRoleKey, noSession);
  return service;
}

export function userClient(authorization: string): DatabaseClient {
  const env = functionEnv();
  return createClient<Database>(env.supabaseUrl, env.supabaseAnonKey, {
    ...noSession,
    global: { headers: { Authorization: authorization } },
  });
}

/** A database error as supabase-js reports it (PostgREST's JSON). */
export interface DatabaseError {
  code: string;
  message: string;
}

/** The data of a supabase-js result, or its error as a DatabaseFailure (so one handler maps it). */
export function dataOf<R extends { data: unknown; error: { code?: string; message: string } | null; status?: number }>(
  result: R,
): Extract<R, { error: null }>["data"] {
  if (result.error) throw new DatabaseFailure(result.error.code ?? "", result.error.message, result.status);
  return result.data as Extract<R, { error: null }>["data"];
}

/**
 * Calls a SQL function through its generated types (a renamed or retyped argument fails the
 * type check), throwing a DatabaseFailure with its SQLSTATE on error.
 */
export async function rpc<Fn extends SqlFunction>(client: DatabaseClient, fn: Fn, args: SqlArgs<Fn>): Promise<SqlResult<Fn>> {
  // supabase-js's own rpc typing has no room for null arguments; the check is SqlArgs above.
  const { data, error, status } = await (client as SupabaseClient).rpc(fn, args);
  if (error) throw new DatabaseFailure(error.code ?? "", error.message, status);
  return data as SqlResult<Fn>;
}

/**
 * SQLSTATEs and PostgREST codes that mean "the database cannot be reached or used right now":
 * PostgREST's PGRST000 (could not connect), PGRST001 (connection lost), PGRST002 (schema cache
 * not loaded); Postgres's connection exceptions (class 08), shutdowns and start-ups (57P01,
 * 57P02, 57P03), too many connections (53300), and a lock that did not come within the
 * functions' `lock_timeout` (55P03: the organization is busy with a long transaction).
 */
const UNAVAILABLE_CODES = new Set(["PGRST000", "PGRST001", "PGRST002", "57P01", "57P02", "57P03", "53300", "55P03"]);

export class DatabaseFailure extends Error {
  /**
   * @param code the SQLSTATE or PostgREST code ("" when there was none)
   * @param status the HTTP status the gateway answered (0 when it could not be reached)
   */
  constructor(readonly code: string, message: string, readonly status?: number) {
    super(message);
    this.name = "DatabaseFailure";
  }

  /**
   * True when the database (or the gateway in front of it) is down or unreachable: nothing
   * was done, and the same request may succeed shortly, so the caller gets a 503.
   */
  get unavailable(): boolean {
    return UNAVAILABLE_CODES.has(this.code) || this.code.startsWith("08") || this.status === 503 ||
      this.status === 0;
  }

  /**
   * True when retrying cannot help: the data was refused (bad value, unknown reference,
   * conflict). Anything else (connection trouble, timeouts, a lock timeout) may pass.
   */
  get permanent(): boolean {
    if (this.unavailable) return false;
    return this.code.startsWith("22") || this.code.startsWith("23") ||
      ["PT400", "PT404", "PT409", "P0001"].includes(this.code);
  }
}
