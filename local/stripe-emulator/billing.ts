/**
 * The billing lifecycle: what happens when a Checkout Session is paid, when a subscription
 * renews, when a renewal payment fails and is retried, when a trial ends, when a plan changes
 * or a subscription is cancelled, and when a charge is refunded. Every step mutates the stored
 * objects and emits the events Stripe emits for it, in Stripe's order, on the customer's clock.
 */
import type Stripe from "stripe";
import { cardDeclined, invalidRequest, resourceMissing } from "./errors.ts";
import {
  buildCharge,
  buildCustomer,
  buildCustomerDetails,
  buildInvoice,
  buildInvoiceLine,
  buildPaymentIntent,
  buildPaymentMethod,
  buildRefund,
  buildSubscription,
  buildSubscriptionItem,
} from "./objects.ts";
import { type CardBehavior, newId, type Store, type SubscriptionState } from "./store.ts";

/** The test cards the hosted pages accept, and what each does. */
export const testCards: Record<string, { behavior: CardBehavior; brand: string; description: string }> = {
  "4242424242424242": { behavior: "succeeds", brand: "visa", description: "pays" },
  "4000000000000002": { behavior: "declines", brand: "visa", description: "is declined (generic_decline)" },
  "4000000000000341": { behavior: "fails_off_session", brand: "visa", description: "attaches, then every later (renewal) charge fails" },
};

/** What happens after the last failed retry of a renewal invoice (Stripe's subscription setting). */
export type DunningFinalAction = "cancel" | "unpaid";

export interface DunningOptions {
  /** Days after the first failure at which the invoice is retried (Stripe's default schedule is similar). */
  retryDays: number[];
  finalAction: DunningFinalAction;
}

const day = 86_400;

/** Adds whole intervals the way Stripe anchors them: months keep the day of month where possible. */
export function addInterval(from: number, interval: Stripe.Price.Recurring.Interval, count: number): number {
  const date = new Date(from * 1000);
  switch (interval) {
    case "day":
      return from + count * day;
    case "week":
      return from + count * 7 * day;
    case "month": {
      const target = new Date(date);
      target.setUTCDate(1);
      target.setUTCMonth(target.getUTCMonth() + count);
      const lastDay = new Date(Date.UTC(target.getUTCFullYear(), target.getUTCMonth() + 1, 0)).getUTCDate();
      target.setUTCDate(Math.min(date.getUTCDate(), lastDay));
      return Math.floor(target.getTime() / 1000);
    }
    case "year": {
      const target = new Date(date);
      target.setUTCFullYear(target.getUTCFullYear() + count);
      return Math.floor(target.getTime() / 1000);
    }
    default:
      throw invalidRequest(`Unsupported interval: ${String(interval)}`);
  }
}

/**
 * The first anchor-aligned date after `after`: anchored on the 31st, periods end on the 28th
 * or 29th in February and on the 31st again in March, as Stripe bills them.
 */
export function nextPeriodEnd(anchor: number, after: number, interval: Stripe.Price.Recurring.Interval, count: number): number {
  for (let k = 1; ; k++) {
    const end = addInterval(anchor, interval, k * count);
    if (end > after) return end;
  }
}

function idOf(value: string | { id: string } | null): string | null {
  return value === null ? null : typeof value === "string" ? value : value.id;
}

/** Normalizes a typed card number (spaces and dashes allowed). */
/** Whether a customer was deleted (DELETE /v1/customers/:id). */
export function isDeleted(customer: Stripe.Customer): boolean {
  return (customer as { deleted?: boolean }).deleted === true;
}

/** What Stripe answers for a deleted customer. */
export function deletedCustomer(id: string): Stripe.DeletedCustomer {
  return { id, object: "customer", deleted: true };
}

export function normalizeCardNumber(input: string): string {
  return input.replace(/[\s-]/g, "");
}

export class Billing {
  constructor(
    private readonly store: Store,
    private readonly baseUrl: () => string,
    readonly dunning: DunningOptions,
  ) {}

  // -------------------------------------------------------------------------------------------
  // Lookups
  // -------------------------------------------------------------------------------------------

  customer(id: string, param = "id"): Stripe.Customer {
    const customer = this.store.customers.get(id);
    if (!customer || isDeleted(customer)) throw resourceMissing("customer", id, param);
    return customer;
  }

  price(id: string, param = "price"): Stripe.Price {
    const price = this.store.prices.get(id);
    if (!price) throw resourceMissing("price", id, param);
    return price;
  }

  subscription(id: string, param = "id"): Stripe.Subscription {
    const subscription = this.store.subscriptions.get(id);
    if (!subscription) throw resourceMissing("subscription", id, param);
    return subscription;
  }

  subscriptionState(id: string): SubscriptionState {
    let state = this.store.subscriptionStates.get(id);
    if (!state) {
      state = { failedAttempts: 0, nextRetryAt: null, trialWillEndSent: false, openInvoice: null };
      this.store.subscriptionStates.set(id, state);
    }
    return state;
  }

  private customerIdOf(subscription: Stripe.Subscription): string {
    return idOf(subscription.customer) ?? "";
  }

