/**
 * From Stripe objects to the typed arguments of the SQL functions that apply them. Pure:
 * no network, no database. This is where Stripe's shapes are read, in one place:
 * - timestamps are Unix seconds (JavaScript dates want milliseconds);
 * - on current API versions a subscription's billing period lives on its items;
 * - an invoice names its subscription under `parent.subscription_details.subscription`;
 * - expandable fields are either an id or the expanded object.
 */
import type Stripe from "stripe";

/** ISO timestamp for a Stripe Unix-seconds value, or null. */
export function fromUnix(seconds: number | null | undefined): string | null {
  if (seconds === null || seconds === undefined) return null;
  return new Date(seconds * 1000).toISOString();
}

/** The id of an expandable field, whether Stripe sent the id or the object. */
export function idOf(value: string | { id: string } | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  return typeof value === "string" ? value : value.id;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * The organization a Stripe object belongs to, from the metadata and client reference our
 * checkout set. Only a well-formed UUID counts; anything else is "unknown".
 */
export function organizationIdOf(
  metadata: Stripe.Metadata | null | undefined,
  clientReferenceId?: string | null,
): string | null {
  const candidate = metadata?.organization_id ?? clientReferenceId ?? null;
  return candidate && UUID.test(candidate) ? candidate.toLowerCase() : null;
}

/** Arguments of `apply_stripe_subscription`, minus the event and organization ids. */
export interface SubscriptionState {
  p_stripe_subscription_id: string;
  p_stripe_customer_id: string;
  p_stripe_price_id: string;
  p_status: Stripe.Subscription.Status;
  p_current_period_start: string | null;
  p_current_period_end: string | null;
  p_trial_start: string | null;
  p_trial_end: string | null;
  p_cancel_at_period_end: boolean;
  p_cancel_at: string | null;
  p_canceled_at: string | null;
  p_ended_at: string | null;
  p_observed_at: string;
}

/**
 * A subscription's state as of `observedAt` (when it was read from Stripe). Throws for a
 * subscription without items: there is no price or period to apply.
 */
export function subscriptionState(subscription: Stripe.Subscription, observedAt: Date): SubscriptionState {
  const item = subscription.items.data[0];
  if (!item) throw new Error(`subscription ${subscription.id} has no items`);
  const customerId = idOf(subscription.customer);
  if (!customerId) throw new Error(`subscription ${subscription.id} has no customer`);
  return {
    p_stripe_subscription_id: subscription.id,
    p_stripe_customer_id: customerId,
    p_stripe_price_id: item.price.id,
    p_status: subscription.status,
    p_current_period_start: fromUnix(item.current_period_start),
    p_current_period_end: fromUnix(item.current_period_end),
    p_trial_start: fromUnix(subscription.trial_start),
    p_trial_end: fromUnix(subscription.trial_end),
    p_cancel_at_period_end: subscription.cancel_at_period_end,
    p_cancel_at: fromUnix(subscription.cancel_at),
    p_canceled_at: fromUnix(subscription.canceled_at),
    p_ended_at: fromUnix(subscription.ended_at),
    p_observed_at: observedAt.toISOString(),
  };
}

/** The subscription an invoice bills, or null for a one-off invoice. */
export function invoiceSubscriptionId(invoice: Stripe.Invoice): string | null {
  return idOf(invoice.parent?.subscription_details?.subscription ?? null);
}

/**
 * The service period an invoice pays for: its subscription period line's period (an invoice's
 * own period_start/end describe when usage was collected, not the period being paid for).
 * Proration lines are skipped: a plan switched with `create_prorations` puts prorations for
 * the old period first on the renewal invoice, and they do not say which period is paid for.
 * Null when the subscription lines are all prorations (a plan change charged at once pays for
 * no new period). An invoice without subscription lines falls back to its own period.
 */
export function invoiceServicePeriod(invoice: Stripe.Invoice): { start: string; end: string } | null {
  const subscriptionLines = invoice.lines.data.filter((l) => l.parent?.subscription_item_details);
  const line = subscriptionLines.find((l) => l.parent?.subscription_item_details?.proration !== true);
  if (!line && subscriptionLines.length > 0) return null;
  const start = fromUnix(line?.period.start ?? invoice.period_start);
  const end = fromUnix(line?.period.end ?? invoice.period_end);
  if (!start || !end) throw new Error(`invoice ${invoice.id} has no period`);
  return { start, end };
}

/** A proration line as the SQL credit rule reads it (`proration_allowance_credits`). */
// A type, not an interface, so it passes as the jsonb argument it becomes.
export type ProrationLine = {
  price: string;
  amount: number;
  start: string;
  end: string;
};

/**
 * An invoice's proration lines (a plan change's credit for unused time and charge for the
 * rest of the period): each line's price, signed amount and period.
 */
export function invoiceProrationLines(invoice: Stripe.Invoice): ProrationLine[] {
  return invoice.lines.data
    .filter((line) => line.parent?.subscription_item_details?.proration === true)
    .map((line) => ({
      price: idOf(line.pricing?.price_details?.price ?? null) ?? "",
      amount: line.amount,
      start: fromUnix(line.period.start)!,
      end: fromUnix(line.period.end)!,
    }))
    .filter((line) => line.price !== "");
}
