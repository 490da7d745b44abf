import { QueryClient } from "@tanstack/react-query";
import { isServiceUnreachable } from "./errors";

/**
 * How often figures that change outside the browser (balance, usage, alerts, the ledger)
 * are re-read while the page is visible: credits are consumed by the organization's
 * services through the API, not by anyone looking at this page. TanStack Query pauses
 * these refreshes while the tab is hidden.
 */
export const LIVE_REFRESH_MS = 10_000;

/** A query's polling: a period in ms, off, or decided again after each read. */
export type RefetchInterval = number | false | (() => number | false);

/**
 * One cache for the app; billing data is fresh for 30 s, and errors are retried once, except
 * an unreachable service: supabase-js has already retried those reads, and the
 * ConnectionBanner keeps retrying them while it tells the member, instead of a long spinner.
 */
export function createQueryClient(): QueryClient {
  return new QueryClient({
    defaultOptions: {
      queries: {
        staleTime: 30_000,
        retry: (failures, error) => failures < 1 && !isServiceUnreachable(error),
        refetchOnWindowFocus: true,
      },
      mutations: { retry: 0 },
    },
  });
}
