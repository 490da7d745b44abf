import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import { createContext, useContext } from "react";
import type { Database } from "@/types/database";
import type { AppConfig } from "./config";

/** The typed client every fetcher uses; RLS decides what it can read. */
export type BillingSupabaseClient = SupabaseClient<Database>;

/**
 * Creates the browser client: the session lives in localStorage (kept across reloads) and
 * is refreshed before it expires, as supabase-js does by default.
 */
export function createSupabaseClient(config: AppConfig, fetchImpl?: typeof fetch): BillingSupabaseClient {
  return createClient<Database>(config.supabaseUrl, config.supabaseAnonKey, {
    auth: { persistSession: true, autoRefreshToken: true, detectSessionInUrl: false },
    ...(fetchImpl ? { global: { fetch: fetchImpl } } : {}),
  });
}

export interface Backend {
  supabase: BillingSupabaseClient;
  config: AppConfig;
}

const BackendContext = createContext<Backend | null>(null);

/** Provides the client and config to the API hooks (so tests can hand in a fake backend). */
export const BackendProvider = BackendContext.Provider;

/** The Supabase client and config for API hooks. */
export function useBackend(): Backend {
  const backend = useContext(BackendContext);
  if (!backend) throw new Error("useBackend must be used inside <BackendProvider>");
  return backend;
}
