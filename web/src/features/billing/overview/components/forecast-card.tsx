import { EmptyState, QueryView, Skeleton } from "@/components/status";
import { formatCreditNumber, formatDate } from "@/lib/format";
import { canManageBilling } from "@/lib/roles";
import type { OrganizationRole } from "@/types/billing";
import { useCreditBalance } from "../../api/get-credit-balance";
import { useSubscription } from "../../api/get-subscription";
import type { BillingTabId } from "../../tabs/tab-location";
import { useCreditPrecedence } from "../api/get-credit-precedence";
import { useSubscriptionLots } from "../api/get-subscription-lots";
import { useUsage } from "../api/get-usage";
import { averageDailyConsumption, forecastBalance, RECENT_RATE_DAYS, runsOutBeforeRenewal } from "../look-ahead";
import { combineQueries } from "./combine-queries";

/** "About 12 days", "Less than a day". */
function daysText(days: number): string {
  if (days < 1) return "Less than a day";
  const whole = Math.floor(days);
  return `About ${whole} ${whole === 1 ? "day" : "days"}`;
}

/** How long the spendable balance lasts at the last 7 days' average, and what to do when it runs out before the renewal. */
export function ForecastCard({
  organizationId,
  role,
  onOpenTab,
}: {
  organizationId: string;
  role: OrganizationRole;
  onOpenTab: (tab: BillingTabId) => void;
}) {
  const query = combineQueries([
    useCreditBalance(organizationId),
    useUsage(organizationId),
    useSubscriptionLots(organizationId),
    useCreditPrecedence(organizationId),
    useSubscription(organizationId),
  ]);
  return (
    <QueryView query={query} loading={<Skeleton label="Working out how long the balance lasts…" lines={3} tall />} errorTitle="The forecast could not be made.">
      {([balance, usage, lots, precedence, subscription]) => {
        const now = new Date();
        const rate = averageDailyConsumption(usage, now);
        const rateText = `at the last ${RECENT_RATE_DAYS} days' average of ${formatCreditNumber(Math.round(rate))} credits a day`;
        if (rate === 0) {
          return <EmptyState>No credits used in the last {RECENT_RATE_DAYS} days, so the balance is not running down.</EmptyState>;
        }
        const forecast = forecastBalance({ purchased: balance.purchased, lots, dailyRate: rate, precedence, now });
        const renewing = subscription && !subscription.cancel_at_period_end && ["trialing", "active", "past_due"].includes(subscription.status);
        const renewsAt = renewing ? subscription.current_period_end : null;
        const short = runsOutBeforeRenewal(forecast, renewsAt);
        return (
          <div className="stack">
            {balance.total <= 0 ? (
              <p className="big-number">No credits left</p>
            ) : (
              <p className="big-number">
                {daysText(forecast.daysLeft ?? 0)}
                {forecast.runsOutAt ? <span className="big-number-of">, until {formatDate(forecast.runsOutAt.toISOString())}</span> : null}
              </p>
            )}
            <p className="muted">{rateText[0]!.toUpperCase() + rateText.slice(1)}.</p>
            {short ? (
              <div className="notice">
                <p>
                  {balance.total <= 0 ? "Usage is being refused." : "The balance runs out"}{" "}
                  {renewsAt ? `before your plan renews on ${formatDate(renewsAt)}.` : balance.total <= 0 ? "" : "and no plan renews it."}
                </p>
                {canManageBilling(role) ? (
                  <div className="card-actions">
                    <button type="button" className="button" onClick={() => onOpenTab("credits")}>
                      Buy credits
                    </button>
                    <button type="button" className="button secondary" onClick={() => onOpenTab("credits")}>
                      Turn on auto top-up
                    </button>
                  </div>
                ) : (
                  <p>An owner or admin of this organization can buy credits or turn on auto top-up.</p>
                )}
              </div>
            ) : null}
          </div>
        );
      }}
    </QueryView>
  );
}