  private item(subscription: Stripe.Subscription): Stripe.SubscriptionItem {
    const item = subscription.items.data[0];
    if (!item) throw invalidRequest(`Subscription ${subscription.id} has no items.`);
    return item;
  }

  private priceLabel(price: Stripe.Price, quantity: number): string {
    const productId = typeof price.product === "string" ? price.product : price.product.id;
    return `${quantity} × ${price.nickname ?? this.store.products.get(productId)?.name ?? productId}`;
  }

  private lineDescription(price: Stripe.Price, quantity: number, trial: boolean): string {
    const label = this.priceLabel(price, quantity);
    const amount = ((price.unit_amount ?? 0) / 100).toFixed(2);
    return trial ? `Trial period for ${label}` : price.recurring ? `${label} (at ${amount} ${price.currency.toUpperCase()} / ${price.recurring.interval})` : label;
  }

  // -------------------------------------------------------------------------------------------
  // Customers and cards
  // -------------------------------------------------------------------------------------------

  createCustomer(fields: { email: string | null; name: string | null; description: string | null; phone: string | null; metadata: Stripe.Metadata }): Stripe.Customer {
    const id = newId("cus");
    const customer = buildCustomer({
      id,
      created: this.store.now(),
      ...fields,
      invoicePrefix: id.slice(4, 12).toUpperCase(),
    });
    this.store.customers.set(id, customer);
    this.store.emit("customer.created", customer, { customer: id });
    return customer;
  }

  /**
   * Deletes a customer as Stripe does: its live subscriptions are canceled at once, and it
   * reads back as `{id, object: "customer", deleted: true}` and can be used for nothing else.
   * Kept in the store (marked) rather than removed, so a read still says "deleted".
   */
  deleteCustomer(id: string): Stripe.DeletedCustomer {
    const customer = this.customer(id);
    for (const subscription of this.store.subscriptions.values()) {
      const live = subscription.status !== "canceled" && subscription.status !== "incomplete_expired";
      if (live && this.customerIdOf(subscription) === id) this.cancelNow(subscription);
    }
    this.store.emit("customer.deleted", customer, { customer: id });
    (customer as { deleted?: boolean }).deleted = true;
    return deletedCustomer(id);
  }

  /** Creates a card payment method from a test card number and makes it the customer's default. */
  attachCard(customer: Stripe.Customer, cardNumber: string): Stripe.PaymentMethod {
    const number = normalizeCardNumber(cardNumber);
    const card = testCards[number];
    if (!card) {
      throw invalidRequest(`Your card number is incorrect. The emulator knows the test cards ${Object.keys(testCards).join(", ")}.`, {
        code: "incorrect_number",
        param: "card[number]",
      });
    }
    // Stripe checks a card when it is saved: a card that declines is never attached.
    if (card.behavior === "declines") throw cardDeclined("generic_decline", "Your card was declined.");
    const paymentMethod = buildPaymentMethod({
      id: newId("pm", 24),
      created: this.store.now(customer.id),
      customer: customer.id,
      last4: number.slice(-4),
      brand: card.brand,
    });
    this.store.paymentMethods.set(paymentMethod.id, paymentMethod);
    this.store.cardBehaviors.set(paymentMethod.id, card.behavior);
    this.store.emit("payment_method.attached", paymentMethod, { customer: customer.id });
    const previous = customer.invoice_settings.default_payment_method;
    customer.invoice_settings.default_payment_method = paymentMethod.id;
    this.store.emit("customer.updated", customer, {
      customer: customer.id,
      previousAttributes: { invoice_settings: { default_payment_method: previous } },
    });
    return paymentMethod;
  }

  private defaultPaymentMethod(customer: Stripe.Customer, subscription?: Stripe.Subscription): Stripe.PaymentMethod | null {
    const id = (subscription && idOf(subscription.default_payment_method)) ?? idOf(customer.invoice_settings.default_payment_method);
    return id ? (this.store.paymentMethods.get(id) ?? null) : null;
  }

  // -------------------------------------------------------------------------------------------
  // Payments
  // -------------------------------------------------------------------------------------------

