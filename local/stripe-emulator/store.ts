/**
 * The emulator's whole state: every object by id, the event log, idempotent responses, and a
 * per-customer clock. Objects are kept as the `stripe` package's types and mutated in place;
 * events carry a JSON snapshot of the object at the moment they were emitted, as Stripe's do.
 */
import { randomBytes } from "node:crypto";
import Stripe from "stripe";

/** How a test card behaves when charged. */
export type CardBehavior = "succeeds" | "declines" | "fails_off_session";

/** One attempt to deliver an event to the webhook endpoint. */
export interface DeliveryAttempt {
  attempt: number;
  /** Unix milliseconds of the attempt. */
  at: number;
  /** HTTP status, or null when the endpoint could not be reached. */
  status: number | null;
  error: string | null;
  duplicate: boolean;
}

export interface StoredEvent {
  event: Stripe.EventBase;
  deliveries: DeliveryAttempt[];
}

/** What a Checkout Session will buy, kept beside the public object. */
export interface CheckoutPlan {
  price: string;
  quantity: number;
  trialPeriodDays: number | null;
  subscriptionMetadata: Stripe.Metadata;
  paymentIntentMetadata: Stripe.Metadata;
}

/** Dunning state of a subscription, kept beside the public object. */
export interface SubscriptionState {
  /** Renewal payment attempts that failed for the currently open invoice. */
  failedAttempts: number;
  /** Unix seconds of the next retry of the open invoice, null when nothing is open. */
  nextRetryAt: number | null;
  trialWillEndSent: boolean;
  /** The renewal invoice being retried. */
  openInvoice: string | null;
}

/** A proration waiting for the next renewal invoice (`proration_behavior: create_prorations`). */
export interface PendingProration {
  price: Stripe.Price;
  quantity: number;
  amount: number;
  description: string;
  start: number;
  end: number;
  proration: boolean;
}

export interface IdempotentResponse {
  fingerprint: string;
  status: number;
  body: string;
}

const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/** A Stripe-looking id: `cus_` + 14 random base62 characters (24 for sessions). */
export function newId(prefix: string, length = 14): string {
  const bytes = randomBytes(length);
  let out = "";
  for (const byte of bytes) out += alphabet[byte % alphabet.length];
  return `${prefix}_${out}`;
}

/** A deep JSON copy: what a webhook payload or API response would contain. */
export function snapshot<T>(value: T): object {
  return JSON.parse(JSON.stringify(value)) as object;
}

export class Store {
  readonly customers = new Map<string, Stripe.Customer>();
  readonly products = new Map<string, Stripe.Product>();
  readonly prices = new Map<string, Stripe.Price>();
  readonly checkoutSessions = new Map<string, Stripe.Checkout.Session>();
  readonly checkoutPlans = new Map<string, CheckoutPlan>();
  readonly portalSessions = new Map<string, Stripe.BillingPortal.Session>();
  readonly subscriptions = new Map<string, Stripe.Subscription>();
  readonly subscriptionStates = new Map<string, SubscriptionState>();
  readonly invoices = new Map<string, Stripe.Invoice>();
  readonly paymentIntents = new Map<string, Stripe.PaymentIntent>();
  readonly charges = new Map<string, Stripe.Charge>();
  readonly refunds = new Map<string, Stripe.Refund>();
  readonly paymentMethods = new Map<string, Stripe.PaymentMethod>();
  readonly pendingProrations = new Map<string, PendingProration[]>();
  readonly cardBehaviors = new Map<string, CardBehavior>();
  readonly events: StoredEvent[] = [];
  readonly eventsById = new Map<string, StoredEvent>();
  readonly idempotency = new Map<string, IdempotentResponse>();
  /** Seconds each customer's clock runs ahead of real time (the test clock). */
  readonly clockOffsets = new Map<string, number>();
  /** The API request being handled, named on the events it causes (as Stripe's `request`). */
  currentRequest: Stripe.Event.Request | null = null;
  private invoiceSequence = 0;
  private readonly listeners: Array<(stored: StoredEvent) => void> = [];

  /** Unix seconds now, on the customer's clock when one is given. */
  now(customer?: string | null): number {
    const real = Math.floor(Date.now() / 1000);
    return real + (customer ? (this.clockOffsets.get(customer) ?? 0) : 0);
  }

  /** Moves a customer's clock forward to `to` (never backwards). */
  advanceClock(customer: string, to: number): void {
    const current = this.now(customer);
    if (to > current) this.clockOffsets.set(customer, (this.clockOffsets.get(customer) ?? 0) + (to - current));
  }

  nextInvoiceNumber(customer: Stripe.Customer): string {
    this.invoiceSequence += 1;
    const sequence = customer.next_invoice_sequence ?? 1;
    customer.next_invoice_sequence = sequence + 1;
    return `${customer.invoice_prefix ?? "EMU"}-${String(sequence).padStart(4, "0")}`;
  }

  onEvent(listener: (stored: StoredEvent) => void): void {
    this.listeners.push(listener);
  }

  /** Records an event with a snapshot of `object` and hands it to the webhook dispatcher. */
  emit(
    type: Stripe.Event.Type,
    object: object,
    options: { customer?: string | null; previousAttributes?: object; request?: Stripe.Event.Request | null } = {},
  ): Stripe.EventBase {
    const event: Stripe.EventBase = {
      id: newId("evt", 24),
      object: "event",
      api_version: Stripe.API_VERSION,
      created: this.now(options.customer),
      data: options.previousAttributes
        ? { object: snapshot(object), previous_attributes: snapshot(options.previousAttributes) }
        : { object: snapshot(object) },
      livemode: false,
      pending_webhooks: 0,
      request: options.request ?? this.currentRequest ?? { id: null, idempotency_key: null },
      type,
    };
    const stored: StoredEvent = { event, deliveries: [] };
    this.events.push(stored);
    this.eventsById.set(event.id, stored);
    for (const listener of this.listeners) listener(stored);
    return event;
  }
}
