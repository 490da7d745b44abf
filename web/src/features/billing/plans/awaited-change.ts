/**
 * A plan change is made at Stripe, and reaches our tables only when its webhook has been
 * applied (the scheduled change is read from Stripe's invoice preview). So after each change
 * the Plans tab re-reads until what it asked for shows, and only then says it is done.
 */
import type { BillingInterval, OrganizationSubscription } from "@/types/billing";
import type { UpcomingInvoice } from "../api/get-upcoming-invoice";

export type AwaitedChange =
  | { kind: "upgrade"; planId: string; planName: string; interval: BillingInterval; creditsAdded: number }
  | { kind: "scheduled"; planCode: string; planName: string; interval: BillingInterval; effectiveAt: string }
  | { kind: "keep" }
  | { kind: "resume" };

/** Whether the subscription (from our tables) and the upcoming invoice (from Stripe) show the change. */
export function isChangeApplied(
  change: AwaitedChange,
  subscription: OrganizationSubscription | null | undefined,
  upcoming: UpcomingInvoice | null | undefined,
): boolean {
  switch (change.kind) {
    case "upgrade":
      return subscription?.plan_id === change.planId && subscription.billing_interval === change.interval;
    case "scheduled":
      return upcoming?.scheduled_change?.plan_code === change.planCode && upcoming.scheduled_change.interval === change.interval;
    case "keep":
      return upcoming !== undefined && (upcoming === null || upcoming.scheduled_change === null);
    case "resume":
      return subscription?.cancel_at_period_end === false;
  }
}

/** "monthly" / "annual". */
export function intervalWord(interval: BillingInterval): string {
  return interval === "year" ? "annual" : "monthly";
}
