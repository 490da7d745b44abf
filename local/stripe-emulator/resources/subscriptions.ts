/**
 * Subscriptions: started by a paid Checkout Session, changed (price, quantity, prorations,
 * cancellation, default card), renewed at each period end, and dunned when a renewal payment
 * fails (retries, then cancel or unpaid). Retrieve, list, search, update, cancel. Every step
 * emits the events Stripe emits for it, in Stripe's order, on the customer's clock.
 */
import type Stripe from "stripe";
import { z } from "zod";
import { type Api, listOf, matchesSearch, mergeMetadata, metadataParam, parseSearchQuery, searchParams, searchResult } from "../api.ts";
import { cardDeclined, invalidRequest, resourceMissing, unsupported } from "../errors.ts";
import { bool, expand, int, oneOf, pagination, parseParams, str } from "../form.ts";
import { buildSubscription, buildSubscriptionItem } from "../objects.ts";
import { type LineDraft, newId, type SubscriptionState } from "../store.ts";
import { idOf } from "./customers.ts";
import type { Resources } from "./index.ts";

/** What happens after the last failed retry of a renewal invoice (Stripe's subscription setting). */
export type DunningFinalAction = "cancel" | "unpaid";

export interface DunningOptions {
  /** Days after the first failure at which the invoice is retried (Stripe's default schedule is similar). */
  retryDays: number[];
  finalAction: DunningFinalAction;
}

export type ProrationBehavior = "create_prorations" | "always_invoice" | "none";

/** `allow_incomplete` (the default here): the change stands and an unpaid invoice is dunned; `error_if_incomplete`: paid or refused. */
export type PaymentBehavior = "allow_incomplete" | "error_if_incomplete";

export const day = 86_400;

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

function sameInterval(a: Stripe.Price, b: Stripe.Price): boolean {
  return a.recurring?.interval === b.recurring?.interval && a.recurring?.interval_count === b.recurring?.interval_count;
}

function snapshotItems(subscription: Stripe.Subscription): object {
  return JSON.parse(JSON.stringify(subscription.items)) as object;
}

export class Subscriptions {
  constructor(
    private readonly r: Resources,
    readonly dunning: DunningOptions,
  ) {}

  get(id: string, param = "id"): Stripe.Subscription {
    const subscription = this.r.store.subscriptions.get(id);
    if (!subscription) throw resourceMissing("subscription", id, param);
    return subscription;
  }

  /** The dunning state kept beside the public object. */
  state(id: string): SubscriptionState {
    let state = this.r.store.subscriptionStates.get(id);
    if (!state) {
      state = { failedAttempts: 0, nextRetryAt: null, trialWillEndSent: false, openInvoice: null };
      this.r.store.subscriptionStates.set(id, state);
    }
    return state;
  }

  /** The subscription's one item. */
  item(subscription: Stripe.Subscription): Stripe.SubscriptionItem {
    const item = subscription.items.data[0];
    if (!item) throw invalidRequest(`Subscription ${subscription.id} has no items.`);
    return item;
  }

  private customerIdOf(subscription: Stripe.Subscription): string {
    return idOf(subscription.customer) ?? "";
  }

  emitUpdated(subscription: Stripe.Subscription, previous: object): void {
    this.r.store.emit("customer.subscription.updated", subscription, { customer: this.customerIdOf(subscription), previousAttributes: previous });
  }

  private assertLive(subscription: Stripe.Subscription): void {
    if (subscription.status === "canceled" || subscription.status === "incomplete_expired") {
      throw invalidRequest("A canceled subscription can only update its cancellation_details and metadata.");
    }
  }

