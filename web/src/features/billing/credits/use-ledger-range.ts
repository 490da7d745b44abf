import { useCallback, useEffect, useState } from "react";
import { dayOf } from "./ledger-grouping";
import { rangeFromSearch, searchWithRange, type LedgerRange } from "./ledger-range";

const today = () => dayOf(new Date().toISOString());

/**
 * The ledger's date range, read from and written to the address. A new range replaces the
 * current history entry rather than adding one, so Back still moves between tabs.
 */
export function useLedgerRangeInUrl(): [LedgerRange, (range: LedgerRange) => void] {
  const [range, setRange] = useState<LedgerRange>(() => rangeFromSearch(window.location.search, today()));

  useEffect(() => {
    const onPopState = () => setRange(rangeFromSearch(window.location.search, today()));
    window.addEventListener("popstate", onPopState);
    return () => window.removeEventListener("popstate", onPopState);
  }, []);

  const select = useCallback((next: LedgerRange) => {
    setRange(next);
    const search = searchWithRange(window.location.search, next);
    window.history.replaceState(window.history.state, "", `${window.location.pathname}${search}${window.location.hash}`);
  }, []);

  return [range, select];
}
