/**
 * The emulator's whole state: every object by id, the event log, idempotent responses, and a
 * per-customer clock. Objects are kept as the `stripe` package's types and mutated in place;
 * events carry a JSON snapshot of the object at the moment they were emitted, as Stripe's do.
 * Every keyed collection is a `TrackedMap`, so that a state file (persistence.ts) can save
 * only the entries a request may have changed instead of the whole state.
 */
import { randomBytes } from "node:crypto";
import Stripe from "stripe";

/**
 * How a test card behaves when charged: `fails_off_session` pays while the customer is present
 * (Checkout) and is declined for every later charge; `requires_authentication` pays once the
 * customer authenticates (Checkout, the authentication page) and fails every off-session
 * charge with `authentication_required`.
 */
export type CardBehavior = "succeeds" | "declines" | "fails_off_session" | "requires_authentication";

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
  /**
   * Unix milliseconds at which the next delivery attempt is due; null once the event was
   * delivered, when delivery gave up, or when no endpoint was configured at emission. Kept in
   * the state so that a restart resumes the retry schedule.
   */
  nextAttemptAt: number | null;
}

/** What a Checkout Session will buy, kept beside the public object. */
export interface CheckoutPlan {
  price: string;
  quantity: number;
  trialPeriodDays: number | null;
  subscriptionMetadata: Stripe.Metadata;
  paymentIntentMetadata: Stripe.Metadata;
  /** `payment_intent_data[setup_future_usage]`: the card is saved to the customer when paid (payment mode). */
  setupFutureUsage?: "off_session" | "on_session" | null;
  /** `saved_payment_method_options[payment_method_save]=enabled`: the page offers to save the card. */
  offerToSaveCard?: boolean;
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

/**
 * One line of a subscription invoice before it is built: a period at a price, or a proration.
 * Kept here because prorations made with `create_prorations` wait in the store for the next
 * renewal invoice.
 */
export interface LineDraft {
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

/**
 * What may have changed since the state was last saved: the keys of every collection read or
 * written (an object read may be mutated in place afterwards), and events whose delivery log
 * changed. Off (and free) unless a state file is kept.
 */
export class ChangeTracker {
  enabled = false;
  /** Keys read or written, per collection. */
  readonly touched = new Map<string, Set<string>>();
  /** Collections iterated as a whole: any of their entries may have changed. */
  readonly touchedWhole = new Set<string>();
  /** Events whose delivery attempts or schedule changed. */
  readonly deliveries = new Set<StoredEvent>();

  touch(collection: string, key: string): void {
    if (!this.enabled || this.touchedWhole.has(collection)) return;
    let keys = this.touched.get(collection);
    if (!keys) this.touched.set(collection, (keys = new Set()));
    keys.add(key);
  }

  touchWhole(collection: string): void {
    if (this.enabled) this.touchedWhole.add(collection);
  }

  clear(): void {
    this.touched.clear();
    this.touchedWhole.clear();
    this.deliveries.clear();
  }
}

/**
 * A Map that tells the tracker which entries were handed out or replaced. Reads count because
 * the emulator mutates stored objects in place: whatever was read may have been changed.
 */
export class TrackedMap<V> extends Map<string, V> {
  constructor(
    readonly collection: string,
    private readonly tracker: ChangeTracker,
    private readonly owners: WeakMap<object, { collection: string; key: string }>,
  ) {
    super();
  }

  override get(key: string): V | undefined {
    this.tracker.touch(this.collection, key);
    return super.get(key);
  }

  /** A read the tracker does not see (for the state file itself). */
  peek(key: string): V | undefined {
    return super.get(key);
  }

  override set(key: string, value: V): this {
    this.tracker.touch(this.collection, key);
    if (typeof value === "object" && value !== null) this.owners.set(value, { collection: this.collection, key });
    return super.set(key, value);
  }

  override delete(key: string): boolean {
    this.tracker.touch(this.collection, key);
    return super.delete(key);
  }

  override clear(): void {
    this.tracker.touchWhole(this.collection);
    super.clear();
  }

  override values(): MapIterator<V> {
    this.tracker.touchWhole(this.collection);
    return super.values();
  }

  override entries(): MapIterator<[string, V]> {
    this.tracker.touchWhole(this.collection);
    return super.entries();
  }

