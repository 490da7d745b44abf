/**
 * Alerts that need someone to act, worked out from the figures as they are now (the
 * subscription's status, the balance against the threshold) rather than from the text an alert
 * row was written with, so a banner never contradicts the numbers beside it and goes away by
 * itself once the problem is gone (an invoice paid, credits bought).
 */
import { formatCredits, formatDate } from "@/lib/format";
import type { CreditBalance, OrganizationSubscription } from "@/types/billing";

export type ActionAlertAction = "update-payment-method" | "buy-credits" | "auto-top-up";

export interface ActionAlert {
  id: "past-due" | "low-balance";
  tone: "critical" | "warning";
  title: string;
  text: string;
  actions: ActionAlertAction[];
}

/** The banners to show for the current figures (any figure not loaded yet: no banner from it). */
export function actionAlerts(figures: {
  subscription: OrganizationSubscription | null | undefined;
  balance: CreditBalance | undefined;
  threshold: number | undefined;
}): ActionAlert[] {
  const alerts: ActionAlert[] = [];
  const { subscription, balance, threshold } = figures;
  if (subscription && (subscription.status === "past_due" || subscription.status === "unpaid")) {
    const by = subscription.status === "past_due" && subscription.grace_period_end ? ` by ${formatDate(subscription.grace_period_end)}` : "";
    alerts.push({
      id: "past-due",
      tone: "critical",
      title: "Your last payment failed.",
      text: `Update the payment method${by} to keep the subscription.`,
      actions: ["update-payment-method"],
    });
  }
  if (balance && threshold !== undefined && threshold > 0 && balance.total < threshold) {
    alerts.push({
      id: "low-balance",
      tone: "warning",
      title: "Your credit balance is low.",
      text: `The balance is ${formatCredits(balance.total)}, below your alert threshold of ${formatCredits(threshold)}.`,
      actions: ["buy-credits", "auto-top-up"],
    });
  }
  return alerts;
}

/**
 * The sentence a stored low-balance alert should show now: its row keeps the balance at the
 * moment it fired ("fell to 295"), which is no longer true once more credits were spent or bought.
 */
export function lowBalanceNow(balance: CreditBalance | undefined, threshold: number | undefined): string | null {
  if (!balance || threshold === undefined) return null;
  return balance.total < threshold
    ? `The balance is ${formatCredits(balance.total)} now, below the threshold of ${formatCredits(threshold)}.`
    : `Resolved: the balance is back to ${formatCredits(balance.total)}, above the threshold of ${formatCredits(threshold)}.`;
}