  /**
   * A subscription for a Checkout Session being paid, stored with no event yet: Stripe emits
   * `checkout.session.completed` before `customer.subscription.created`.
   */
  createForCheckout(args: {
    customer: Stripe.Customer;
    price: Stripe.Price;
    quantity: number;
    trialPeriodDays: number | null;
    metadata: Stripe.Metadata;
    paymentMethod: Stripe.PaymentMethod;
  }): Stripe.Subscription {
    const { store } = this.r;
    const { customer, price, quantity } = args;
    const recurring = price.recurring;
    if (!recurring) throw invalidRequest("A subscription Checkout Session needs a recurring price.", { param: "line_items[0][price]" });
    const now = store.now(customer.id);
    const trialEnd = args.trialPeriodDays ? now + args.trialPeriodDays * day : null;
    const periodEnd = trialEnd ?? addInterval(now, recurring.interval, recurring.interval_count);
    const subscriptionId = newId("sub", 24);
    const item = buildSubscriptionItem({ id: newId("si"), created: now, subscription: subscriptionId, price, quantity, periodStart: now, periodEnd });
    const subscription = buildSubscription({
      id: subscriptionId,
      created: now,
      customer: customer.id,
      currency: price.currency,
      item,
      status: trialEnd ? "trialing" : "incomplete",
      metadata: { ...args.metadata },
      defaultPaymentMethod: args.paymentMethod.id,
      trialStart: trialEnd ? now : null,
      trialEnd,
      billingCycleAnchor: trialEnd ?? now,
    });
    store.subscriptions.set(subscriptionId, subscription);
    this.state(subscriptionId);
    return subscription;
  }

  /**
   * Announces a new subscription (`customer.subscription.created`) and creates its first
   * invoice (zero during a trial), finalized, not yet collected.
   */
  startFirstPeriod(subscription: Stripe.Subscription): Stripe.Invoice {
    this.r.store.emit("customer.subscription.created", subscription, { customer: this.customerIdOf(subscription) });
    const item = this.item(subscription);
    const price = item.price;
    const quantity = item.quantity ?? 1;
    const trial = subscription.status === "trialing";
    const amount = trial ? 0 : (price.unit_amount ?? 0) * quantity;
    return this.r.invoices.createForSubscription(subscription, "subscription_create", [
      { price, quantity, amount, description: this.r.catalog.lineDescription(price, quantity, trial), start: item.current_period_start, end: item.current_period_end, proration: false },
    ]);
  }

  /** After the first invoice of a Checkout subscription was paid: `incomplete` -> `active`. */
  activate(subscription: Stripe.Subscription): void {
    if (subscription.status !== "incomplete") return;
    subscription.status = "active";
    this.emitUpdated(subscription, { status: "incomplete" });
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
    const now = this.r.store.now(this.customerIdOf(subscription));
    subscription.cancel_at_period_end = cancel;
    subscription.cancel_at = cancel ? this.item(subscription).current_period_end : null;
    subscription.canceled_at = cancel ? now : null;
    subscription.cancellation_details = { comment: null, feedback: null, feedback_option: null, reason: cancel ? reason : null };
    this.emitUpdated(subscription, previous);
  }

  /** Cancels immediately: status `canceled`, `customer.subscription.deleted`. */
  cancelNow(subscription: Stripe.Subscription, reason: Stripe.Subscription.CancellationDetails.Reason = "cancellation_requested"): Stripe.Subscription {
    this.assertLive(subscription);
    const now = this.r.store.now(this.customerIdOf(subscription));
    subscription.status = "canceled";
    subscription.canceled_at = subscription.canceled_at ?? now;
    subscription.ended_at = now;
    subscription.cancellation_details = { comment: null, feedback: null, feedback_option: null, reason };
    const state = this.state(subscription.id);
    state.nextRetryAt = null;
    this.r.store.emit("customer.subscription.deleted", subscription, { customer: this.customerIdOf(subscription) });
    return subscription;
  }