  override [Symbol.iterator](): MapIterator<[string, V]> {
    return this.entries();
  }

  override forEach(callback: (value: V, key: string, map: Map<string, V>) => void, thisArg?: unknown): void {
    this.tracker.touchWhole(this.collection);
    super.forEach(callback, thisArg);
  }

  /** Every entry in insertion order, unseen by the tracker (for the state file itself). */
  *untrackedEntries(): Generator<[string, V]> {
    yield* super.entries();
  }
}

export class Store {
  /** Change tracking for the state file; declared before the collections that report to it. */
  readonly changes = new ChangeTracker();
  /** Which collection and key holds each stored object, so the state file can keep shared references shared. */
  readonly owners = new WeakMap<object, { collection: string; key: string }>();
  private readonly collectionsByName = new Map<string, TrackedMap<unknown>>();

  readonly customers = this.collection<Stripe.Customer>("customers");
  readonly products = this.collection<Stripe.Product>("products");
  readonly prices = this.collection<Stripe.Price>("prices");
  readonly checkoutSessions = this.collection<Stripe.Checkout.Session>("checkoutSessions");
  readonly checkoutPlans = this.collection<CheckoutPlan>("checkoutPlans");
  readonly portalSessions = this.collection<Stripe.BillingPortal.Session>("portalSessions");
  readonly portalConfigurations = this.collection<Stripe.BillingPortal.Configuration>("portalConfigurations");
  readonly subscriptions = this.collection<Stripe.Subscription>("subscriptions");
  readonly subscriptionStates = this.collection<SubscriptionState>("subscriptionStates");
  readonly subscriptionSchedules = this.collection<Stripe.SubscriptionSchedule>("subscriptionSchedules");
  readonly invoices = this.collection<Stripe.Invoice>("invoices");
  readonly paymentIntents = this.collection<Stripe.PaymentIntent>("paymentIntents");
  readonly charges = this.collection<Stripe.Charge>("charges");
  readonly refunds = this.collection<Stripe.Refund>("refunds");
  readonly paymentMethods = this.collection<Stripe.PaymentMethod>("paymentMethods");
  readonly pendingProrations = this.collection<LineDraft[]>("pendingProrations");
  readonly cardBehaviors = this.collection<CardBehavior>("cardBehaviors");
  readonly idempotency = this.collection<IdempotentResponse>("idempotency");
  /** Seconds each customer's clock runs ahead of real time (the test clock). */
  readonly clockOffsets = this.collection<number>("clockOffsets");
  /** Every event in emission order; append-only (only the delivery fields change later). */
  readonly events: StoredEvent[] = [];
  /** An index over `events`, not state of its own. */
  readonly eventsById = new Map<string, StoredEvent>();
  /** The API request being handled, named on the events it causes (as Stripe's `request`). */
  currentRequest: Stripe.Event.Request | null = null;
  invoiceSequence = 0;
  private readonly listeners: Array<(stored: StoredEvent) => void> = [];

  /** Declares a keyed collection of the state; everything declared here is saved. */
  private collection<V>(name: string): TrackedMap<V> {
    const map = new TrackedMap<V>(name, this.changes, this.owners);
    this.collectionsByName.set(name, map as TrackedMap<unknown>);
    return map;
  }

  /**
   * Every keyed collection by name. Throws if a Map was added to the Store without
   * `collection(...)`: it would silently be missing from the state file.
   */
  collections(): ReadonlyMap<string, TrackedMap<unknown>> {
    for (const [name, value] of Object.entries(this)) {
      if (value instanceof Map && !(value instanceof TrackedMap) && value !== this.eventsById && name !== "collectionsByName") {
        throw new Error(`Store.${name} is a plain Map: declare it with collection("${name}") so the state file saves it.`);
      }
    }
    return this.collectionsByName;
  }

  /** Notes that an event's delivery attempts or schedule changed (the webhook dispatcher calls this). */
  deliveryChanged(stored: StoredEvent): void {
    if (this.changes.enabled) this.changes.deliveries.add(stored);
  }

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
    const stored: StoredEvent = { event, deliveries: [], nextAttemptAt: null };
    this.events.push(stored);
    this.eventsById.set(event.id, stored);
    for (const listener of this.listeners) listener(stored);
    return event;
  }
}
