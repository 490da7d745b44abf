import { EmptyState, QueryView, Skeleton } from "@/components/status";
import { formatCreditNumber, formatCredits, formatDate } from "@/lib/format";
import { useSubscription } from "../../api/get-subscription";
import { BUY_CREDITS, NextStep } from "../../components/next-step";
import { useSubscriptionLots } from "../api/get-subscription-lots";
import { allowanceUsage } from "../look-ahead";
import { combineQueries } from "./combine-queries";

const COMPARE_PLANS = { tab: "plans", label: "Compare plans" } as const;

/** From this share of the allowance used, the card suggests more credits or a bigger plan. */
const NEARLY_USED = 0.8;

/** Subscription credits used this period against what the period granted (trial credits during a trial). */
export function AllowanceCard({ organizationId }: { organizationId: string }) {
  const subscription = useSubscription(organizationId);
  const lots = useSubscriptionLots(organizationId);
  return (
    <QueryView
      query={combineQueries([subscription, lots])}
      loading={<Skeleton label="Loading this period's credits…" lines={3} tall />}
      errorTitle="This period's credits could not be loaded."
    >
      {([current, rows]) => {
        const live = current && !["canceled", "expired", "incomplete_expired"].includes(current.status) ? current : null;
        const usage = allowanceUsage(rows, live, new Date());
        if (!live || !usage) return <EmptyState>No subscription, so no credits each period.</EmptyState>;
        if (usage.fraction === null) return <EmptyState>This period has no subscription credits: your plan includes none, or they have not arrived yet.</EmptyState>;
        const trial = live.status === "trialing";
        const nearlyUsed = usage.fraction >= NEARLY_USED;
        return (
          <div className="stack">
            <p className="big-number">
              {formatCreditNumber(usage.used)} <span className="big-number-of">of {formatCredits(usage.granted)} used</span>
            </p>
            <meter className="allowance-meter" min={0} max={usage.granted} value={usage.used} high={usage.granted * NEARLY_USED} optimum={0}
              aria-label={`${trial ? "Trial" : "Subscription"} credits used this period`}>
              {Math.round(usage.fraction * 100)}%
            </meter>
            <p className="muted">
              {formatCredits(usage.remaining)} left{live.current_period_end ? ` until ${formatDate(trial && live.trial_end ? live.trial_end : live.current_period_end)}` : ""}
              {trial ? " (trial credits)" : ""}. Credits held by open reservations count as used.
            </p>
            {nearlyUsed ? <NextStep actions={[BUY_CREDITS, COMPARE_PLANS]} toDo="buy credits or change the plan" /> : null}
          </div>
        );
      }}
    </QueryView>
  );
}
