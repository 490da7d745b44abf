import { EmptyState, QueryView, Skeleton } from "@/components/status";
import { formatCredits, formatDate } from "@/lib/format";
import { useCreditBalance } from "../../api/get-credit-balance";
import { NextStep, type NextStepAction } from "../../components/next-step";
import { useCreditPrecedence } from "../../credits/api/credit-precedence";
import { useSubscriptionLots } from "../api/get-subscription-lots";
import { useUsage } from "../api/get-usage";
import { averageDailyConsumption, EXPIRY_WARNING_DAYS, expiresSoonUnused, forecastBalance, nextExpiry } from "../look-ahead";
import { combineQueries } from "./combine-queries";

/** The spending-order control on the Credits tab (its section's id there). */
const SPEND_EXPIRING_FIRST: NextStepAction = { tab: "credits", section: "spending-order", label: "Spend expiring credits first" };

/**
 * What expires next and when; a warning when that is within 7 days and the recent rate will
 * not use it up, naming the spending order, with the owner's way to change it.
 */
export function ExpiryCard({ organizationId }: { organizationId: string }) {
  const query = combineQueries([useCreditBalance(organizationId), useUsage(organizationId), useSubscriptionLots(organizationId), useCreditPrecedence(organizationId)]);
  return (
    <QueryView query={query} loading={<Skeleton label="Loading what expires next…" lines={3} />} errorTitle="What expires next could not be loaded.">
      {([balance, usage, lots, precedence]) => {
        const now = new Date();
        const forecast = forecastBalance({ purchased: balance.purchased, lots, dailyRate: averageDailyConsumption(usage, now), precedence, now });
        const next = nextExpiry(lots, forecast, now);
        if (!next) return <EmptyState>Nothing expires: purchased credits never do.</EmptyState>;
        const warn = expiresSoonUnused(next, now);
        return (
          <div className="stack">
            <p>
              <strong>{formatCredits(next.amount)}</strong> expire on <strong>{formatDate(next.expiresAt)}</strong>, at the end of
              their billing period.
            </p>
            {warn ? (
              <div className="notice" role="note">
                <p>
                  <strong>
                    About {formatCredits(next.unused)} will expire unused within {EXPIRY_WARNING_DAYS} days at the recent rate
                  </strong>
                  {precedence === "purchased_first" ? ": purchased credits are spent first." : "."}
                </p>
                {precedence === "purchased_first" ? (
                  <NextStep actions={[SPEND_EXPIRING_FIRST]} toDo="change the spending order so expiring credits are spent first" />
                ) : null}
              </div>
            ) : null}
          </div>
        );
      }}
    </QueryView>
  );
}
