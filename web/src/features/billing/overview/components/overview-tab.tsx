import { useRef } from "react";
import { EmptyState, QueryView, Skeleton } from "@/components/status";
import { useEventNames } from "../../api/get-event-names";
import { BalanceCard } from "../../components/balance-card";
import { useUsage } from "../api/get-usage";
import { AlertList } from "./alert-list";
import { AllowanceCard } from "./allowance-card";
import { combineQueries } from "./combine-queries";
import { ExpiryCard } from "./expiry-card";
import { ForecastCard } from "./forecast-card";
import { SubscriptionCard } from "./subscription-card";
import { UsageChart } from "./usage-chart";

function UsageCard({ organizationId }: { organizationId: string }) {
  // The catalog's event names come with the figures, so the legend never shows a key first.
  const query = combineQueries([useUsage(organizationId), useEventNames()]);
  return (
    <QueryView query={query} loading={<Skeleton label="Loading usage…" lines={6} />} errorTitle="Usage could not be loaded.">
      {([rows, eventNames]) =>
        rows.length === 0 ? <EmptyState>No credits used in the last 30 days.</EmptyState> : <UsageChart rows={rows} eventNames={eventNames} />
      }
    </QueryView>
  );
}

/**
 * Overview tab: the subscription with its next charge and card, the balance, and the look
 * ahead (this period's allowance used, how long the balance lasts, what expires next), each
 * with the action it calls for; then 30-day usage and active alerts.
 */
export function OverviewTab({ organizationId }: { organizationId: string }) {
  // A dismissed alert takes its button with it; focus moves to the section's heading
  // instead of falling back to the start of the page.
  const alertsHeading = useRef<HTMLHeadingElement>(null);
  return (
    <div className="grid">
      <section className="card" aria-labelledby="ov-plan">
        <h2 id="ov-plan">Subscription</h2>
        <SubscriptionCard organizationId={organizationId} />
      </section>
      <section className="card" aria-labelledby="ov-balance">
        <h2 id="ov-balance">Credit balance</h2>
        <BalanceCard organizationId={organizationId} />
      </section>
      <section className="card" aria-labelledby="ov-allowance">
        <h2 id="ov-allowance">Subscription credits this period</h2>
        <AllowanceCard organizationId={organizationId} />
      </section>
      <section className="card" aria-labelledby="ov-forecast">
        <h2 id="ov-forecast">How long the balance lasts</h2>
        <ForecastCard organizationId={organizationId} />
      </section>
      <section className="card wide" aria-labelledby="ov-expiry">
        <h2 id="ov-expiry">What expires next</h2>
        <ExpiryCard organizationId={organizationId} />
      </section>
      <section className="card wide" aria-labelledby="ov-usage">
        <h2 id="ov-usage">Usage, last 30 days</h2>
        <UsageCard organizationId={organizationId} />
      </section>
      <section className="card wide" aria-labelledby="ov-alerts">
        <h2 id="ov-alerts" tabIndex={-1} ref={alertsHeading}>
          Alerts
        </h2>
        <AlertList organizationId={organizationId} onDismissed={() => alertsHeading.current?.focus()} />
      </section>
    </div>
  );
}