  /**
   * Charges a card through a new PaymentIntent and Charge, emitting their events. Returns the
   * PaymentIntent; its status says whether the money moved.
   */
  private pay(args: {
    customer: Stripe.Customer | null;
    amount: number;
    currency: string;
    paymentMethod: Stripe.PaymentMethod | null;
    offSession: boolean;
    description: string | null;
    metadata: Stripe.Metadata;
  }): { paymentIntent: Stripe.PaymentIntent; charge: Stripe.Charge | null } {
    const customerId = args.customer?.id ?? null;
    const now = this.store.now(customerId);
    const paymentIntent = buildPaymentIntent({
      id: newId("pi", 24),
      created: now,
      amount: args.amount,
      currency: args.currency,
      customer: customerId,
      description: args.description,
      metadata: args.metadata,
    });
    this.store.paymentIntents.set(paymentIntent.id, paymentIntent);
    const paymentMethod = args.paymentMethod;
    if (!paymentMethod) {
      paymentIntent.last_payment_error = {
        type: "invalid_request_error",
        code: "payment_method_unexpected_state",
        message: "The customer has no default payment method.",
      };
      this.store.emit("payment_intent.payment_failed", paymentIntent, { customer: customerId });
      return { paymentIntent, charge: null };
    }
    const behavior = this.store.cardBehaviors.get(paymentMethod.id) ?? "succeeds";
    const succeeded = behavior === "succeeds" || (behavior === "fails_off_session" && !args.offSession);
    const chargeId = newId("ch", 24);
    const charge = buildCharge({
      id: chargeId,
      created: now,
      amount: args.amount,
      currency: args.currency,
      customer: customerId,
      paymentIntent: paymentIntent.id,
      paymentMethod,
      succeeded,
      failure: succeeded ? null : { code: "card_declined", message: "Your card was declined.", declineCode: "generic_decline" },
      receiptUrl: `${this.baseUrl()}/receipts/${chargeId}`,
    });
    this.store.charges.set(charge.id, charge);
    paymentIntent.payment_method = paymentMethod.id;
    paymentIntent.latest_charge = charge.id;
    if (succeeded) {
      paymentIntent.status = "succeeded";
      paymentIntent.amount_received = args.amount;
      this.store.emit("charge.succeeded", charge, { customer: customerId });
      this.store.emit("payment_intent.succeeded", paymentIntent, { customer: customerId });
    } else {
      paymentIntent.status = "requires_payment_method";
      paymentIntent.last_payment_error = {
        type: "card_error",
        charge: charge.id,
        code: "card_declined",
        decline_code: "generic_decline",
        message: "Your card was declined.",
        payment_method: paymentMethod,
      };
      this.store.emit("charge.failed", charge, { customer: customerId });
      this.store.emit("payment_intent.payment_failed", paymentIntent, { customer: customerId });
    }
    return { paymentIntent, charge };
  }

  // -------------------------------------------------------------------------------------------
  // Invoices
  // -------------------------------------------------------------------------------------------

  private createSubscriptionInvoice(
    subscription: Stripe.Subscription,
    billingReason: Stripe.Invoice.BillingReason,
    lines: Array<{ price: Stripe.Price; quantity: number; amount: number; description: string; start: number; end: number; proration: boolean }>,
  ): Stripe.Invoice {
    const customer = this.customer(this.customerIdOf(subscription), "customer");
    const id = newId("in", 24);
    const item = this.item(subscription);
    const invoice = buildInvoice({
      id,
      created: this.store.now(customer.id),
      customer,
      currency: subscription.currency,
      lines: lines.map((line) =>
        buildInvoiceLine({
          id: newId("il", 24),
          invoice: id,
          amount: line.amount,
          currency: subscription.currency,
          description: line.description,
          quantity: line.quantity,
          price: line.price,
          periodStart: line.start,
          periodEnd: line.end,
          subscription: subscription.id,
          subscriptionItem: item.id,
          proration: line.proration,
        }),
      ),
      billingReason,
      subscription: subscription.id,
      subscriptionMetadata: { ...subscription.metadata },
      periodStart: Math.min(...lines.map((l) => l.start)),
      periodEnd: Math.max(...lines.map((l) => l.end)),
      hostedUrl: `${this.baseUrl()}/invoices/${id}`,
    });
    this.store.invoices.set(id, invoice);
    subscription.latest_invoice = id;
    this.store.emit("invoice.created", invoice, { customer: customer.id });
    invoice.status = "open";
    invoice.number = this.store.nextInvoiceNumber(customer);
    invoice.effective_at = this.store.now(customer.id);
    invoice.status_transitions.finalized_at = invoice.effective_at;
    this.store.emit("invoice.finalized", invoice, { customer: customer.id });
    return invoice;
  }

  private markInvoicePaid(invoice: Stripe.Invoice, customerId: string): void {
    invoice.status = "paid";
    invoice.amount_paid = invoice.amount_due;
    invoice.amount_remaining = 0;
    invoice.next_payment_attempt = null;
    invoice.status_transitions.paid_at = this.store.now(customerId);
    this.store.emit("invoice.paid", invoice, { customer: customerId });
    this.store.emit("invoice.payment_succeeded", invoice, { customer: customerId });
  }

  /** Attempts to collect an open invoice off-session; true when it was paid. */
  private collectInvoice(invoice: Stripe.Invoice, subscription: Stripe.Subscription, offSession: boolean): boolean {
    const customer = this.customer(this.customerIdOf(subscription), "customer");
    invoice.attempted = true;
    invoice.attempt_count += 1;
    if (invoice.amount_due === 0) {
      this.markInvoicePaid(invoice, customer.id);
      return true;
    }
    const { paymentIntent } = this.pay({
      customer,
      amount: invoice.amount_due,
      currency: invoice.currency,
      paymentMethod: this.defaultPaymentMethod(customer, subscription),
      offSession,
      description: billingDescription(invoice),
      metadata: {},
    });
    invoice.payments = {
      object: "list",
      has_more: false,
      url: `/v1/invoice_payments?invoice=${invoice.id}`,
      data: [
        {
          id: newId("inpay", 24),
          object: "invoice_payment",
          amount_paid: paymentIntent.status === "succeeded" ? invoice.amount_due : null,
          amount_requested: invoice.amount_due,
          created: paymentIntent.created,
          currency: invoice.currency,
          invoice: invoice.id,
          is_default: true,
          livemode: false,
          payment: { type: "payment_intent", payment_intent: paymentIntent.id },
          status: paymentIntent.status === "succeeded" ? "paid" : "open",
          status_transitions: { canceled_at: null, paid_at: paymentIntent.status === "succeeded" ? paymentIntent.created : null },
        },
      ],
    };
    if (paymentIntent.status === "succeeded") {
      this.markInvoicePaid(invoice, customer.id);
      return true;
    }
    return false;
  }

