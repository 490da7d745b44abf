/**
 * Auth state for React. This is the ONLY module that imports `@supabase/auth-helpers-react`
 * (required by the issue, deprecated upstream): to drop it, replace AuthProvider/useAuth
 * with a context fed by `supabase.auth.getSession()` + `onAuthStateChange`; nothing else
 * in the app changes.
 */
import type { Session, User } from "@supabase/auth-js";
import { SessionContextProvider, useSessionContext } from "@supabase/auth-helpers-react";
import type { SupabaseClient } from "@supabase/supabase-js";
import type { ReactNode } from "react";
import { DatabaseError } from "./errors";
import type { BillingSupabaseClient } from "./supabase";

/** Keeps the session in React state, following sign-in, sign-out and token refreshes. */
export function AuthProvider({ supabase, children }: { supabase: BillingSupabaseClient; children: ReactNode }) {
  // The provider is typed for a whole supabase-js client but reads only its `auth` (getSession
  // and onAuthStateChange), which ours is: the same auth-js AuthClient supabase-js wraps.
  const client = supabase as unknown as SupabaseClient;
  return <SessionContextProvider supabaseClient={client}>{children}</SessionContextProvider>;
}

export interface AuthState {
  isLoading: boolean;
  session: Session | null;
  user: User | null;
}

/** The current session (null when signed out), and whether it is still being restored. */
export function useAuth(): AuthState {
  const { isLoading, session } = useSessionContext();
  return { isLoading, session, user: session?.user ?? null };
}

function fail(error: { message: string; code?: string; status?: number } | null): void {
  if (error) throw new DatabaseError(error.code ?? String(error.status ?? "auth"), error.message);
}

/** Signs in with email and password; throws with the server's message on failure. */
export async function signIn(supabase: BillingSupabaseClient, email: string, password: string): Promise<void> {
  const { error } = await supabase.auth.signInWithPassword({ email, password });
  fail(error);
}

/** Creates an account; returns whether a session started (false when email confirmation is on). */
export async function signUp(supabase: BillingSupabaseClient, email: string, password: string): Promise<boolean> {
  const { data, error } = await supabase.auth.signUp({ email, password });
  fail(error);
  return data.session !== null;
}

/** Ends the session on the server and locally. */
export async function signOut(supabase: BillingSupabaseClient): Promise<void> {
  const { error } = await supabase.auth.signOut();
  fail(error);
}
