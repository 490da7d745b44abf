import { useQueryClient, type Query } from "@tanstack/react-query";
import { useEffect, useSyncExternalStore } from "react";
import { isServiceUnreachable } from "@/lib/errors";

/** How often, while the service cannot be reached, every failed read is tried again. */
export const RECONNECT_INTERVAL_MS = 5_000;

function isUnreachable(query: Query): boolean {
  return query.state.status === "error" && isServiceUnreachable(query.state.error);
}

/**
 * The one place that says the service cannot be reached: shown while any read's last attempt
 * found no server, it retries those reads every few seconds by itself and disappears once they
 * answer. Cards keep their last figures meanwhile (QueryView marks them as not current).
 */
export function ConnectionBanner({ retryEveryMs = RECONNECT_INTERVAL_MS }: { retryEveryMs?: number }) {
  const queryClient = useQueryClient();
  const cache = queryClient.getQueryCache();
  const unreachable = useSyncExternalStore(
    (onChange) => cache.subscribe(onChange),
    () => cache.getAll().some(isUnreachable),
  );

  useEffect(() => {
    if (!unreachable) return;
    const timer = window.setInterval(() => {
      void queryClient.refetchQueries({ predicate: isUnreachable, type: "active" });
    }, retryEveryMs);
    return () => window.clearInterval(timer);
  }, [unreachable, queryClient, retryEveryMs]);

  if (!unreachable) return null;
  // Text that never changes while shown, so screen readers announce the outage once.
  return (
    <div className="banner banner-warning connection-banner" role="alert">
      <p>
        <strong>The billing service cannot be reached.</strong> The figures below are the last ones received and may not be
        current. It is tried again automatically every few seconds.
      </p>
    </div>
  );
}