  // -------------------------------------------------------------------------------------------
  // Checkout
  // -------------------------------------------------------------------------------------------

  /**
   * Pays a Checkout Session with a test card, as the hosted page's submit does. Throws a
   * `card_error` (402) when the card is declined; the session stays open then.
   */
  completeCheckout(sessionId: string, input: { cardNumber: string; email: string | null }): Stripe.Checkout.Session {
    const session = this.findCheckoutSession(sessionId);
    if (!session) throw resourceMissing("checkout.session", sessionId);
    if (session.status !== "open") throw invalidRequest(`This Checkout Session is ${session.status ?? "closed"} and can no longer be paid.`);
    const plan = this.store.checkoutPlans.get(sessionId);
    if (!plan) throw resourceMissing("checkout.session", sessionId);
    const number = normalizeCardNumber(input.cardNumber);
    const card = testCards[number];
    if (!card) throw invalidRequest("Your card number is incorrect.", { code: "incorrect_number", param: "card[number]" });
    if (card.behavior === "declines") throw cardDeclined("generic_decline", "Your card was declined.");

    const price = this.price(plan.price);
    const existing = idOf(session.customer);
    let customer: Stripe.Customer | null = existing ? this.customer(existing, "customer") : null;
    const email = session.customer_email ?? input.email;
    if (!customer && (session.mode === "subscription" || session.customer_creation === "always")) {
      customer = this.createCustomer({ email, name: null, description: null, phone: null, metadata: {} });
    }
    const paymentMethod = customer ? this.attachCard(customer, number) : null;

    if (session.mode === "subscription") {
      if (!customer || !paymentMethod) throw invalidRequest("A subscription needs a customer.");
      return this.completeSubscriptionCheckout(session, plan, price, customer, paymentMethod);
    }
    // mode: payment (credit packs)
    const orphanCard =
      paymentMethod ??
      buildPaymentMethod({ id: newId("pm", 24), created: this.store.now(), customer: null, last4: number.slice(-4), brand: card.brand });
    if (!paymentMethod) {
      this.store.paymentMethods.set(orphanCard.id, orphanCard);
      this.store.cardBehaviors.set(orphanCard.id, card.behavior);
    }
    const customerId = customer?.id ?? null;
    session.status = "complete";
    session.payment_status = "paid";
    session.customer = customerId;
    session.customer_details = customer
      ? buildCustomerDetails(customer)
      : { address: null, business_name: null, email, individual_name: null, name: null, phone: null, tax_exempt: "none", tax_ids: [] };
    // The PaymentIntent and Charge exist before the session completes (their ids are on it);
    // their events follow checkout.session.completed, the order packs are specified with.
    const paymentIntent = buildPaymentIntent({
      id: newId("pi", 24),
      created: this.store.now(customerId),
      amount: session.amount_total ?? 0,
      currency: session.currency ?? price.currency,
      customer: customerId,
      description: null,
      metadata: plan.paymentIntentMetadata,
    });
    const charge = buildCharge({
      id: newId("ch", 24),
      created: paymentIntent.created,
      amount: paymentIntent.amount,
      currency: paymentIntent.currency,
      customer: customerId,
      paymentIntent: paymentIntent.id,
      paymentMethod: orphanCard,
      succeeded: true,
      failure: null,
      receiptUrl: `${this.baseUrl()}/receipts/${paymentIntent.id}`,
    });
    paymentIntent.status = "succeeded";
    paymentIntent.amount_received = paymentIntent.amount;
    paymentIntent.payment_method = orphanCard.id;
    paymentIntent.latest_charge = charge.id;
    this.store.paymentIntents.set(paymentIntent.id, paymentIntent);
    this.store.charges.set(charge.id, charge);
    session.payment_intent = paymentIntent.id;
    this.store.emit("checkout.session.completed", session, { customer: customerId });
    this.store.emit("payment_intent.succeeded", paymentIntent, { customer: customerId });
    this.store.emit("charge.succeeded", charge, { customer: customerId });
    return session;
  }

