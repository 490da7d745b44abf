/**
 * The Billing page's tab lives in the address (`?tab=credits`), so a tab can be bookmarked or
 * shared, and Back and Forward move between the tabs a member opened. A query parameter
 * rather than a path: the billing function's Stripe return URLs (`/?checkout=…`,
 * `/?portal=returned`) and a static host's single-page fallback keep working unchanged, and
 * no router library is needed for four tabs (history.pushState + popstate, under 1 KB).
 */
import { useCallback, useEffect, useState } from "react";

export const BILLING_TABS = [
  { id: "overview", label: "Overview" },
  { id: "plans", label: "Plans" },
  { id: "credits", label: "Credits" },
  { id: "history", label: "History" },
] as const;
export type BillingTabId = (typeof BILLING_TABS)[number]["id"];

export const TAB_PARAM = "tab";

function asTab(value: string | null): BillingTabId | null {
  return BILLING_TABS.find((tab) => tab.id === value)?.id ?? null;
}

/** The tab a URL names: `?tab=`, else the `#credits` form earlier versions wrote, else Overview. */
export function tabFromLocation(search: string, hash: string): BillingTabId {
  return asTab(new URLSearchParams(search).get(TAB_PARAM)) ?? asTab(hash.replace(/^#/, "")) ?? "overview";
}

/** The address for `tab`, keeping every other query parameter; Overview is the bare address. */
export function urlForTab(pathname: string, search: string, tab: BillingTabId): string {
  const params = new URLSearchParams(search);
  if (tab === "overview") params.delete(TAB_PARAM);
  else params.set(TAB_PARAM, tab);
  const query = params.toString();
  return `${pathname}${query ? `?${query}` : ""}`;
}

/** The selected tab, read from and written to the address bar (one history entry per tab change). */
export function useTabInUrl(): [BillingTabId, (tab: BillingTabId) => void] {
  const [tab, setTab] = useState<BillingTabId>(() => tabFromLocation(window.location.search, window.location.hash));

  useEffect(() => {
    const onPopState = () => setTab(tabFromLocation(window.location.search, window.location.hash));
    window.addEventListener("popstate", onPopState);
    return () => window.removeEventListener("popstate", onPopState);
  }, []);

  const select = useCallback((next: BillingTabId) => {
    setTab(next);
    const url = urlForTab(window.location.pathname, window.location.search, next);
    if (url !== `${window.location.pathname}${window.location.search}` || window.location.hash) {
      window.history.pushState(null, "", url);
    }
  }, []);

  return [tab, select];
}
