import { useRef } from "react";
import { EmptyState, QueryView, Skeleton } from "@/components/status";
import { formatDate } from "@/lib/format";
import { usePlans } from "../../api/get-plans";
import { useSubscription } from "../../api/get-subscription";
import { BalanceCard } from "../../components/balance-card";
import { CHOOSE_A_PLAN, NextStep } from "../../components/next-step";
import { SubscriptionStatusBadge } from "../../components/subscription-status";
import { useUsage } from "../api/get-usage";
import { AlertList } from "./alert-list";
import { UsageChart } from "./usage-chart";
import type { OrganizationSubscription } from "@/types/billing";

function PlanCard({ organizationId }: { organizationId: string }) {
  const subscription = useSubscription(organizationId);
  const plans = usePlans();
  return (
    <QueryView query={subscription} loading={<Skeleton label="Loading subscription…" lines={4} />} errorTitle="The subscription could not be loaded.">
      {(current) =>
        current ? <PlanFacts current={current} planName={planNameOf(current.plan_id)} /> : (
          <EmptyState>
            No subscription yet: a plan gives you credits every period.
            <NextStep actions={[CHOOSE_A_PLAN]} toDo="choose a plan" />
          </EmptyState>
        )
      }
    </QueryView>
  );

  function planNameOf(planId: string | null): string {
    const plan = plans.data?.find((p) => p.id === planId);
    // The catalog is a separate read: say it is loading rather than flash "Unknown plan".
    return plan?.name ?? (plans.isPending ? "…" : "Unknown plan");
  }
}

function PlanFacts({ current, planName }: { current: OrganizationSubscription; planName: string }) {
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
  return (
    <QueryView query={usage} loading={<Skeleton label="Loading usage…" lines={6} />} errorTitle="Usage could not be loaded.">
      {(rows) => (rows.length === 0 ? <EmptyState>No credits used in the last 30 days.</EmptyState> : <UsageChart rows={rows} />)}
    </QueryView>
  );
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
