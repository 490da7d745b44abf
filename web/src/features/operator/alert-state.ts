import { formatDateTime, humanize } from "@/lib/format";

export interface AlertEnding {
  dismissed_at: string | null;
  resolved_at: string | null;
  resolved_reason: string | null;
}

/**
 * How an alert ended, as a suffix for its line: resolved by itself (and why: the balance was
 * restored, the invoice paid) or dismissed by a member; empty while it is open. An operator
 * reading an organization's alerts needs to tell "somebody clicked it away" from "it stopped
 * being true".
 */
export function alertState(alert: AlertEnding): string {
  if (alert.resolved_at) {
    const why = alert.resolved_reason ? ` (${humanize(alert.resolved_reason)})` : "";
    return ` · resolved ${formatDateTime(alert.resolved_at)}${why}`;
  }
  return alert.dismissed_at ? " · dismissed" : "";
}
