/**
 * Reconciliation: does our ledger agree with Stripe? For a period it reads from Stripe the
 * subscriptions alive in it, the subscription invoices paid in it, the credit-pack Checkout
 * Sessions paid in it and the customers created in it, and compares each with what we
 * recorded. Every difference is listed; the repairable ones are repaired by applying the
 * Stripe object again through the webhook's own path (`reapplyObject`: re-read from Stripe,
 * then the same `apply_*` call), whose effects are keyed by business ids, so a repair run
 * twice changes nothing the second time.
 *
 * Stripe's list endpoints are read in full and filtered by time here: the `created` filter is
 * not on every list the emulator serves, and the product's volumes per period are modest.
 */
import type Stripe from "stripe";
import { fromUnix, idOf, invoiceSubscriptionId, organizationIdOf } from "../_shared/stripe-mapping.ts";
import { type ApplyDeps, reapplyObject } from "./apply.ts";

export interface Period {
  from: Date;
  to: Date;
}

export type DifferenceKind =
  | "subscription_missing"
  | "subscription_differs"
  | "subscription_not_at_stripe"
  | "invoice_not_applied"
  | "credit_pack_not_granted"
  | "customer_without_organization";

export interface Difference {
  kind: DifferenceKind;
  /** The Stripe object that differs (sub_, in_, cs_, cus_). */
  stripe_id: string;
  organization_id: string | null;
  /** What Stripe says, in the fields compared. */
  stripe: Record<string, unknown> | null;
  /** What we recorded, in the same fields (null: nothing). */
  ours: Record<string, unknown> | null;
  /** True when applying the Stripe object again repairs it. */
  repairable: boolean;
  /** When the Stripe object's payment happened (Unix seconds), for the history row a repair writes. */
  occurred: number | null;
}

export interface RepairOutcome {
  stripe_id: string;
  kind: DifferenceKind;
  outcome: "processed" | "ignored" | "failed";
  detail?: string;
}

interface Records {
  subscriptions: Record<string, {
    organization_id: string;
    status: string;
    current_period_start: string | null;
    current_period_end: string | null;
    cancel_at_period_end: boolean;
  }>;
  payments: Record<string, { organization_id: string; status: string }>;
  grants: Record<string, { organization_id: string; granted: number }>;
  customers: Record<string, string>;
  live_subscriptions: Array<{ stripe_subscription_id: string; organization_id: string; status: string }>;
}

const PAID_STATUSES = new Set(["paid", "partially_refunded", "refunded"]);
const LIVE_STATUSES = new Set(["trialing", "active", "past_due", "unpaid", "incomplete", "paused"]);

const within = (seconds: number | null | undefined, period: Period) =>
  seconds !== null && seconds !== undefined && seconds * 1000 >= period.from.getTime() && seconds * 1000 < period.to.getTime();

/** Equal instants, whatever their ISO spelling (Postgres and JavaScript format them differently). */
const sameInstant = (a: string | null | undefined, b: string | null | undefined) =>
  (a ?? null) === null || (b ?? null) === null ? (a ?? null) === (b ?? null) : new Date(a!).getTime() === new Date(b!).getTime();

/**
 * Our status agrees with Stripe's. `expired` is ours alone: a past-due subscription whose
 * grace period ran out, which Stripe still calls past_due (or unpaid, or canceled once it gives up).
 */
const sameStatus = (ours: string, stripe: string) =>
  ours === stripe || (ours === "expired" && ["past_due", "unpaid", "canceled"].includes(stripe));

async function listAll<T>(list: AsyncIterable<T>): Promise<T[]> {
  const all: T[] = [];
  for await (const item of list) all.push(item);
  return all;
}