  private completeSubscriptionCheckout(
    session: Stripe.Checkout.Session,
    plan: { quantity: number; trialPeriodDays: number | null; subscriptionMetadata: Stripe.Metadata },
    price: Stripe.Price,
    customer: Stripe.Customer,
    paymentMethod: Stripe.PaymentMethod,
  ): Stripe.Checkout.Session {
    const recurring = price.recurring;
    if (!recurring) throw invalidRequest("A subscription Checkout Session needs a recurring price.", { param: "line_items[0][price]" });
    const now = this.store.now(customer.id);
    const trialDays = plan.trialPeriodDays;
    const trialEnd = trialDays ? now + trialDays * day : null;
    const periodEnd = trialEnd ?? addInterval(now, recurring.interval, recurring.interval_count);
    const subscriptionId = newId("sub", 24);
    const item = buildSubscriptionItem({
      id: newId("si"),
      created: now,
      subscription: subscriptionId,
      price,
      quantity: plan.quantity,
      periodStart: now,
      periodEnd,
    });
    const subscription = buildSubscription({
      id: subscriptionId,
      created: now,
      customer: customer.id,
      currency: price.currency,
      item,
      status: trialEnd ? "trialing" : "incomplete",
      metadata: { ...plan.subscriptionMetadata },
      defaultPaymentMethod: paymentMethod.id,
      trialStart: trialEnd ? now : null,
      trialEnd,
      billingCycleAnchor: trialEnd ?? now,
    });
    this.store.subscriptions.set(subscriptionId, subscription);
    this.subscriptionState(subscriptionId);

    session.status = "complete";
    session.payment_status = trialEnd ? "no_payment_required" : "paid";
    session.customer = customer.id;
    session.customer_details = buildCustomerDetails(customer);
    session.subscription = subscriptionId;
    this.store.emit("checkout.session.completed", session, { customer: customer.id });
    this.store.emit("customer.subscription.created", subscription, { customer: customer.id });

    const amount = trialEnd ? 0 : (price.unit_amount ?? 0) * plan.quantity;
    const invoice = this.createSubscriptionInvoice(subscription, "subscription_create", [
      { price, quantity: plan.quantity, amount, description: this.lineDescription(price, plan.quantity, Boolean(trialEnd)), start: now, end: periodEnd, proration: false },
    ]);
    session.invoice = invoice.id;
    // The customer is present and the card was checked on the page: the first charge is on-session.
    const paid = this.collectInvoice(invoice, subscription, false);
    if (!paid) throw cardDeclined("generic_decline", "Your card was declined.");
    if (!trialEnd) {
      subscription.status = "active";
      this.store.emit("customer.subscription.updated", subscription, { customer: customer.id, previousAttributes: { status: "incomplete" } });
    }
    return session;
  }

  /** A Checkout Session by id; one whose `expires_at` has passed is expired first (on read). */
  findCheckoutSession(id: string): Stripe.Checkout.Session | undefined {
    const session = this.store.checkoutSessions.get(id);
    if (session) this.expireIfDue(session);
    return session;
  }

  expireIfDue(session: Stripe.Checkout.Session): void {
    if (session.status === "open" && this.store.now(idOf(session.customer)) >= session.expires_at) this.expire(session);
  }

  private expire(session: Stripe.Checkout.Session): void {
    session.status = "expired";
    session.url = null;
    this.store.emit("checkout.session.expired", session, { customer: idOf(session.customer) });
  }

  expireCheckout(sessionId: string): Stripe.Checkout.Session {
    const session = this.findCheckoutSession(sessionId);
    if (!session) throw resourceMissing("checkout.session", sessionId, "session");
    if (session.status !== "open") {
      throw invalidRequest(`Only Checkout Sessions with a status in ["open"] can be expired. This Checkout Session has a status of "${session.status ?? "null"}".`, { code: "checkout_session_not_open" });
    }
    this.expire(session);
    return session;
  }

  // -------------------------------------------------------------------------------------------
  // Subscription changes
  // -------------------------------------------------------------------------------------------

  private emitUpdated(subscription: Stripe.Subscription, previous: object): void {
    this.store.emit("customer.subscription.updated", subscription, { customer: this.customerIdOf(subscription), previousAttributes: previous });
  }

  private assertLive(subscription: Stripe.Subscription): void {
    if (subscription.status === "canceled" || subscription.status === "incomplete_expired") {
      throw invalidRequest("A canceled subscription can only update its cancellation_details and metadata.");
    }
  }

  setCancelAtPeriodEnd(subscription: Stripe.Subscription, cancel: boolean, reason: Stripe.Subscription.CancellationDetails.Reason | null = "cancellation_requested"): void {
    this.assertLive(subscription);
    if (subscription.cancel_at_period_end === cancel) return;
    const previous = {
      cancel_at_period_end: subscription.cancel_at_period_end,
      cancel_at: subscription.cancel_at,
      canceled_at: subscription.canceled_at,
      cancellation_details: { ...subscription.cancellation_details },
    };
    const now = this.store.now(this.customerIdOf(subscription));
    subscription.cancel_at_period_end = cancel;
    subscription.cancel_at = cancel ? this.item(subscription).current_period_end : null;
    subscription.canceled_at = cancel ? now : null;
    subscription.cancellation_details = { comment: null, feedback: null, feedback_option: null, reason: cancel ? reason : null };
    this.emitUpdated(subscription, previous);
  }

