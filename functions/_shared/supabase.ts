/**
 * Database clients. The service client acts as the platform and never carries a user's
 * token; the user client carries the caller's JWT so RLS decides what they see.
 */
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import { functionEnv } from "./env.ts";

const noSession = { auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false } };

let service: SupabaseClient | undefined;

export function serviceClient(): SupabaseClient {
  const env = functionEnv();
  service ??= createClient(env.supabaseUrl, env.supabaseServiceRoleKey, noSession);
  return service;
}

export function userClient(authorization: string): SupabaseClient {
  const env = functionEnv();
  return createClient(env.supabaseUrl, env.supabaseAnonKey, {
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

/** Calls a SQL function, throwing a DatabaseFailure with its SQLSTATE on error. */
export async function rpc<T>(client: SupabaseClient, fn: string, args: Record<string, unknown>): Promise<T> {
  const { data, error, status } = await client.rpc(fn, args);
  if (error) throw new DatabaseFailure(error.code ?? "", error.message, status);
  return data as T;
}

/**
 * SQLSTATEs and PostgREST codes that mean "the database cannot be reached or used right now":
 * PostgREST's PGRST000 (could not connect), PGRST001 (connection lost), PGRST002 (schema cache
 * not loaded); Postgres's connection exceptions (class 08), shutdowns and start-ups (57P01,
 * 57P02, 57P03) and too many connections (53300).
 */
const UNAVAILABLE_CODES = new Set(["PGRST000", "PGRST001", "PGRST002", "57P01", "57P02", "57P03", "53300"]);

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