  /**
   * The proration lines a price change makes at `at`: the unused time of the current price
   * credited and, when the interval stays, the new price's remaining time charged. None with
   * `proration_behavior: none` or during a trial.
   */
  private prorations(subscription: Stripe.Subscription, newPrice: Stripe.Price, newQuantity: number, prorationBehavior: ProrationBehavior, at: number): LineDraft[] {
    if (prorationBehavior === "none" || subscription.status === "trialing") return [];
    const item = this.item(subscription);
    const oldPrice = item.price;
    const oldQuantity = item.quantity ?? 1;
    const start = item.current_period_start;
    const end = item.current_period_end;
    const remaining = Math.max(0, end - at) / Math.max(1, end - start);
    const catalog = this.r.catalog;
    return [
      { price: oldPrice, quantity: oldQuantity, amount: -Math.round((oldPrice.unit_amount ?? 0) * oldQuantity * remaining), description: `Unused time on ${catalog.priceLabel(oldPrice, oldQuantity)}`, start: at, end, proration: true },
      ...(sameInterval(oldPrice, newPrice)
        ? [{ price: newPrice, quantity: newQuantity, amount: Math.round((newPrice.unit_amount ?? 0) * newQuantity * remaining), description: `Remaining time on ${catalog.priceLabel(newPrice, newQuantity)}`, start: at, end, proration: true }]
        : []),
    ];
  }

  /** The line of a full period of `price` from `start` to `end`. */
  private periodLine(price: Stripe.Price, quantity: number, start: number, end: number): LineDraft {
    return { price, quantity, amount: (price.unit_amount ?? 0) * quantity, description: this.r.catalog.lineDescription(price, quantity, false), start, end, proration: false };
  }

  /** The next period a renewal starts, for the subscription's billing cycle and `price`'s interval. */
  private nextPeriod(subscription: Stripe.Subscription, price: Stripe.Price): { start: number; end: number } {
    const recurring = price.recurring;
    if (!recurring) throw invalidRequest("The price specified is not recurring; subscriptions need a recurring price.", { param: "items[0][price]" });
    const start = this.item(subscription).current_period_end;
    return { start, end: nextPeriodEnd(subscription.billing_cycle_anchor, start, recurring.interval, recurring.interval_count) };
  }

  /** Prorations waiting for the next invoice, taken off the subscription (they go on an invoice now). */
  private takePendingProrations(subscription: Stripe.Subscription): LineDraft[] {
    const pending = this.r.store.pendingProrations.get(subscription.id) ?? [];
    if (pending.length) this.r.store.pendingProrations.delete(subscription.id);
    return pending;
  }

  private checkNewPrice(subscription: Stripe.Subscription, newPrice: Stripe.Price): void {
    if (!newPrice.recurring) throw invalidRequest("The price specified is not recurring; subscriptions need a recurring price.", { param: "items[0][price]" });
    if (newPrice.currency !== subscription.currency) throw invalidRequest("The price's currency differs from the subscription's.", { param: "items[0][price]" });
  }

  /** When prorations are computed: `proration_date` (kept inside the current period), else now. */
  private prorationTime(subscription: Stripe.Subscription, prorationDate: number | undefined): number {
    const now = this.r.store.now(this.customerIdOf(subscription));
    if (prorationDate === undefined) return now;
    const item = this.item(subscription);
    return Math.min(Math.max(prorationDate, item.current_period_start), item.current_period_end);
  }

