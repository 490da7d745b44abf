/**
 * The dashboard's Supabase client, assembled from the two packages supabase-js itself is built
 * from: `@supabase/postgrest-js` (tables and RPCs) and `@supabase/auth-js` (sessions). The
 * dashboard never uses Realtime, Storage or `functions.invoke`, and `createClient` bundles all
 * three whether they are used or not (about 20 KB gzipped of the first chunk). Everything below
 * is what `createClient` does for the two parts we keep: the same session storage key, the
 * same token refresh, and the same `apikey` / `Authorization` headers on every REST request,
 * so RLS sees the signed-in user exactly as it would through supabase-js.
 */
import { AuthClient } from "@supabase/auth-js";
import { PostgrestClient } from "@supabase/postgrest-js";
import { createContext, useContext } from "react";
import type { Database } from "@/types/database";
import type { AppConfig } from "./config";

type BillingRest = PostgrestClient<Database>;

/** The typed client every fetcher uses; RLS decides what it can read. */
export interface BillingSupabaseClient {
  /** Sign-in, sign-out, the session and its refresh (GoTrue). */
  readonly auth: InstanceType<typeof AuthClient>;
  /** A table or view query, typed by the generated database types. */
  readonly from: BillingRest["from"];
  /** A SQL function call, typed by the generated database types. */
  readonly rpc: BillingRest["rpc"];
}

/**
 * Creates the browser client: the session lives in localStorage (kept across reloads) and
 * is refreshed before it expires, as supabase-js does by default.
 */
export function createSupabaseClient(config: AppConfig, fetchImpl?: typeof fetch): BillingSupabaseClient {
  const baseUrl = new URL(config.supabaseUrl.endsWith("/") ? config.supabaseUrl : `${config.supabaseUrl}/`);
  const key = config.supabaseAnonKey;
  const send: typeof fetch = fetchImpl ?? ((input, init) => fetch(input, init));
  const auth = new AuthClient({
    url: new URL("auth/v1", baseUrl).href,
    headers: { Authorization: `Bearer ${key}`, apikey: key },
    // supabase-js's key, so a session saved before this client existed is still found.
    storageKey: `sb-${baseUrl.hostname.split(".")[0]}-auth-token`,
    persistSession: true,
    autoRefreshToken: true,
    detectSessionInUrl: false,
    fetch: send,
  });

  // Each REST request carries the user's access token, read (and refreshed if it is about to
  // expire) at call time, or the anon key when signed out: what supabase-js's fetchWithAuth does.
  const fetchWithSession: typeof fetch = async (input, init) => {
    const { data } = await auth.getSession();
    const headers = new Headers(init?.headers);
    if (!headers.has("apikey")) headers.set("apikey", key);
    if (!headers.has("Authorization")) headers.set("Authorization", `Bearer ${data.session?.access_token ?? key}`);
    return send(input, { ...init, headers });
  };
  const rest: BillingRest = new PostgrestClient<Database>(new URL("rest/v1", baseUrl).href, { fetch: fetchWithSession });

  // bind() cannot carry the overloads' generics, so the methods get their declared types back.
  return { auth, from: rest.from.bind(rest) as BillingRest["from"], rpc: rest.rpc.bind(rest) as BillingRest["rpc"] };
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
