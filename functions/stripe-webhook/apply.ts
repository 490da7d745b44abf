/**
 * What each Stripe event does to our data. Objects are re-read from Stripe when applied
 * (never trusted from an old event's snapshot) and mapped to SQL calls through the generated
 * database types. Each event's effect is one `apply_*` call that also marks the inbox event
 * processed, in one transaction. Invoices and trial reminders carry their subscription as
 * re-read, which the same call applies first, so the effect finds the subscription's current
 * plan and status.
 */
import type Stripe from "stripe";
import type { SqlArgs, SqlFunction, SqlResult } from "../_shared/supabase.ts";
import {
  fromUnix,
  idOf,
  invoiceProrationLines,
  invoiceServicePeriod,
  invoiceSubscriptionId,
  organizationIdOf,
  subscriptionState,
} from "../_shared/stripe-mapping.ts";
import { applyTopUpPaymentIntent, syncCardOnFile, topUpOf } from "../_shared/auto-top-up.ts";

/** The two things applying needs: Stripe to re-read objects, the database to apply them. */
export interface ApplyDeps {
  stripe: Stripe;
  /** Calls a service-role SQL function by its generated types; throws a DatabaseFailure on error. */
  rpc<Fn extends SqlFunction>(fn: Fn, args: SqlArgs<Fn>): Promise<SqlResult<Fn>>;
  /** The organization linked to a Stripe customer, if any. */
  organizationOfCustomer(customerId: string): Promise<string | null>;
  gracePeriodDays: number;
  now(): Date;
  /** The dashboard's origin (APP_URL), where Stripe returns a customer who authenticated a top-up. */
  appUrl?: string;
}

export type Outcome = { status: "processed" } | { status: "ignored"; reason: string };

const ignored = (reason: string): Outcome => ({ status: "ignored", reason });
const processed: Outcome = { status: "processed" };

/** A subscription as re-read from Stripe, and when it was read (its state's version). */
async function readSubscription(deps: ApplyDeps, subscriptionId: string) {
  const observedAt = deps.now();
  return { subscription: await deps.stripe.subscriptions.retrieve(subscriptionId), observedAt };
}

/**
 * Re-reads a subscription from Stripe for an effect that needs it: its organization, the
 * subscription as read (never the event's copy) and the state the effect's call applies first.
 */
async function readSubscriptionOfOrganization(deps: ApplyDeps, subscriptionId: string) {
  const { subscription, observedAt } = await readSubscription(deps, subscriptionId);
  const customerId = idOf(subscription.customer);
  const organizationId = organizationIdOf(subscription.metadata) ??
    (customerId ? await deps.organizationOfCustomer(customerId) : null);
  if (!organizationId) return null;
  return { organizationId, subscription, state: subscriptionState(subscription, observedAt) };
}

type SubscriptionAsRead = NonNullable<Awaited<ReturnType<typeof readSubscriptionOfOrganization>>>;

/** Applies a subscription's state as read, for no event (the subscription's own events do that). */
async function syncSubscription(deps: ApplyDeps, read: SubscriptionAsRead): Promise<void> {
  await deps.rpc("apply_stripe_subscription", { p_event_id: null, p_organization_id: read.organizationId, ...read.state });
}

/**
 * An event about the subscription itself: applies its state as read and marks the event
 * processed, in one call.
 */
async function applySubscriptionEvent(deps: ApplyDeps, event: Stripe.Event): Promise<Outcome> {
  const subscription = event.data.object as Stripe.Subscription;
  const read = await readSubscriptionOfOrganization(deps, subscription.id);
  if (!read) return ignored(`subscription ${subscription.id} is for a customer we do not know`);
  await deps.rpc("apply_stripe_subscription", { p_event_id: event.id, p_organization_id: read.organizationId, ...read.state });
  return processed;
}

/** The receipt of a payment intent's charge, when there was a charge and Stripe issued one. */
async function receiptOf(deps: ApplyDeps, paymentIntentId: string | null): Promise<string | null> {
  if (!paymentIntentId) return null;
  const intent = await deps.stripe.paymentIntents.retrieve(paymentIntentId, { expand: ["latest_charge"] });
  const latest = intent.latest_charge;
  if (!latest) return null;
  const charge = typeof latest === "string" ? await deps.stripe.charges.retrieve(latest) : latest;
  return charge.receipt_url ?? null;
}

