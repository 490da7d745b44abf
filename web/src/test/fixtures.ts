import type { BillingHistoryEntry, CreditTransaction, OrganizationSubscription } from "@/types/billing";
import type { Database } from "@/types/database";

export const ORG = "11111111-1111-4111-8111-111111111111";

type PlanRow = Database["public"]["Tables"]["subscription_plans"]["Row"];

export function plan(code: string, overrides: Partial<PlanRow> = {}): PlanRow {
  return {
    id: `plan-${code}`,
    code,
    name: code[0]!.toUpperCase() + code.slice(1),
    description: `${code} plan`,
    currency: "usd",
    monthly_unit_amount: 1900,
    annual_unit_amount: 19000,
    monthly_credits: 1000,
    annual_credits: 12000,
    features: ["Email support"],
    trial_days: 14,
    trial_credits: 500,
    is_active: true,
    sort_order: 10,
    stripe_product_id: null,
    stripe_monthly_price_id: null,
    stripe_annual_price_id: null,
    created_at: "2026-11-01T00:00:00Z",
    updated_at: "2026-11-01T00:00:00Z",
    ...overrides,
  };
}

export function subscription(overrides: Partial<OrganizationSubscription> = {}): OrganizationSubscription {
  return {
    id: "sub-row-1",
    organization_id: ORG,
    plan_id: "plan-starter",
    billing_interval: "month",
    status: "active",
    stripe_subscription_id: "sub_123",
    stripe_customer_id: "cus_123",
    stripe_price_id: "price_123",
    current_period_start: "2026-11-01T00:00:00Z",
    current_period_end: "2026-12-01T00:00:00Z",
    trial_start: null,
    trial_end: null,
    cancel_at_period_end: false,
    cancel_at: null,
    canceled_at: null,
    ended_at: null,
    grace_period_end: null,
    last_stripe_event_at: null,
    last_stripe_event_id: null,
    created_at: "2026-11-01T00:00:00Z",
    updated_at: "2026-11-01T00:00:00Z",
    ...overrides,
  };
}

export function payment(overrides: Partial<BillingHistoryEntry> = {}): BillingHistoryEntry {
  return {
    id: "bh-1",
    organization_id: ORG,
    stripe_reference: "in_1",
    kind: "subscription_invoice",
    status: "paid",
    description: "Starter (monthly)",
    amount: 1900,
    currency: "usd",
    stripe_invoice_id: "in_1",
    stripe_payment_intent_id: null,
    stripe_charge_id: null,
    stripe_checkout_session_id: null,
    stripe_refund_id: null,
    invoice_url: "https://invoice.stripe.test/in_1",
    invoice_pdf_url: null,
    receipt_url: "https://pay.stripe.test/receipts/1",
    period_start: null,
    period_end: null,
    occurred_at: "2026-11-20T10:00:00Z",
    created_at: "2026-11-20T10:00:00Z",
    updated_at: "2026-11-20T10:00:00Z",
    ...overrides,
  };
}

export function transaction(id: number, overrides: Partial<CreditTransaction> = {}): CreditTransaction {
  return {
    id,
    organization_id: ORG,
    kind: "consumption",
    source: "subscription",
    amount: -25,
    balance_after: 975,
    lot_id: 1,
    consumption_id: null,
    event_key: "ai_inference",
    reference: null,
    description: "",
    actor_id: null,
    created_at: "2026-11-22T09:30:00Z",
    reservation_id: null,
    ...overrides,
  };
}