  /** Cancels immediately: status `canceled`, `customer.subscription.deleted`. */
  cancelNow(subscription: Stripe.Subscription, reason: Stripe.Subscription.CancellationDetails.Reason = "cancellation_requested"): Stripe.Subscription {
    this.assertLive(subscription);
    const now = this.store.now(this.customerIdOf(subscription));
    subscription.status = "canceled";
    subscription.canceled_at = subscription.canceled_at ?? now;
    subscription.ended_at = now;
    subscription.cancellation_details = { comment: null, feedback: null, feedback_option: null, reason };
    const state = this.subscriptionState(subscription.id);
    state.nextRetryAt = null;
    this.store.emit("customer.subscription.deleted", subscription, { customer: this.customerIdOf(subscription) });
    return subscription;
  }

  /**
   * Switches the subscription to another recurring price. Same interval: the period stays and
   * (`create_prorations`, the default) the unused time is credited and the new price's remaining
   * time charged on the next invoice, or now with `always_invoice`; `none` changes the price
   * only. A different interval resets the billing cycle to now and invoices immediately, as
   * Stripe does.
   */
  changePrice(
    subscription: Stripe.Subscription,
    newPrice: Stripe.Price,
    prorationBehavior: "create_prorations" | "always_invoice" | "none",
    quantity?: number,
  ): void {
    this.assertLive(subscription);
    const recurring = newPrice.recurring;
    if (!recurring) throw invalidRequest("The price specified is not recurring; subscriptions need a recurring price.", { param: "items[0][price]" });
    if (newPrice.currency !== subscription.currency) throw invalidRequest("The price's currency differs from the subscription's.", { param: "items[0][price]" });
    const item = this.item(subscription);
    const oldPrice = item.price;
    const oldQuantity = item.quantity ?? 1;
    const newQuantity = quantity ?? oldQuantity;
    const customerId = this.customerIdOf(subscription);
    const now = this.store.now(customerId);
    const previous = { items: snapshotItems(subscription) };
    const sameInterval = oldPrice.recurring?.interval === recurring.interval && oldPrice.recurring?.interval_count === recurring.interval_count;
    const start = item.current_period_start;
    const end = item.current_period_end;
    const remaining = Math.max(0, end - now) / Math.max(1, end - start);
    const prorations =
      prorationBehavior === "none" || subscription.status === "trialing"
        ? []
        : [
            { price: oldPrice, quantity: oldQuantity, amount: -Math.round((oldPrice.unit_amount ?? 0) * oldQuantity * remaining), description: `Unused time on ${this.priceLabel(oldPrice, oldQuantity)}`, start: now, end, proration: true },
            ...(sameInterval
              ? [{ price: newPrice, quantity: newQuantity, amount: Math.round((newPrice.unit_amount ?? 0) * newQuantity * remaining), description: `Remaining time on ${this.priceLabel(newPrice, newQuantity)}`, start: now, end, proration: true }]
              : []),
          ];
    item.price = newPrice;
    item.plan = { ...item.plan, ...planOf(newPrice) };
    item.quantity = newQuantity;
    if (sameInterval || subscription.status === "trialing") {
      this.emitUpdated(subscription, previous);
      if (prorations.length === 0) return;
      if (prorationBehavior === "create_prorations") {
        const pending = this.store.pendingProrations.get(subscription.id) ?? [];
        pending.push(...prorations);
        this.store.pendingProrations.set(subscription.id, pending);
        return;
      }
      this.invoiceNow(subscription, "subscription_update", prorations);
      return;
    }
    // A new interval: the billing cycle restarts now and the new period is invoiced at once.
    const newEnd = addInterval(now, recurring.interval, recurring.interval_count);
    item.current_period_start = now;
    item.current_period_end = newEnd;
    subscription.billing_cycle_anchor = now;
    if (subscription.cancel_at_period_end) subscription.cancel_at = newEnd;
    this.emitUpdated(subscription, previous);
    this.invoiceNow(subscription, "subscription_update", [
      ...prorations,
      { price: newPrice, quantity: newQuantity, amount: (newPrice.unit_amount ?? 0) * newQuantity, description: this.lineDescription(newPrice, newQuantity, false), start: now, end: newEnd, proration: false },
    ]);
  }

  private invoiceNow(
    subscription: Stripe.Subscription,
    reason: Stripe.Invoice.BillingReason,
    lines: Array<{ price: Stripe.Price; quantity: number; amount: number; description: string; start: number; end: number; proration: boolean }>,
  ): void {
    const invoice = this.createSubscriptionInvoice(subscription, reason, lines);
    if (invoice.amount_due < 0) {
      // A net credit goes to the customer's balance, and the invoice is settled at zero.
      const customer = this.customer(this.customerIdOf(subscription), "customer");
      customer.balance += invoice.amount_due;
      invoice.ending_balance = customer.balance;
      invoice.amount_due = 0;
      invoice.amount_remaining = 0;
    }
    const paid = this.collectInvoice(invoice, subscription, true);
    if (!paid) this.renewalFailed(subscription, invoice);
  }

  // -------------------------------------------------------------------------------------------
  // The test clock
  // -------------------------------------------------------------------------------------------