/** The payment intent that paid an invoice (Stripe lists an invoice's payment attempts on it). */
function invoicePaymentIntent(invoice: Stripe.Invoice): string | null {
  const payments = invoice.payments?.data ?? [];
  const paid = payments.find((payment) => payment.status === "paid") ?? payments.at(-1);
  return paid?.payment.type === "payment_intent" ? idOf(paid.payment.payment_intent) : null;
}

async function applyCheckoutSession(deps: ApplyDeps, event: Stripe.Event, session: Stripe.Checkout.Session) {
  const fresh = await deps.stripe.checkout.sessions.retrieve(session.id);
  const organizationId = organizationIdOf(fresh.metadata, fresh.client_reference_id);
  if (!organizationId) return ignored(`checkout session ${fresh.id} names no organization`);
  const customerId = idOf(fresh.customer);
  // The session may have saved a card for later off-session use (auto top-up): the card on
  // file as Stripe has it now, for no event (the effect below marks the event processed).
  if (customerId && event.type === "checkout.session.completed") await syncCardOnFile(deps, null, organizationId, customerId);

  if (fresh.mode === "subscription") {
    // The customer link and the subscription (when Stripe has made it) in one call.
    const subscriptionId = idOf(fresh.subscription);
    const read = subscriptionId ? await readSubscription(deps, subscriptionId) : null;
    await deps.rpc("apply_checkout_subscription", {
      p_event_id: event.id,
      p_organization_id: organizationId,
      p_checkout_customer_id: customerId,
      ...(read ? subscriptionState(read.subscription, read.observedAt) : {}),
    });
    return processed;
  }

  if (fresh.mode === "payment") {
    const productCode = fresh.metadata?.product_code;
    if (!productCode) return ignored(`checkout session ${fresh.id} names no credit product`);
    const paid = event.type === "checkout.session.async_payment_failed" ? false : fresh.payment_status === "paid";
    if (!paid && event.type === "checkout.session.completed") {
      // Delayed payment methods: the async_payment_* event settles it.
      return ignored(`checkout session ${fresh.id} is not paid yet`);
    }
    const paymentIntentId = idOf(fresh.payment_intent);
    await deps.rpc("apply_credit_purchase", {
      p_event_id: event.id,
      p_organization_id: organizationId,
      p_checkout_session_id: fresh.id,
      p_product_code: productCode,
      p_paid: paid,
      p_amount: fresh.amount_total ?? 0,
      p_currency: fresh.currency ?? "usd",
      p_occurred_at: fromUnix(event.created),
      p_details: { stripe_payment_intent_id: paymentIntentId, receipt_url: paid ? await receiptOf(deps, paymentIntentId) : null },
    });
    return processed;
  }
  return ignored(`checkout session mode ${fresh.mode} is not billed here`);
}

