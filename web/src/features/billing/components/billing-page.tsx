import { lazy, Suspense, useEffect, useRef, useState, type KeyboardEvent } from "react";
import { Loading } from "@/components/status";
import type { OrganizationRole } from "@/types/billing";
import { OverviewTab } from "../overview/components/overview-tab";
import { parseReturnFromStripe, RETURN_FROM_STRIPE_PARAMS, type ReturnFromStripe } from "../api/checkout-return";
import { ReturnFromStripeBanner } from "./return-from-stripe";
import { ActionAlertBanners } from "../alerts/action-alert-banners";
import { BILLING_TABS, useTabInUrl, type BillingTabId } from "../tabs/tab-location";
import { tabForKey } from "@/lib/tab-keys";
import { BillingViewerProvider } from "./billing-viewer";

// Only Overview is on the first screen; the other tabs are separate chunks.
const PlansTab = lazy(() => import("../plans/components/plans-tab"));
const CreditsTab = lazy(() => import("../credits/components/credits-tab"));
const HistoryTab = lazy(() => import("../history/components/history-tab"));

const TABS = BILLING_TABS;

export interface BillingPageProps {
  organizationId: string;
  role: OrganizationRole;
}

/** The Billing page: four tabs (WAI-ARIA tabs pattern, arrow keys move between them). */
export function BillingPage({ organizationId, role }: BillingPageProps) {
  const [tab, setTab] = useTabInUrl();
  const [returned, setReturned] = useState<ReturnFromStripe | null>(() => parseReturnFromStripe(window.location.search));
  const tabRefs = useRef<Partial<Record<BillingTabId, HTMLButtonElement | null>>>({});

  function select(id: BillingTabId, focus = false) {
    if (id !== tab) setTab(id);
    if (focus) tabRefs.current[id]?.focus();
  }

  function onKeyDown(event: KeyboardEvent<HTMLDivElement>) {
    const next = tabForKey(event.key, TABS.map((t) => t.id), tab);
    if (next === null) return;
    select(next, true);
    event.preventDefault();
  }

  // The return parameters are read once, then taken out of the address bar: a reload, a
  // bookmark or switching to another organization must not announce the payment again.
  useEffect(() => {
    const params = new URLSearchParams(window.location.search);
    if (!RETURN_FROM_STRIPE_PARAMS.some((name) => params.has(name))) return;
    for (const name of RETURN_FROM_STRIPE_PARAMS) params.delete(name);
    const query = params.toString();
    window.history.replaceState(null, "", `${window.location.pathname}${query ? `?${query}` : ""}${window.location.hash}`);
  }, []);

  return (
    <BillingViewerProvider value={{ organizationId, role }}>
    <section aria-labelledby="billing-heading" className="billing">
      <h1 id="billing-heading">Billing</h1>
      <p className="muted org-id">
        Organization ID <code>{organizationId}</code> (the <code>organization_id</code> your services send to the billing API)
      </p>
      {returned ? <ReturnFromStripeBanner organizationId={organizationId} returned={returned} onDismiss={() => setReturned(null)} /> : null}
      <ActionAlertBanners organizationId={organizationId} role={role} onOpenCredits={() => select("credits")} />
      <div role="tablist" aria-label="Billing sections" className="tabs" onKeyDown={onKeyDown}>
        {TABS.map((t) => (
          <button
            key={t.id}
            ref={(element) => {
              tabRefs.current[t.id] = element;
            }}
            type="button"
            role="tab"
            id={`tab-${t.id}`}
            aria-selected={tab === t.id}
            // Only the selected tab's panel is rendered (the others load lazily), so only it is referenced.
            aria-controls={tab === t.id ? `panel-${t.id}` : undefined}
            tabIndex={tab === t.id ? 0 : -1}
            onClick={() => select(t.id)}
          >
            {t.label}
          </button>
        ))}
      </div>
      <div role="tabpanel" id={`panel-${tab}`} aria-labelledby={`tab-${tab}`} tabIndex={0} className="tab-panel">
        <Suspense fallback={<Loading label="Loading this tab…" />}>
          {tab === "overview" ? <OverviewTab organizationId={organizationId} /> : null}
          {tab === "plans" ? <PlansTab organizationId={organizationId} role={role} /> : null}
          {tab === "credits" ? <CreditsTab organizationId={organizationId} role={role} /> : null}
          {tab === "history" ? <HistoryTab organizationId={organizationId} /> : null}
        </Suspense>
      </div>
    </section>
    </BillingViewerProvider>
  );
}