  /** The next moment something happens to this subscription on its own, or null. */
  nextMilestone(subscription: Stripe.Subscription): number | null {
    if (subscription.status === "canceled" || subscription.status === "incomplete_expired" || subscription.status === "incomplete") return null;
    const state = this.subscriptionState(subscription.id);
    const item = this.item(subscription);
    const candidates: number[] = [];
    if (subscription.status === "trialing" && subscription.trial_end) {
      if (!state.trialWillEndSent) candidates.push(Math.max(subscription.created, subscription.trial_end - 3 * day));
      candidates.push(subscription.trial_end);
    } else {
      if (state.nextRetryAt !== null) candidates.push(state.nextRetryAt);
      if (subscription.status !== "unpaid") candidates.push(item.current_period_end);
    }
    return candidates.length ? Math.min(...candidates) : null;
  }

  /**
   * Runs a customer's clock forward to `to` (default: the earliest next milestone among its
   * subscriptions), performing everything due on the way in time order: trial reminders, trial
   * conversions, renewals, retries, cancellations at period end.
   */
  advance(customerId: string, to?: number): { now: number; subscriptions: Stripe.Subscription[] } {
    this.customer(customerId, "customer");
    const subscriptions = [...this.store.subscriptions.values()].filter((s) => this.customerIdOf(s) === customerId);
    const milestones = subscriptions.map((s) => this.nextMilestone(s)).filter((m): m is number => m !== null);
    const target = to ?? (milestones.length ? Math.min(...milestones) : this.store.now(customerId));
    for (let guard = 0; guard < 10_000; guard++) {
      let due: { subscription: Stripe.Subscription; at: number } | null = null;
      for (const subscription of subscriptions) {
        const at = this.nextMilestone(subscription);
        if (at !== null && at <= target && (!due || at < due.at)) due = { subscription, at };
      }
      if (!due) break;
      this.store.advanceClock(customerId, due.at);
      this.runMilestone(due.subscription, due.at);
    }
    this.store.advanceClock(customerId, target);
    return { now: this.store.now(customerId), subscriptions };
  }

  private runMilestone(subscription: Stripe.Subscription, at: number): void {
    const state = this.subscriptionState(subscription.id);
    const item = this.item(subscription);
    if (subscription.status === "trialing" && subscription.trial_end) {
      if (!state.trialWillEndSent && at < subscription.trial_end) {
        state.trialWillEndSent = true;
        this.store.emit("customer.subscription.trial_will_end", subscription, { customer: this.customerIdOf(subscription) });
        return;
      }
      state.trialWillEndSent = true;
      this.renew(subscription);
      return;
    }
    if (state.nextRetryAt !== null && at === state.nextRetryAt && at < item.current_period_end) {
      this.retry(subscription);
      return;
    }
    this.renew(subscription);
  }

  /** The period end: cancel if asked to, otherwise start the next period and bill it. */
  private renew(subscription: Stripe.Subscription): void {
    const customerId = this.customerIdOf(subscription);
    if (subscription.cancel_at_period_end) {
      this.cancelNow(subscription, "cancellation_requested");
      return;
    }
    const item = this.item(subscription);
    const price = item.price;
    const recurring = price.recurring;
    if (!recurring) return;
    const start = item.current_period_end;
    const end = nextPeriodEnd(subscription.billing_cycle_anchor, start, recurring.interval, recurring.interval_count);
    const previous: Record<string, unknown> = { items: snapshotItems(subscription) };
    item.current_period_start = start;
    item.current_period_end = end;
    const wasTrialing = subscription.status === "trialing";
    if (wasTrialing) {
      previous.status = "trialing";
      subscription.status = "active";
    }
    this.emitUpdated(subscription, previous);
    const quantity = item.quantity ?? 1;
    const pending = this.store.pendingProrations.get(subscription.id) ?? [];
    this.store.pendingProrations.delete(subscription.id);
    const invoice = this.createSubscriptionInvoice(subscription, "subscription_cycle", [
      ...pending,
      { price, quantity, amount: (price.unit_amount ?? 0) * quantity, description: this.lineDescription(price, quantity, false), start, end, proration: false },
    ]);
    if (invoice.amount_due < 0) {
      invoice.amount_due = 0;
      invoice.amount_remaining = 0;
    }
    // A previous period's invoice still open is left open (Stripe keeps retrying it on its own schedule).
    if (this.collectInvoice(invoice, subscription, true)) {
      if (subscription.status === "past_due" || subscription.status === "unpaid") {
        const before = subscription.status;
        subscription.status = "active";
        this.subscriptionState(subscription.id).nextRetryAt = null;
        this.subscriptionState(subscription.id).failedAttempts = 0;
        this.emitUpdated(subscription, { status: before });
      }
      return;
    }
    this.renewalFailed(subscription, invoice);
  }

  private renewalFailed(subscription: Stripe.Subscription, invoice: Stripe.Invoice): void {
    const customerId = this.customerIdOf(subscription);
    const state = this.subscriptionState(subscription.id);
    state.failedAttempts = 1;
    state.openInvoice = invoice.id;
    const firstRetry = this.dunning.retryDays[0];
    const now = this.store.now(customerId);
    state.nextRetryAt = firstRetry === undefined ? null : now + firstRetry * day;
    invoice.next_payment_attempt = state.nextRetryAt;
    this.store.emit("invoice.payment_failed", invoice, { customer: customerId });
    if (subscription.status !== "past_due") {
      const before = subscription.status;
      subscription.status = "past_due";
      this.emitUpdated(subscription, { status: before });
    }
    if (state.nextRetryAt === null) this.dunningExhausted(subscription, invoice);
  }

