import { formatDate, humanize } from "@/lib/format";
import type { OrganizationSubscription } from "@/types/billing";

/** Status badge: trialing, active, past due (with grace end), cancel scheduled, … */
export function SubscriptionStatusBadge({ subscription }: { subscription: OrganizationSubscription }) {
  const scheduled = subscription.cancel_at_period_end && subscription.status !== "canceled";
  const tone =
    subscription.status === "active" || subscription.status === "trialing"
      ? scheduled
        ? "warning"
        : "good"
      : subscription.status === "past_due" || subscription.status === "unpaid"
        ? "bad"
        : "neutral";
  let text = humanize(subscription.status);
  if (subscription.status === "past_due" && subscription.grace_period_end) {
    text += ` · grace until ${formatDate(subscription.grace_period_end)}`;
  }
  if (scheduled) {
    const end = subscription.cancel_at ?? subscription.current_period_end;
    text += end ? ` · cancels ${formatDate(end)}` : " · cancel scheduled";
  }
  return <span className={`badge badge-${tone}`}>{text}</span>;
}
