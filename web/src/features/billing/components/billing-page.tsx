import { lazy, Suspense, useRef, useState, type KeyboardEvent } from "react";
import { Loading } from "@/components/status";
import type { OrganizationRole } from "@/types/billing";
import { OverviewTab } from "../overview/components/overview-tab";
import { CheckoutReturnBanner } from "./checkout-return-banner";
import { parseCheckoutReturn, type CheckoutReturn } from "../api/checkout-return";

// Only Overview is on the first screen; the other tabs are separate chunks.
const PlansTab = lazy(() => import("../plans/components/plans-tab"));
const CreditsTab = lazy(() => import("../credits/components/credits-tab"));
const HistoryTab = lazy(() => import("../history/components/history-tab"));

const TABS = [
  { id: "overview", label: "Overview" },
  { id: "plans", label: "Plans" },
  { id: "credits", label: "Credits" },
  { id: "history", label: "History" },
] as const;
export type BillingTabId = (typeof TABS)[number]["id"];

function tabFromHash(hash: string): BillingTabId {
  const id = hash.replace(/^#/, "");
  return TABS.find((tab) => tab.id === id)?.id ?? "overview";
}

export interface BillingPageProps {
  organizationId: string;
  role: OrganizationRole;
}

/** The Billing page: four tabs (WAI-ARIA tabs pattern, arrow keys move between them). */
export function BillingPage({ organizationId, role }: BillingPageProps) {
  const [tab, setTab] = useState<BillingTabId>(() => tabFromHash(window.location.hash));
  const [checkoutReturn, setCheckoutReturn] = useState<CheckoutReturn | null>(() =>
    parseCheckoutReturn(window.location.search),
  );
  const tabRefs = useRef<Partial<Record<BillingTabId, HTMLButtonElement | null>>>({});

  function select(id: BillingTabId, focus = false) {
    setTab(id);
    window.history.replaceState(null, "", `${window.location.pathname}${window.location.search}#${id}`);
    if (focus) tabRefs.current[id]?.focus();
  }

  function onKeyDown(event: KeyboardEvent<HTMLDivElement>) {
    const index = TABS.findIndex((t) => t.id === tab);
    const step = event.key === "ArrowRight" ? 1 : event.key === "ArrowLeft" ? -1 : 0;
    if (step !== 0) select(TABS[(index + step + TABS.length) % TABS.length]!.id, true);
    else if (event.key === "Home") select(TABS[0].id, true);
    else if (event.key === "End") select(TABS[TABS.length - 1]!.id, true);
    else return;
    event.preventDefault();
  }

  function dismissCheckoutReturn() {
    setCheckoutReturn(null);
    const params = new URLSearchParams(window.location.search);
    for (const name of ["checkout", "kind", "session_id"]) params.delete(name);
    const query = params.toString();
    window.history.replaceState(null, "", `${window.location.pathname}${query ? `?${query}` : ""}${window.location.hash}`);
  }

  return (
    <section aria-labelledby="billing-heading" className="billing">
      <h1 id="billing-heading">Billing</h1>
      {checkoutReturn ? (
        <CheckoutReturnBanner organizationId={organizationId} checkoutReturn={checkoutReturn} onDismiss={dismissCheckoutReturn} />
      ) : null}
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
            aria-controls={`panel-${t.id}`}
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
  );
}
