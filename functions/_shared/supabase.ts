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

/** Calls a SQL function, throwing a DatabaseFailure with its SQLSTATE on error. */
export async function rpc<T>(client: SupabaseClient, fn: string, args: Record<string, unknown>): Promise<T> {
  const { data, error } = await client.rpc(fn, args);
  if (error) throw new DatabaseFailure(error.code ?? "", error.message);
  return data as T;
}

export class DatabaseFailure extends Error {
  constructor(readonly code: string, message: string) {
    super(message);
    this.name = "DatabaseFailure";
  }

  /**
   * True when retrying cannot help: the data was refused (bad value, unknown reference,
   * conflict). Anything else (connection trouble, timeouts, a lock timeout) may pass.
   */
  get permanent(): boolean {
    return this.code.startsWith("22") || this.code.startsWith("23") ||
      ["PT400", "PT404", "PT409", "P0001"].includes(this.code);
  }
}