  /**
   * Switches the subscription to another recurring price. Same interval: the period stays and
   * (`create_prorations`, the default) the unused time is credited and the new price's remaining
   * time charged on the next invoice, or now with `always_invoice`; `none` changes the price
   * only. A different interval resets the billing cycle to now and invoices immediately, as
   * Stripe does. An invoice made now takes the prorations still waiting too.
   *
   * With `payment_behavior: error_if_incomplete` an invoice made now is paid before anything
   * changes: a declined card voids it and answers 402, and the subscription stays as it was.
   */
  changePrice(
    subscription: Stripe.Subscription,
    newPrice: Stripe.Price,
    prorationBehavior: ProrationBehavior,
    quantity?: number,
    prorationDate?: number,
    paymentBehavior: PaymentBehavior = "allow_incomplete",
  ): void {
    this.assertLive(subscription);
    this.checkNewPrice(subscription, newPrice);
    const item = this.item(subscription);
    const oldPrice = item.price;
    const newQuantity = quantity ?? item.quantity ?? 1;
    const now = this.r.store.now(this.customerIdOf(subscription));
    const previous = { items: snapshotItems(subscription) };
    const keepsPeriod = sameInterval(oldPrice, newPrice) || subscription.status === "trialing";
    const prorations = this.prorations(subscription, newPrice, newQuantity, prorationBehavior, this.prorationTime(subscription, prorationDate));
    const recurring = newPrice.recurring as Stripe.Price.Recurring;
    const newEnd = keepsPeriod ? item.current_period_end : addInterval(now, recurring.interval, recurring.interval_count);
    const invoicedNow = keepsPeriod
      ? prorations.length > 0 && prorationBehavior === "always_invoice"
      : true;
    const lines = keepsPeriod ? prorations : [...prorations, this.periodLine(newPrice, newQuantity, now, newEnd)];
    // Paid first when the change must not happen unpaid; otherwise invoiced after the change, as before.
    const paidFirst = invoicedNow && paymentBehavior === "error_if_incomplete" ? this.payOrRefuse(subscription, lines) : null;
    item.price = newPrice;
    item.plan = { ...item.plan, ...planOf(newPrice) };
    item.quantity = newQuantity;
    if (!keepsPeriod) {
      // A new interval: the billing cycle restarts now.
      item.current_period_start = now;
      item.current_period_end = newEnd;
      subscription.billing_cycle_anchor = now;
      if (subscription.cancel_at_period_end) subscription.cancel_at = newEnd;
    }
    this.emitUpdated(subscription, previous);
    if (paidFirst) return;
    if (keepsPeriod && prorations.length > 0 && prorationBehavior === "create_prorations") {
      const pending = this.r.store.pendingProrations.get(subscription.id) ?? [];
      pending.push(...prorations);
      this.r.store.pendingProrations.set(subscription.id, pending);
      return;
    }
    if (invoicedNow) this.invoiceNow(subscription, "subscription_update", lines);
  }

  /**
   * Invoices `lines` (with the prorations waiting) and collects them now; a declined card
   * voids the invoice, puts everything back and answers 402 `card_declined`, as Stripe does
   * for `error_if_incomplete`.
   */
  private payOrRefuse(subscription: Stripe.Subscription, lines: LineDraft[]): Stripe.Invoice {
    const pending = this.r.store.pendingProrations.get(subscription.id) ?? [];
    const latestInvoice = subscription.latest_invoice;
    const invoice = this.r.invoices.createForSubscription(subscription, "subscription_update", [...this.takePendingProrations(subscription), ...lines]);
    if (this.r.invoices.collect(invoice, subscription, true)) return invoice;
    this.r.invoices.voidUnpaid(invoice);
    if (pending.length) this.r.store.pendingProrations.set(subscription.id, pending);
    subscription.latest_invoice = latestInvoice;
    const intent = invoice.payments?.data[0]?.payment.payment_intent;
    throw cardDeclined("generic_decline", "Your card was declined.", { ...(intent ? { payment_intent: intent } : {}) });
  }

  private invoiceNow(subscription: Stripe.Subscription, reason: Stripe.Invoice.BillingReason, lines: LineDraft[]): void {
    const invoice = this.r.invoices.createForSubscription(subscription, reason, [...this.takePendingProrations(subscription), ...lines]);
    const paid = this.r.invoices.collect(invoice, subscription, true);
    if (!paid) this.renewalFailed(subscription, invoice);
  }

