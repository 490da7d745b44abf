/**
 * The shapes the dashboard works with, derived from the generated database types
 * (`database.ts`, from `supabase gen types`), plus the JSON results of RPCs and the
 * billing Edge Function, which the generator can only call `Json`: those get zod schemas
 * so a changed server shape fails loudly instead of rendering nonsense.
 */
// zod/mini: the same validation at a fraction of the bundle size of the chained API.
import { z } from "zod/mini";
import type { Database } from "./database";

type PublicSchema = Database["public"];
type Row<T extends keyof PublicSchema["Tables"]> = PublicSchema["Tables"][T]["Row"];
type Enum<T extends keyof PublicSchema["Enums"]> = PublicSchema["Enums"][T];

export type OrganizationRole = Enum<"organization_role">;
export type SubscriptionStatus = Enum<"subscription_status">;
export type BillingInterval = Enum<"billing_interval">;
export type CreditSource = Enum<"credit_source">;
export type CreditTransactionKind = Enum<"credit_transaction_kind">;
export type BillingHistoryKind = Enum<"billing_history_kind">;
export type BillingHistoryStatus = Enum<"billing_history_status">;
export type BillingAlertKind = Enum<"billing_alert_kind">;
export type BillingAlertSeverity = Enum<"billing_alert_severity">;

export type Organization = Pick<Row<"organizations">, "id" | "name" | "low_balance_threshold" | "credit_precedence">;
export type Membership = { organization: Organization; role: OrganizationRole };

export type SubscriptionPlan = Omit<Row<"subscription_plans">, "features"> & { features: string[] };
export type OrganizationSubscription = Row<"organization_subscriptions">;
export type CreditProduct = Row<"credit_products">;
export type CreditTransaction = Row<"credit_transactions">;
export type BillingHistoryEntry = Row<"billing_history">;
export type BillingAlert = Row<"billing_alerts">;
export type CreditUsageDay = PublicSchema["Views"]["credit_usage_daily"]["Row"];

export const CREDIT_TRANSACTION_KINDS: readonly CreditTransactionKind[] = [
  "grant",
  "consumption",
  "expiry",
  "refund",
  "adjustment",
  "reservation",
  "release",
];

/** `get_credit_balance` result (CONTRACT.md). */
export const creditBalanceSchema = z.object({
  total: z.int(),
  purchased: z.int(),
  subscription: z.int(),
  next_expiry_at: z.nullable(z.string()),
  expiring_amount: z.int(),
  /** Held by live reservations: not in `total` until released (CONTRACT.md, "Reservations"). */
  reserved: z.optional(z.int()),
});
export type CreditBalance = z.infer<typeof creditBalanceSchema>;

/** `get_spend_limit` result: the monthly cap (null: none) and this UTC month's use of it. */
export const spendLimitSchema = z.object({
  monthly_credits: z.nullable(z.int()),
  month_start: z.string(),
  consumed_this_month: z.int(),
  reserved: z.int(),
  remaining: z.nullable(z.int()),
});
export type SpendLimit = z.infer<typeof spendLimitSchema>;

/** `trial_eligibility` result: whether a checkout would include a free trial, and why not. */
export const trialEligibilitySchema = z.object({
  eligible: z.boolean(),
  reason: z.nullable(z.string()),
});
export type TrialEligibility = z.infer<typeof trialEligibilitySchema>;

/** What checkout and portal calls of the billing Edge Function return. */
export const redirectSchema = z.object({ url: z.url() });
export type BillingRedirect = z.infer<typeof redirectSchema>;

/** One page of a paged list, with the exact total for the pager. */
export interface Page<T> {
  rows: T[];
  total: number;
  page: number;
  pageSize: number;
}
