/**
 * Alerts that need someone to act, worked out from the figures as they are now (the
 * subscription's status, the balance against the threshold, this month's use against the
 * spend limit) and from the open alert rows only where no figure tells (a failed auto top-up),
 * so a banner never contradicts the numbers beside it and goes away by itself once the problem
 * is gone (an invoice paid, credits bought, the limit raised).
 */
import { formatCreditNumber, formatCredits, formatDate, formatDateUtc } from "@/lib/format";
import type { BillingAlert, CreditBalance, OrganizationSubscription, SpendLimit } from "@/types/billing";

/** What a banner's button does: the portal for anything about the card, a Credits tab section otherwise. */
export type ActionAlertAction = "update-payment-method" | "update-card" | "buy-credits" | "auto-top-up" | "raise-spend-limit";

export interface ActionAlert {
  id: "past-due" | "payment-failed" | "auto-top-up-failed" | "spend-limit" | "low-balance";
  tone: "critical" | "warning";
  title: string;
  text: string;
  actions: ActionAlertAction[];
  /** What a member asks an owner or admin to do ("update the payment method"). */
  ask: string;
}

/** Everything a banner is worked out from; a figure not loaded yet (undefined) raises no banner. */
export interface ActionAlertFigures {
  subscription: OrganizationSubscription | null | undefined;
  balance: CreditBalance | undefined;
  threshold: number | undefined;
  /** Open alert rows (neither dismissed nor resolved). */
  alerts?: Pick<BillingAlert, "kind" | "data" | "created_at">[] | undefined;
  spendLimit?: SpendLimit | undefined;
  /** Whether auto top-up is on; null when it was never set up. */
  autoTopUpEnabled?: boolean | null | undefined;
  /** Whether a card is saved for off-session payments (what auto top-up charges). */
  hasCardOnFile?: boolean | undefined;
}

/** The first day of the UTC month after `monthStart` ("2026-12-01" -> "2027-01-01T00:00:00.000Z"). */
function nextMonthStart(monthStart: string): string {
  const start = new Date(`${monthStart.slice(0, 10)}T00:00:00Z`);
  return new Date(Date.UTC(start.getUTCFullYear(), start.getUTCMonth() + 1, 1)).toISOString();
}

/**
 * Whether this month's spending is stopped by the limit now: the month's use (live
 * reservations included) has reached it, or an open spend_limit alert of this month was raised
 * by a refusal under a limit no higher than today's (a request that would have crossed it).
 */
function spendLimitReached(limit: SpendLimit, alerts: ActionAlertFigures["alerts"]): boolean {
  if (limit.monthly_credits === null) return false;
  if (limit.consumed_this_month + limit.reserved >= limit.monthly_credits) return true;
  const month = limit.month_start.slice(0, 10);
  return (alerts ?? []).some((alert) => {
    if (alert.kind !== "spend_limit") return false;
    const data = (alert.data ?? {}) as { month?: unknown; limit?: unknown };
    return typeof data.month === "string" && data.month.slice(0, 10) === month && typeof data.limit === "number" && limit.monthly_credits! <= data.limit;
  });
}

/** The banners to show for the current figures, the ones that stop payments or usage first. */
export function actionAlerts(figures: ActionAlertFigures): ActionAlert[] {
  const alerts: ActionAlert[] = [];
  const { subscription, balance, threshold, spendLimit } = figures;
  const open = figures.alerts ?? [];

  const pastDue = !!subscription && (subscription.status === "past_due" || subscription.status === "unpaid");
  if (pastDue) {
    const by = subscription.status === "past_due" && subscription.grace_period_end ? ` by ${formatDate(subscription.grace_period_end)}` : "";
    alerts.push({
      id: "past-due",
      tone: "critical",
      title: "Your last payment failed.",
      text: `Update the payment method${by} to keep the subscription.`,
      actions: ["update-payment-method"],
      ask: "update the payment method",
    });
  } else if (subscription && subscription.status !== "canceled" && open.some((alert) => alert.kind === "payment_failed")) {
    // An open payment_failed row whose invoice is not paid yet, on a subscription Stripe has
    // not (yet) marked past due: the same fix, said without a status the badge does not show.
    alerts.push({
      id: "payment-failed",
      tone: "critical",
      title: "A subscription payment failed.",
      text: "Update the payment method so Stripe can retry it.",
      actions: ["update-payment-method"],
      ask: "update the payment method",
    });
  }

  if (open.some((alert) => alert.kind === "auto_top_up_failed")) {
    const off = figures.autoTopUpEnabled === false ? " Auto top-up is off until it is turned on again." : "";
    alerts.push({
      id: "auto-top-up-failed",
      tone: "critical",
      title: "Auto top-up could not charge the card.",
      text: `Update the card on file so the next top-up goes through.${off}`,
      actions: ["update-card"],
      ask: "update the card on file",
    });
  }

  if (spendLimit && spendLimitReached(spendLimit, open)) {
    const used = spendLimit.consumed_this_month + spendLimit.reserved;
    alerts.push({
      id: "spend-limit",
      tone: "warning",
      title: "The monthly spend limit is reached.",
      text:
        `${formatCreditNumber(used)} of the ${formatCreditNumber(spendLimit.monthly_credits!)}-credit limit used this month; ` +
        `usage beyond it is refused until ${formatDateUtc(nextMonthStart(spendLimit.month_start))} unless the limit is raised.`,
      actions: ["raise-spend-limit"],
      ask: "raise the spend limit",
    });
  }

  if (balance && threshold !== undefined && threshold > 0 && balance.total < threshold) {
    // Offered where it can work: a card saved for off-session payments, and auto top-up off.
    const canAutoTopUp = figures.hasCardOnFile === true && figures.autoTopUpEnabled !== true;
    alerts.push({
      id: "low-balance",
      tone: "warning",
      title: "Your credit balance is low.",
      text: `The balance is ${formatCredits(balance.total)}, below your alert threshold of ${formatCredits(threshold)}.`,
      actions: canAutoTopUp ? ["buy-credits", "auto-top-up"] : ["buy-credits"],
      ask: canAutoTopUp ? "buy credits or turn on auto top-up" : "buy credits",
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

/** The banners that say what a stored alert of each kind says (kinds without a banner are absent). */
const BANNERS_FOR_KIND: Readonly<Record<string, readonly ActionAlert["id"][]>> = {
  payment_failed: ["past-due", "payment-failed"],
  auto_top_up_failed: ["auto-top-up-failed"],
  spend_limit: ["spend-limit"],
  low_balance: ["low-balance"],
};

/**
 * The banner shown now that holds a stored alert of `kind`, if any, so the Overview's list can
 * leave it to the banner instead of saying it twice. A low-balance row whose balance is back
 * above the threshold has no banner, so the list keeps it (and says it is resolved).
 */
export function bannerHolding(alert: { kind: string; data?: unknown }, banners: readonly ActionAlert[]): ActionAlert | undefined {
  const ids = BANNERS_FOR_KIND[alert.kind] ?? (alert.kind === "subscription_changed" && becamePastDue(alert.data) ? ["past-due"] : []);
  return banners.find((banner) => ids.includes(banner.id));
}

/** A subscription_changed alert that says the subscription went past due or unpaid: the past-due banner's news. */
function becamePastDue(data: unknown): boolean {
  const status = (data as { status?: unknown } | null)?.status;
  return status === "past_due" || status === "unpaid";
}