  /**
   * The lines of the invoice the subscription will get next, with an optional price change
   * previewed the way `changePrice` would make it (`invoices.createPreview`): the renewal
   * invoice (waiting prorations, plus this change's with `create_prorations`, then the next
   * period), or the invoice the change would make at once (`always_invoice`, or a new interval).
   */
  previewLines(
    subscription: Stripe.Subscription,
    change: { price?: Stripe.Price; quantity?: number; prorationBehavior: ProrationBehavior; prorationDate?: number } | null,
  ): { lines: LineDraft[]; immediate: boolean } {
    this.assertLive(subscription);
    if (subscription.cancel_at_period_end && !change) {
      throw invalidRequest(`No upcoming invoices for subscription ${subscription.id}: it cancels at the end of its period.`, { code: "invoice_upcoming_none" });
    }
    const item = this.item(subscription);
    const pending = [...(this.r.store.pendingProrations.get(subscription.id) ?? [])];
    const newPrice = change?.price ?? item.price;
    const newQuantity = change?.quantity ?? item.quantity ?? 1;
    if (change) this.checkNewPrice(subscription, newPrice);
    const prorations = change ? this.prorations(subscription, newPrice, newQuantity, change.prorationBehavior, this.prorationTime(subscription, change.prorationDate)) : [];
    if (change && !sameInterval(item.price, newPrice) && subscription.status !== "trialing") {
      const recurring = newPrice.recurring as Stripe.Price.Recurring;
      const now = this.r.store.now(this.customerIdOf(subscription));
      return { lines: [...pending, ...prorations, this.periodLine(newPrice, newQuantity, now, addInterval(now, recurring.interval, recurring.interval_count))], immediate: true };
    }
    if (change?.prorationBehavior === "always_invoice" && prorations.length) return { lines: [...pending, ...prorations], immediate: true };
    // With no change asked for, a schedule's next phase decides the renewal's price (and, for
    // a new interval, its period), as the renewal will.
    const phase = change ? null : this.r.subscriptionSchedules.nextPhase(subscription);
    if (phase) {
      const recurring = phase.price.recurring as Stripe.Price.Recurring;
      const start = item.current_period_end;
      const end = sameInterval(item.price, phase.price) ? this.nextPeriod(subscription, phase.price).end : addInterval(start, recurring.interval, recurring.interval_count);
      return { lines: [...pending, this.periodLine(phase.price, phase.quantity, start, end)], immediate: false };
    }
    const next = this.nextPeriod(subscription, newPrice);
    return { lines: [...pending, ...prorations, this.periodLine(newPrice, newQuantity, next.start, next.end)], immediate: false };
  }

  /** The period end: cancel if asked to, otherwise start the next period and bill it. */
  renew(subscription: Stripe.Subscription): void {
    if (subscription.cancel_at_period_end) {
      this.cancelNow(subscription, "cancellation_requested");
      return;
    }
    const item = this.item(subscription);
    const previous: Record<string, unknown> = { items: snapshotItems(subscription) };
    // A schedule's next phase starting here: the renewal is at its price (no prorations at a
    // period's end); a new interval starts a new billing cycle here.
    const phase = this.r.subscriptionSchedules.nextPhase(subscription);
    if (phase) {
      this.checkNewPrice(subscription, phase.price);
      if (!sameInterval(item.price, phase.price)) subscription.billing_cycle_anchor = item.current_period_end;
      item.price = phase.price;
      item.plan = { ...item.plan, ...planOf(phase.price) };
      item.quantity = phase.quantity;
    }
    const price = item.price;
    if (!price.recurring) return;
    const { start, end } = this.nextPeriod(subscription, price);
    item.current_period_start = start;
    item.current_period_end = end;
    const wasTrialing = subscription.status === "trialing";
    if (wasTrialing) {
      previous.status = "trialing";
      subscription.status = "active";
    }
    this.emitUpdated(subscription, previous);
    if (phase) this.r.subscriptionSchedules.phaseStarted(subscription, phase.last);
    const invoice = this.r.invoices.createForSubscription(subscription, "subscription_cycle", [
      ...this.takePendingProrations(subscription),
      this.periodLine(price, item.quantity ?? 1, start, end),
    ]);
    // A previous period's invoice still open is left open (Stripe keeps retrying it on its own schedule).
    if (this.r.invoices.collect(invoice, subscription, true)) {
      if (subscription.status === "past_due" || subscription.status === "unpaid") {
        const before = subscription.status;
        subscription.status = "active";
        this.state(subscription.id).nextRetryAt = null;
        this.state(subscription.id).failedAttempts = 0;
        this.emitUpdated(subscription, { status: before });
      }
      return;
    }
    this.renewalFailed(subscription, invoice);
  }

