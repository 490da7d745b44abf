import { QueryClientProvider, type QueryClient } from "@tanstack/react-query";
import type { ReactNode } from "react";
import { AuthProvider } from "@/lib/auth";
import { BackendProvider, type Backend } from "@/lib/supabase";

/** Everything the features need: the Supabase client and config, auth state, the query cache. */
export function AppProviders({ backend, queryClient, children }: { backend: Backend; queryClient: QueryClient; children: ReactNode }) {
  return (
    <BackendProvider value={backend}>
      <AuthProvider supabase={backend.supabase}>
        <QueryClientProvider client={queryClient}>{children}</QueryClientProvider>
      </AuthProvider>
    </BackendProvider>
  );
}
