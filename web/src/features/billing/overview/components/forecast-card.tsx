import { EmptyState, QueryView, Skeleton } from "@/components/status";
import { formatCreditNumber, formatDate } from "@/lib/format";
import { useCreditBalance } from "../../api/get-credit-balance";
import { useSubscription } from "../../api/get-subscription";
import { BUY_CREDITS, NextStep, type NextStepAction } from "../../components/next-step";
import { useCreditPrecedence } from "../../credits/api/credit-precedence";
import { useSubscriptionLots } from "../api/get-subscription-lots";
import { useUsage } from "../api/get-usage";
import { averageDailyConsumption, forecastBalance, RECENT_RATE_DAYS, runsOutBeforeRenewal } from "../look-ahead";
import { combineQueries } from "./combine-queries";

const AUTO_TOP_UP: NextStepAction = { tab: "credits", section: "cr-auto-top-up", label: "Turn on auto top-up" };

/** "About 12 days", "Less than a day". */
function daysText(days: number): string {
  if (days < 1) return "Less than a day";
  const whole = Math.floor(days);
  return `About ${whole} ${whole === 1 ? "day" : "days"}`;
}

/** How long the spendable balance lasts at the last 7 days' average, and what to do when it runs out before the renewal. */
export function ForecastCard({ organizationId }: { organizationId: string }) {
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
                  {balance.total <= 0
                    ? `Usage is refused until credits arrive${renewsAt ? `; the plan renews on ${formatDate(renewsAt)}` : ""}.`
                    : renewsAt
                      ? `The balance runs out before your plan renews on ${formatDate(renewsAt)}.`
                      : "The balance runs out, and no plan renews it."}
                </p>
                <NextStep actions={[BUY_CREDITS, AUTO_TOP_UP]} toDo="buy credits or turn on auto top-up" />
              </div>
            ) : null}
          </div>
        );
      }}
    </QueryView>
  );
}