  private renewalFailed(subscription: Stripe.Subscription, invoice: Stripe.Invoice): void {
    const customerId = this.customerIdOf(subscription);
    const state = this.state(subscription.id);
    state.failedAttempts = 1;
    state.openInvoice = invoice.id;
    const firstRetry = this.dunning.retryDays[0];
    const now = this.r.store.now(customerId);
    state.nextRetryAt = firstRetry === undefined ? null : now + firstRetry * day;
    invoice.next_payment_attempt = state.nextRetryAt;
    this.r.store.emit("invoice.payment_failed", invoice, { customer: customerId });
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
    const state = this.state(subscription.id);
    const invoiceId = state.openInvoice;
    const invoice = invoiceId ? this.r.store.invoices.get(invoiceId) : undefined;
    if (!invoice || invoice.status !== "open") {
      state.nextRetryAt = null;
      return false;
    }
    if (this.r.invoices.collect(invoice, subscription, true)) {
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
    const firstFailure = invoice.status_transitions.finalized_at ?? this.r.store.now(customerId);
    const nextDay = this.dunning.retryDays[state.failedAttempts - 1];
    state.nextRetryAt = nextDay === undefined ? null : firstFailure + nextDay * day;
    invoice.next_payment_attempt = state.nextRetryAt;
    this.r.store.emit("invoice.payment_failed", invoice, { customer: customerId });
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
    this.state(subscription.id).nextRetryAt = null;
    this.r.store.emit("customer.subscription.updated", subscription, { customer: customerId, previousAttributes: { status: before } });
  }
}

const subscriptionStatuses = ["active", "all", "canceled", "ended", "incomplete", "incomplete_expired", "past_due", "paused", "trialing", "unpaid"] as const;

export function mountSubscriptions({ route }: Api, r: Resources): void {
  const { store } = r;

  route("GET", "/v1/subscriptions/search", (raw) => {
    const p = parseParams(searchParams, raw);
    const clauses = parseSearchQuery(p.query, ["status", "customer"]);
    const found = [...store.subscriptions.values()].reverse().filter((s) => matchesSearch(s.metadata, { status: s.status, customer: s.customer }, clauses));
    return searchResult(found, "/v1/subscriptions/search", p.limit);
  });

  route("GET", "/v1/subscriptions", (raw) => {
    const p = parseParams(z.object({ ...pagination, customer: str.optional(), price: str.optional(), status: oneOf(subscriptionStatuses).optional() }).strict(), raw);
    const all = [...store.subscriptions.values()].filter((s) => {
      const statusOk =
        p.status === undefined ? s.status !== "canceled" && s.status !== "incomplete_expired"
        : p.status === "all" ? true
        : p.status === "ended" ? s.status === "canceled" || s.status === "incomplete_expired"
        : s.status === p.status;
      return statusOk && (p.customer === undefined || s.customer === p.customer) && (p.price === undefined || s.items.data.some((i) => i.price.id === p.price));
    });
    return listOf(all, "/v1/subscriptions", p);
  });

  route("GET", "/v1/subscriptions/:id", (raw, c) => {
    parseParams(z.object({ expand }).strict(), raw);
    return r.subscriptions.get(c.req.param("id") ?? "");
  });

  route("POST", "/v1/subscriptions/:id", (raw, c) => {
    const p = parseParams(
      z
        .object({
          items: z.array(z.object({ id: str.optional(), price: str.optional(), quantity: int.optional() }).strict()).max(1, { message: "Invalid items: the emulator supports one subscription item" }).optional(),
          proration_behavior: oneOf(["create_prorations", "always_invoice", "none"]).optional(),
          proration_date: int.optional(),
          cancel_at_period_end: bool.optional(),
          metadata: metadataParam,
          default_payment_method: str.optional(),
          payment_behavior: oneOf(["allow_incomplete", "error_if_incomplete"]).optional(),
          expand,
        })
        .strict(),
      raw,
    );
    const subscription = r.subscriptions.get(c.req.param("id") ?? "");
    if (subscription.status === "canceled" && (p.items || p.cancel_at_period_end !== undefined || p.default_payment_method)) {
      throw invalidRequest("A canceled subscription can only update its cancellation_details and metadata.");
    }
    if (p.metadata !== undefined) {
      const previous = { ...subscription.metadata };
      subscription.metadata = mergeMetadata(subscription.metadata, p.metadata);
      store.emit("customer.subscription.updated", subscription, { customer: String(subscription.customer), previousAttributes: { metadata: previous } });
    }
    if (p.default_payment_method) {
      const pm = r.paymentMethods.get(p.default_payment_method, "default_payment_method");
      const previous = subscription.default_payment_method;
      subscription.default_payment_method = pm.id;
      store.emit("customer.subscription.updated", subscription, { customer: String(subscription.customer), previousAttributes: { default_payment_method: previous } });
    }
    const item = p.items?.[0];
    if (item) {
      const current = subscription.items.data[0];
      if (item.id && item.id !== current?.id) throw resourceMissing("subscription item", item.id, "items[0][id]");
      if (!item.id && item.price) {
        throw unsupported("adding a second item to a subscription (pass items[0][id] to change the existing item's price)", "items[0][id]");
      }
      if (item.price || item.quantity !== undefined) {
        const price = r.catalog.price(item.price ?? current?.price.id ?? "", "items[0][price]");
        r.subscriptions.changePrice(subscription, price, p.proration_behavior ?? "create_prorations", item.quantity, p.proration_date, p.payment_behavior);
      }
    }
    if (p.cancel_at_period_end !== undefined) {
      if (subscription.schedule) {
        throw invalidRequest(`The subscription is managed by the subscription schedule \`${String(subscription.schedule)}\`, and updating any cancelation behavior directly is not allowed. Please update the schedule instead.`, { param: "cancel_at_period_end" });
      }
      r.subscriptions.setCancelAtPeriodEnd(subscription, p.cancel_at_period_end);
    }
    return subscription;
  });

  route("DELETE", "/v1/subscriptions/:id", (raw, c) => {
    const p = parseParams(
      z
        .object({
          invoice_now: z.literal("false").optional(),
          prorate: z.literal("false").optional(),
          cancellation_details: z.object({ comment: z.string().optional(), feedback: z.string().optional() }).strict().optional(),
          expand,
        })
        .strict(),
      raw,
    );
    const subscription = r.subscriptions.get(c.req.param("id") ?? "");
    if (subscription.status === "canceled") {
      throw invalidRequest(`No such subscription: '${subscription.id}'; it has already been canceled.`, { code: "resource_missing", param: "id" });
    }
    r.subscriptions.cancelNow(subscription);
    if (p.cancellation_details?.comment) subscription.cancellation_details = { ...(subscription.cancellation_details ?? { feedback: null, feedback_option: null, reason: null }), comment: p.cancellation_details.comment };
    return subscription;
  });

  route("POST", "/v1/subscriptions/:id/resume", () => {
    throw unsupported("pausing and resuming subscriptions (to undo a scheduled cancellation, update with cancel_at_period_end=false)");
  });
}