async function applyInvoice(deps: ApplyDeps, event: Stripe.Event, snapshot: Stripe.Invoice) {
  const invoice = await deps.stripe.invoices.retrieve(snapshot.id!, { expand: ["payments"] });
  const subscriptionId = invoiceSubscriptionId(invoice);
  if (!subscriptionId) return ignored(`invoice ${invoice.id} bills no subscription`);
  // The subscription as read goes into the invoice's call, so the invoice finds its current plan and status.
  const read = await readSubscriptionOfOrganization(deps, subscriptionId);
  if (!read) return ignored(`invoice ${invoice.id} is for a customer we do not know`);
  const { organizationId, state } = read;
  const details = { invoice_url: invoice.hosted_invoice_url, invoice_pdf_url: invoice.invoice_pdf };

  if (event.type === "invoice.payment_failed") {
    // A failure that arrives after the invoice was paid (a retry succeeded first, or the
    // events crossed) is history: it must not start a grace period or alert anyone. The
    // subscription as read is still brought up to date, as a sync outside the event.
    if (invoice.status === "paid") {
      await syncSubscription(deps, read);
      return ignored(`invoice ${invoice.id} failed once but is paid now`);
    }
    await deps.rpc("apply_invoice_payment_failed_with_subscription", {
      p_event_id: event.id,
      p_organization_id: organizationId,
      p_invoice_id: invoice.id,
      p_amount_due: invoice.amount_due,
      p_currency: invoice.currency,
      p_failed_at: fromUnix(event.created),
      p_grace_period: `${deps.gracePeriodDays} days`,
      p_details: details,
      ...state,
    });
    return processed;
  }
  if (invoice.status !== "paid") {
    await syncSubscription(deps, read);
    return ignored(`invoice ${invoice.id} is ${invoice.status}, not paid`);
  }
  const period = invoiceServicePeriod(invoice);
  const paymentIntentId = invoicePaymentIntent(invoice);
  // What every paid invoice records, whether it opens a period or only prorates a change.
  const paid = {
    p_event_id: event.id,
    p_organization_id: organizationId,
    p_invoice_id: invoice.id,
    p_amount_paid: invoice.amount_paid,
    p_currency: invoice.currency,
    p_paid_at: fromUnix(invoice.status_transitions?.paid_at ?? event.created),
    p_details: { ...details, stripe_payment_intent_id: paymentIntentId, receipt_url: await receiptOf(deps, paymentIntentId) },
    ...state,
  };
  if (!period) {
    // Prorations only: a plan change charged at once (an upgrade). It pays for no new period,
    // so it must not allocate a fresh allowance; it adds the prorated difference instead.
    await deps.rpc("apply_proration_invoice_paid_with_subscription", { ...paid, p_lines: invoiceProrationLines(invoice) });
    return processed;
  }
  await deps.rpc("apply_invoice_paid_with_subscription", { ...paid, p_period_start: period.start, p_period_end: period.end });
  return processed;
}

async function applyChargeRefunded(deps: ApplyDeps, event: Stripe.Event, snapshot: Stripe.Charge) {
  const charge = await deps.stripe.charges.retrieve(snapshot.id, { expand: ["refunds"] });
  const paymentIntentId = idOf(charge.payment_intent);
  if (!paymentIntentId) return ignored(`charge ${charge.id} has no payment intent`);
  const sessions = await deps.stripe.checkout.sessions.list({ payment_intent: paymentIntentId, limit: 1 });
  const session = sessions.data[0];
  const organizationId = session ? organizationIdOf(session.metadata, session.client_reference_id) : null;
  if (!session || !organizationId) return ignored(`charge ${charge.id} is not a credit purchase of ours`);

  // Every refund of the charge as Stripe lists it now, each clawed back once by its id.
  const refunds = (charge.refunds?.data ?? [])
    .filter((refund) => refund.status === "succeeded")
    .map((refund) => ({ id: refund.id, amount: refund.amount, currency: refund.currency, refunded_at: fromUnix(refund.created) }));
  await deps.rpc("apply_charge_refunded", {
    p_event_id: event.id,
    p_organization_id: organizationId,
    p_checkout_session_id: session.id,
    p_charge_amount: charge.amount,
    p_total_refunded: charge.amount_refunded,
    p_refunds: refunds,
    p_details: { stripe_charge_id: charge.id, receipt_url: charge.receipt_url },
  });
  return processed;
}

async function applyTrialWillEnd(deps: ApplyDeps, event: Stripe.Event, snapshot: Stripe.Subscription) {
  const read = await readSubscriptionOfOrganization(deps, snapshot.id);
  if (!read) return ignored(`subscription ${snapshot.id} is for a customer we do not know`);
  // The trial as Stripe has it now: the event's copy may be stale (the trial was extended,
  // shortened or ended since it was sent), so members are told what holds now.
  const { organizationId, subscription, state } = read;
  if (subscription.status !== "trialing" || subscription.trial_end === null) {
    await syncSubscription(deps, read);
    return ignored(`subscription ${subscription.id} is no longer in its trial`);
  }
  await deps.rpc("apply_trial_will_end_with_subscription", { p_event_id: event.id, p_organization_id: organizationId, ...state });
  return processed;
}

/**
 * A top-up's PaymentIntent succeeded or failed: re-read from Stripe (its state now decides,
 * not the event's: a failure since completed by the customer's authentication is a success),
 * then applied as the job applies it. PaymentIntents that are not top-ups (a credit pack's
 * Checkout has its own events) are ignored.
 */
