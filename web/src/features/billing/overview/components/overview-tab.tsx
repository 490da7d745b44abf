import { useRef } from "react";
import { EmptyState, ErrorState, Loading } from "@/components/status";
import { formatDate } from "@/lib/format";
import { usePlans } from "../../api/get-plans";
import { useSubscription } from "../../api/get-subscription";
import { BalanceCard } from "../../components/balance-card";
import { SubscriptionStatusBadge } from "../../components/subscription-status";
import { useUsage } from "../api/get-usage";
import { AlertList } from "./alert-list";
import { UsageChart } from "./usage-chart";

function PlanCard({ organizationId }: { organizationId: string }) {
  const subscription = useSubscription(organizationId);
  const plans = usePlans();
  if (subscription.isPending) return <Loading label="Loading subscription…" />;
  if (subscription.isError) {
    return <ErrorState title="The subscription could not be loaded." error={subscription.error} onRetry={() => void subscription.refetch()} />;
  }
  const current = subscription.data;
  if (!current) return <EmptyState>No subscription yet. Choose a plan on the Plans tab.</EmptyState>;
  const plan = plans.data?.find((p) => p.id === current.plan_id);
  // The catalog is a separate read: say it is loading rather than flash "Unknown plan".
  const planName = plan?.name ?? (plans.isPending ? "…" : "Unknown plan");
  return (
    <dl className="facts">
      <dt>Plan</dt>
      <dd>
        {planName} ({current.billing_interval === "year" ? "annual" : "monthly"})
      </dd>
      <dt>Status</dt>
      <dd>
        <SubscriptionStatusBadge subscription={current} />
      </dd>
      {current.current_period_end ? (
        <>
          <dt>Current period ends</dt>
          <dd>{formatDate(current.current_period_end)}</dd>
        </>
      ) : null}
      {current.trial_end && current.status === "trialing" ? (
        <>
          <dt>Trial ends</dt>
          <dd>{formatDate(current.trial_end)}</dd>
        </>
      ) : null}
    </dl>
  );
}

function UsageCard({ organizationId }: { organizationId: string }) {
  const usage = useUsage(organizationId);
  if (usage.isPending) return <Loading label="Loading usage…" />;
  if (usage.isError) return <ErrorState title="Usage could not be loaded." error={usage.error} onRetry={() => void usage.refetch()} />;
  if (usage.data.length === 0) return <EmptyState>No credits used in the last 30 days.</EmptyState>;
  return <UsageChart rows={usage.data} />;
}

/** Overview tab: plan and status, balance, 30-day usage, active alerts. */
export function OverviewTab({ organizationId }: { organizationId: string }) {
  // A dismissed alert takes its button with it; focus moves to the section's heading
  // instead of falling back to the start of the page.
  const alertsHeading = useRef<HTMLHeadingElement>(null);
  return (
    <div className="grid">
      <section className="card" aria-labelledby="ov-plan">
        <h2 id="ov-plan">Subscription</h2>
        <PlanCard organizationId={organizationId} />
      </section>
      <section className="card" aria-labelledby="ov-balance">
        <h2 id="ov-balance">Credit balance</h2>
        <BalanceCard organizationId={organizationId} />
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