/** Every difference between Stripe and our records for the period. */
export async function findDifferences(deps: ApplyDeps, period: Period): Promise<Difference[]> {
  const [subscriptions, invoices, sessions, customers] = await Promise.all([
    listAll(deps.stripe.subscriptions.list({ status: "all", limit: 100 })),
    listAll(deps.stripe.invoices.list({ status: "paid", limit: 100 })),
    listAll(deps.stripe.checkout.sessions.list({ status: "complete", limit: 100 })),
    listAll(deps.stripe.customers.list({ limit: 100 })),
  ]);
  const fromSeconds = period.from.getTime() / 1000;
  const toSeconds = period.to.getTime() / 1000;
  // Alive at some point of the period: started before its end and not ended before its start.
  const alive = subscriptions.filter((s) => s.created < toSeconds && (s.ended_at === null || s.ended_at >= fromSeconds));
  const paidInvoices = invoices.filter((i) => invoiceSubscriptionId(i) !== null && within(i.status_transitions?.paid_at ?? i.created, period));
  const paidPacks = sessions.filter((s) =>
    s.mode === "payment" && s.payment_status === "paid" && s.metadata?.product_code && within(s.created, period)
  );
  const newCustomers = customers.filter((c) => within(c.created, period));

  const customerIds = [...new Set([
    ...subscriptions.map((s) => idOf(s.customer)),
    ...paidInvoices.map((i) => idOf(i.customer)),
    ...newCustomers.map((c) => c.id),
  ].filter((id): id is string => id !== null))];
  const records = await deps.rpc("reconciliation_records", {
    p_stripe_subscription_ids: alive.map((s) => s.id),
    p_references: [...paidInvoices.map((i) => i.id!), ...paidPacks.map((s) => s.id)],
    p_customer_ids: customerIds,
  }) as unknown as Records;

  const organizationOf = (metadata: Stripe.Metadata | null | undefined, customer: string | null, reference?: string | null) =>
    organizationIdOf(metadata, reference) ?? (customer ? records.customers[customer] ?? null : null);
  const differences: Difference[] = [];

  for (const subscription of alive) {
    const organizationId = organizationOf(subscription.metadata, idOf(subscription.customer));
    if (!organizationId) continue; // not ours: its customer is reported below if it is new
    const item = subscription.items.data[0];
    const stripe = {
      status: subscription.status,
      current_period_start: fromUnix(item?.current_period_start),
      current_period_end: fromUnix(item?.current_period_end),
      cancel_at_period_end: subscription.cancel_at_period_end,
    };
    const ours = records.subscriptions[subscription.id];
    if (!ours) {
      differences.push({ kind: "subscription_missing", stripe_id: subscription.id, organization_id: organizationId, stripe, ours: null, repairable: true, occurred: null });
    } else if (
      !sameStatus(ours.status, stripe.status) || !sameInstant(ours.current_period_start, stripe.current_period_start) ||
      !sameInstant(ours.current_period_end, stripe.current_period_end) || ours.cancel_at_period_end !== stripe.cancel_at_period_end
    ) {
      const { organization_id: _, ...fields } = ours;
      differences.push({ kind: "subscription_differs", stripe_id: subscription.id, organization_id: organizationId, stripe, ours: fields, repairable: true, occurred: null });
    }
  }

  // A subscription we hold as live that Stripe does not have at all (another account or mode, deleted).
  const atStripe = new Set(subscriptions.map((s) => s.id));
  for (const live of records.live_subscriptions) {
    if (!atStripe.has(live.stripe_subscription_id) && LIVE_STATUSES.has(live.status)) {
      differences.push({
        kind: "subscription_not_at_stripe", stripe_id: live.stripe_subscription_id, organization_id: live.organization_id,
        stripe: null, ours: { status: live.status }, repairable: false, occurred: null,
      });
    }
  }

  for (const invoice of paidInvoices) {
    const payment = records.payments[invoice.id!];
    if (payment && PAID_STATUSES.has(payment.status)) continue;
    const subscription = subscriptions.find((s) => s.id === invoiceSubscriptionId(invoice));
    const organizationId = organizationOf(subscription?.metadata, idOf(invoice.customer));
    differences.push({
      kind: "invoice_not_applied", stripe_id: invoice.id!, organization_id: organizationId,
      stripe: { status: invoice.status, amount_paid: invoice.amount_paid, currency: invoice.currency, paid_at: fromUnix(invoice.status_transitions?.paid_at) },
      ours: payment ? { status: payment.status, credits_granted: records.grants[invoice.id!]?.granted ?? 0 } : null,
      repairable: organizationId !== null,
      occurred: invoice.status_transitions?.paid_at ?? invoice.created,
    });
  }

  for (const session of paidPacks) {
    const grant = records.grants[session.id];
    const payment = records.payments[session.id];
    if (grant && payment && PAID_STATUSES.has(payment.status)) continue;
    const organizationId = organizationOf(session.metadata, idOf(session.customer), session.client_reference_id);
    differences.push({
      kind: "credit_pack_not_granted", stripe_id: session.id, organization_id: organizationId,
      stripe: { payment_status: session.payment_status, product_code: session.metadata?.product_code, amount_total: session.amount_total, currency: session.currency },
      ours: grant || payment ? { credits_granted: grant?.granted ?? 0, payment_status: payment?.status ?? null } : null,
      repairable: organizationId !== null,
      occurred: session.created,
    });
  }

  for (const customer of newCustomers) {
    if (records.customers[customer.id]) continue;
    differences.push({
      kind: "customer_without_organization", stripe_id: customer.id, organization_id: null,
      stripe: { email: customer.email, metadata: customer.metadata }, ours: null, repairable: false, occurred: null,
    });
  }
  return differences;
}

/** What applying a difference's Stripe object again means, for each repairable kind. */
const REAPPLY: Partial<Record<DifferenceKind, string>> = {
  subscription_missing: "customer.subscription.updated",
  subscription_differs: "customer.subscription.updated",
  invoice_not_applied: "invoice.paid",
  credit_pack_not_granted: "checkout.session.completed",
};

/** Subscriptions first: an invoice's effect needs its subscription. */
const REPAIR_ORDER: DifferenceKind[] = ["subscription_missing", "subscription_differs", "invoice_not_applied", "credit_pack_not_granted"];

/**
 * Repairs the repairable differences (only those named in `only`, when given), one at a time,
 * by applying each Stripe object again. A failure is reported and does not stop the others.
 */
export async function repairDifferences(deps: ApplyDeps, differences: Difference[], only?: Set<string>): Promise<RepairOutcome[]> {
  const chosen = differences
    .filter((d) => d.repairable && REAPPLY[d.kind] && (!only || only.has(d.stripe_id)))
    .sort((a, b) => REPAIR_ORDER.indexOf(a.kind) - REPAIR_ORDER.indexOf(b.kind));
  const outcomes: RepairOutcome[] = [];
  for (const difference of chosen) {
    try {
      const outcome = await reapplyObject(deps, REAPPLY[difference.kind]!, difference.stripe_id,
        difference.occurred ?? Math.floor(deps.now().getTime() / 1000));
      outcomes.push({
        stripe_id: difference.stripe_id, kind: difference.kind, outcome: outcome.status,
        ...(outcome.status === "ignored" ? { detail: outcome.reason } : {}),
      });
    } catch (error) {
      outcomes.push({
        stripe_id: difference.stripe_id, kind: difference.kind, outcome: "failed",
        detail: error instanceof Error ? error.message : String(error),
      });
    }
  }
  return outcomes;
}