  /** A scheduled retry of the open renewal invoice. */
  retry(subscription: Stripe.Subscription): boolean {
    const customerId = this.customerIdOf(subscription);
    const state = this.subscriptionState(subscription.id);
    const invoiceId = state.openInvoice;
    const invoice = invoiceId ? this.store.invoices.get(invoiceId) : undefined;
    if (!invoice || invoice.status !== "open") {
      state.nextRetryAt = null;
      return false;
    }
    if (this.collectInvoice(invoice, subscription, true)) {
      state.nextRetryAt = null;
      state.failedAttempts = 0;
      state.openInvoice = null;
      if (subscription.status !== "active" && subscription.status !== "trialing") {
        const before = subscription.status;
        subscription.status = "active";
        this.emitUpdated(subscription, { status: before });
      }
      return true;
    }
    state.failedAttempts += 1;
    const firstFailure = (invoice.status_transitions.finalized_at ?? this.store.now(customerId));
    const nextDay = this.dunning.retryDays[state.failedAttempts - 1];
    state.nextRetryAt = nextDay === undefined ? null : firstFailure + nextDay * day;
    invoice.next_payment_attempt = state.nextRetryAt;
    this.store.emit("invoice.payment_failed", invoice, { customer: customerId });
    if (state.nextRetryAt === null) this.dunningExhausted(subscription, invoice);
    return false;
  }

  private dunningExhausted(subscription: Stripe.Subscription, invoice: Stripe.Invoice): void {
    const customerId = this.customerIdOf(subscription);
    invoice.next_payment_attempt = null;
    if (this.dunning.finalAction === "cancel") {
      this.cancelNow(subscription, "payment_failed");
      return;
    }
    const before = subscription.status;
    subscription.status = "unpaid";
    this.subscriptionState(subscription.id).nextRetryAt = null;
    this.store.emit("customer.subscription.updated", subscription, { customer: customerId, previousAttributes: { status: before } });
  }

  /** A new card replaces the default one; a past-due subscription's open invoice is retried at once. */
  replaceCard(customer: Stripe.Customer, cardNumber: string): Stripe.PaymentMethod {
    const paymentMethod = this.attachCard(customer, cardNumber);
    for (const subscription of this.store.subscriptions.values()) {
      if (this.customerIdOf(subscription) !== customer.id) continue;
      if (subscription.status === "canceled") continue;
      const previous = subscription.default_payment_method;
      subscription.default_payment_method = paymentMethod.id;
      this.emitUpdated(subscription, { default_payment_method: previous });
      if (subscription.status === "past_due" || subscription.status === "unpaid") this.retry(subscription);
    }
    return paymentMethod;
  }

  // -------------------------------------------------------------------------------------------
  // Refunds
  // -------------------------------------------------------------------------------------------

  refund(charge: Stripe.Charge, amount: number | undefined, reason: Stripe.Refund.Reason | null, metadata: Stripe.Metadata): Stripe.Refund {
    if (charge.status !== "succeeded") throw invalidRequest(`Charge ${charge.id} has not succeeded and cannot be refunded.`, { code: "charge_not_refundable" });
    const refundable = charge.amount - charge.amount_refunded;
    if (refundable <= 0) throw invalidRequest(`Charge ${charge.id} has already been refunded.`, { code: "charge_already_refunded" });
    const value = amount ?? refundable;
    if (value <= 0 || value > refundable) {
      throw invalidRequest(`Refund amount (${value}) is greater than unrefunded amount on charge (${refundable})`, { param: "amount", code: "amount_too_large" });
    }
    const customerId = idOf(charge.customer);
    const refund = buildRefund({ id: newId("re", 24), created: this.store.now(customerId), amount: value, charge, reason, metadata });
    this.store.refunds.set(refund.id, refund);
    charge.amount_refunded += value;
    charge.refunded = charge.amount_refunded === charge.amount;
    if (charge.refunds) {
      charge.refunds.data.unshift(refund);
    }
    this.store.emit("charge.refunded", charge, { customer: customerId, previousAttributes: { amount_refunded: charge.amount_refunded - value, refunded: false } });
    this.store.emit("refund.created", refund, { customer: customerId });
    return refund;
  }
}

function planOf(price: Stripe.Price): Partial<Stripe.Plan> {
  return {
    id: price.id,
    amount: price.unit_amount,
    amount_decimal: price.unit_amount_decimal,
    currency: price.currency,
    interval: price.recurring?.interval ?? "month",
    interval_count: price.recurring?.interval_count ?? 1,
    nickname: price.nickname,
    product: price.product,
    metadata: price.metadata,
  };
}

function snapshotItems(subscription: Stripe.Subscription): object {
  return JSON.parse(JSON.stringify(subscription.items)) as object;
}

function billingDescription(invoice: Stripe.Invoice): string {
  return invoice.billing_reason === "subscription_create" ? "Subscription creation" : invoice.billing_reason === "subscription_update" ? "Subscription update" : "Subscription cycle";
}