async function applyPaymentIntentEvent(deps: ApplyDeps, event: Stripe.Event): Promise<Outcome> {
  const snapshot = event.data.object as Stripe.PaymentIntent;
  const intent = await deps.stripe.paymentIntents.retrieve(snapshot.id, { expand: ["latest_charge"] });
  const top = topUpOf(intent);
  if (!top) return ignored(`payment intent ${intent.id} is not an auto top-up`);
  const outcome = await applyTopUpPaymentIntent(deps, event.id, top, intent);
  return outcome === "pending" ? ignored(`payment intent ${intent.id} is ${intent.status}, not finished`) : processed;
}

/**
 * The customer's cards or default card may have changed (the portal, a new card saved, one
 * removed): the card on file as Stripe has it now.
 */
async function applyCustomerCardEvent(deps: ApplyDeps, event: Stripe.Event, customerId: string | null): Promise<Outcome> {
  if (!customerId) return ignored(`${event.type} names no customer`);
  const organizationId = await deps.organizationOfCustomer(customerId);
  if (!organizationId) return ignored(`customer ${customerId} is not one we know`);
  await syncCardOnFile(deps, event.id, organizationId, customerId);
  return processed;
}

/** A payment method's customer; a detached one names it only among the previous attributes. */
function paymentMethodCustomer(event: Stripe.Event): string | null {
  const method = event.data.object as Stripe.PaymentMethod;
  const previous = (event.data as { previous_attributes?: { customer?: string | null } }).previous_attributes;
  return idOf(method.customer) ?? previous?.customer ?? null;
}

type Handler = (deps: ApplyDeps, event: Stripe.Event) => Promise<Outcome>;

const checkoutSession: Handler = (deps, event) => applyCheckoutSession(deps, event, event.data.object as Stripe.Checkout.Session);
const invoice: Handler = (deps, event) => applyInvoice(deps, event, event.data.object as Stripe.Invoice);

/** Every event type the webhook acts on, and how. */
const handlers: Record<string, Handler> = {
  "checkout.session.completed": checkoutSession,
  "checkout.session.async_payment_succeeded": checkoutSession,
  "checkout.session.async_payment_failed": checkoutSession,
  "customer.subscription.created": applySubscriptionEvent,
  "customer.subscription.updated": applySubscriptionEvent,
  "customer.subscription.deleted": applySubscriptionEvent,
  "customer.subscription.trial_will_end": (deps, event) => applyTrialWillEnd(deps, event, event.data.object as Stripe.Subscription),
  "invoice.paid": invoice,
  "invoice.payment_succeeded": invoice,
  "invoice.payment_failed": invoice,
  "charge.refunded": (deps, event) => applyChargeRefunded(deps, event, event.data.object as Stripe.Charge),
  "payment_intent.succeeded": applyPaymentIntentEvent,
  "payment_intent.payment_failed": applyPaymentIntentEvent,
  "customer.updated": (deps, event) => applyCustomerCardEvent(deps, event, (event.data.object as Stripe.Customer).id),
  "payment_method.attached": (deps, event) => applyCustomerCardEvent(deps, event, paymentMethodCustomer(event)),
  "payment_method.detached": (deps, event) => applyCustomerCardEvent(deps, event, paymentMethodCustomer(event)),
};

/** Whether the webhook acts on this event type (anything else is acknowledged and ignored). */
export function handles(type: string): boolean {
  return Object.hasOwn(handlers, type);
}

/**
 * Applies a Stripe object's current state as its event of type `type` would, outside any
 * event (reconciliation's repairs): handlers re-read the object by its id anyway, and with no
 * event id no inbox row is marked. `created` (Unix seconds) stands in for the event's time
 * where a handler records it (a credit pack's payment time). Effects are keyed by business
 * ids, so applying an object already applied changes nothing.
 */
export async function reapplyObject(deps: ApplyDeps, type: string, objectId: string, created: number): Promise<Outcome> {
  const event = { id: null, object: "event", type, created, data: { object: { id: objectId } } } as unknown as Stripe.Event;
  return await applyEvent(deps, event);
}

/** Applies one verified, recorded event. Throws on failure; the caller decides retry or park. */
export async function applyEvent(deps: ApplyDeps, event: Stripe.Event): Promise<Outcome> {
  const handler = handlers[event.type];
  return handler ? await handler(deps, event) : ignored(`event type ${event.type} is not handled`);
}
