import { QueryClient } from "@tanstack/react-query";

/** One cache for the app; billing data is fresh for 30 s, and errors are retried once. */
export function createQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: { staleTime: 30_000, retry: 1, refetchOnWindowFocus: true },
      mutations: { retry: 0 },
    },
  });
}
