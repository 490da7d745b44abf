/**
 * Subscription schedules: a change held for a later phase of a subscription. Create (from an
 * existing subscription), retrieve, update (phases with items, start and end dates), release
 * and cancel, with `subscription.schedule` set and cleared and the events
 * `subscription_schedule.created|updated|released|canceled`. The emulator changes phases at
 * the subscription's period ends only (what a plan change held to the end of the period
 * needs); a phase boundary anywhere else is refused rather than run at the wrong time. At the
 * boundary the renewal takes the next phase's price (subscriptions.ts); once the last phase
 * has started the schedule releases the subscription.
 */
import type Stripe from "stripe";
import { z } from "zod";
import type { Api } from "../api.ts";
import { mergeMetadata, metadataParam } from "../api.ts";
import { invalidRequest, resourceMissing } from "../errors.ts";
import { expand, int, oneOf, parseParams, str } from "../form.ts";
import { planFromPrice } from "../objects.ts";
import { newId } from "../store.ts";
import { idOf } from "./customers.ts";
import type { Resources } from "./index.ts";
import { addInterval } from "./subscriptions.ts";

const prorationBehavior = oneOf(["create_prorations", "always_invoice", "none"]);

const phaseParams = z
  .object({
    items: z.array(z.object({ price: str, quantity: int.optional() }).strict()).min(1).max(1, { message: "Invalid items: the emulator supports one item per phase" }),
    start_date: z.union([int, z.literal("now")]).optional(),
    end_date: z.union([int, z.literal("now")]).optional(),
    proration_behavior: prorationBehavior.optional(),
    metadata: metadataParam,
  })
  .strict();

/** One phase as the emulator keeps it: Stripe's shape, with the fields it has no use for at their defaults. */
function buildPhase(fields: { price: Stripe.Price; quantity: number; start: number; end: number; prorationBehavior: Stripe.SubscriptionSchedule.Phase.ProrationBehavior; metadata: Stripe.Metadata }): Stripe.SubscriptionSchedule.Phase {
  return {
    add_invoice_items: [],
    application_fee_percent: null,
    billing_cycle_anchor: null,
    billing_thresholds: null,
    collection_method: null,
    currency: fields.price.currency,
    default_payment_method: null,
    default_tax_rates: [],
    description: null,
    discounts: [],
    end_date: fields.end,
    invoice_settings: null,
    items: [{ billing_thresholds: null, discounts: [], metadata: {}, plan: planFromPrice(fields.price).id, price: fields.price.id, quantity: fields.quantity, tax_rates: [] }],
    metadata: fields.metadata,
    on_behalf_of: null,
    proration_behavior: fields.prorationBehavior,
    start_date: fields.start,
    transfer_data: null,
    trial_end: null,
  } as unknown as Stripe.SubscriptionSchedule.Phase;
}

export class SubscriptionSchedules {
  constructor(private readonly r: Resources) {}

  get(id: string, param = "id"): Stripe.SubscriptionSchedule {
    const found = this.r.store.subscriptionSchedules.get(id);
    if (!found) throw resourceMissing("subscription_schedule", id, param);
    return found;
  }

  /** The schedule managing a subscription now, if any. */
  of(subscription: Stripe.Subscription): Stripe.SubscriptionSchedule | null {
    const id = idOf(subscription.schedule as string | null);
    return id ? (this.r.store.subscriptionSchedules.get(id) ?? null) : null;
  }

  private emit(type: Stripe.Event.Type, schedule: Stripe.SubscriptionSchedule, previous?: object): void {
    this.r.store.emit(type, schedule, { customer: idOf(schedule.customer as string), ...(previous ? { previousAttributes: previous } : {}) });
  }

  private setCurrentPhase(schedule: Stripe.SubscriptionSchedule, now: number): void {
    const phase = schedule.phases.find((p) => p.start_date <= now && now < p.end_date) ?? null;
    schedule.current_phase = phase ? { start_date: phase.start_date, end_date: phase.end_date } : null;
  }

  /** A schedule taking over a live subscription as it is: one phase, its current period. */
  createFromSubscription(subscription: Stripe.Subscription): Stripe.SubscriptionSchedule {
    const subscriptions = this.r.subscriptions;
    if (subscription.status === "canceled" || subscription.status === "incomplete_expired") {
      throw invalidRequest("You cannot create a subscription schedule from a canceled subscription.", { param: "from_subscription" });
    }
    if (subscription.schedule) {
      throw invalidRequest(`The subscription ${subscription.id} is already attached to a schedule (${String(subscription.schedule)}).`, { param: "from_subscription" });
    }
    const customerId = idOf(subscription.customer) ?? "";
    const item = subscriptions.item(subscription);
    const now = this.r.store.now(customerId);
    const id = newId("sub_sched", 24);
    const schedule = {
      id,
      object: "subscription_schedule",
      application: null,
      billing_mode: { flexible: null, type: "classic" },
      canceled_at: null,
      completed_at: null,
      created: now,
      current_phase: { start_date: item.current_period_start, end_date: item.current_period_end },
      customer: customerId,
      customer_account: null,
      default_settings: {
        application_fee_percent: null,
        automatic_tax: { disabled_reason: null, enabled: false, liability: null },
        billing_cycle_anchor: "automatic",
        billing_thresholds: null,
        collection_method: "charge_automatically",
        default_payment_method: null,
        description: null,
        invoice_settings: { account_tax_ids: null, days_until_due: null, issuer: { type: "self" } },
        on_behalf_of: null,
        transfer_data: null,
      },
      end_behavior: "release",
      livemode: false,
      metadata: {},
      phases: [buildPhase({ price: item.price, quantity: item.quantity ?? 1, start: item.current_period_start, end: item.current_period_end, prorationBehavior: "create_prorations", metadata: {} })],
      released_at: null,
      released_subscription: null,
      status: "active",
      subscription: subscription.id,
      test_clock: null,
    } as unknown as Stripe.SubscriptionSchedule;
    this.r.store.subscriptionSchedules.set(id, schedule);
    this.emit("subscription_schedule.created", schedule);
    subscription.schedule = id;
    subscriptions.emitUpdated(subscription, { schedule: null });
    return schedule;
  }

  /**
   * Replaces the phases. The current phase must stay as the subscription is now (same price,
   * same start) and end at the period's end; later phases follow one another.
   */
  update(schedule: Stripe.SubscriptionSchedule, p: z.output<typeof updateParams>): void {
    this.assertOpen(schedule);
    const previous = { phases: JSON.parse(JSON.stringify(schedule.phases)) as object, end_behavior: schedule.end_behavior, metadata: { ...schedule.metadata } };
    if (p.metadata !== undefined) schedule.metadata = mergeMetadata(schedule.metadata, p.metadata);
    if (p.end_behavior) schedule.end_behavior = p.end_behavior;
    if (p.phases) {
      const subscription = this.r.subscriptions.get(idOf(schedule.subscription as string) ?? "", "subscription");
      const item = this.r.subscriptions.item(subscription);
      const now = this.r.store.now(idOf(schedule.customer as string));
      let start = schedule.current_phase?.start_date ?? item.current_period_start;
      const phases: Stripe.SubscriptionSchedule.Phase[] = [];
      p.phases.forEach((phase, index) => {
        const param = `phases[${index}]`;
        const price = this.r.catalog.price(phase.items[0]!.price, `${param}[items][0][price]`);
        if (!price.recurring) throw invalidRequest("The price specified is not recurring; subscription schedules need recurring prices.", { param: `${param}[items][0][price]` });
        if (price.currency !== subscription.currency) throw invalidRequest("The price's currency differs from the subscription's.", { param: `${param}[items][0][price]` });
        const phaseStart = phase.start_date === "now" ? now : (phase.start_date ?? start);
        if (phaseStart !== start) {
          throw invalidRequest(index === 0 ? "You can not modify the start date of the current phase." : `Phase ${index}'s start_date must be the previous phase's end_date.`, { param: `${param}[start_date]` });
        }
        const end = phase.end_date === "now" ? now : (phase.end_date ?? addInterval(phaseStart, price.recurring.interval, price.recurring.interval_count));
        if (end <= phaseStart) throw invalidRequest("A phase's end_date must be after its start_date.", { param: `${param}[end_date]` });
        if (index === 0) {
          if (price.id !== item.price.id || (phase.items[0]!.quantity ?? 1) !== (item.quantity ?? 1)) {
            throw invalidRequest("The Stripe emulator changes a scheduled subscription at its period ends only: the current phase must keep the subscription's price and quantity.", { code: "parameter_unknown", param: `${param}[items]` });
          }
          if (end !== item.current_period_end) {
            throw invalidRequest("The Stripe emulator changes a scheduled subscription at its period ends only: the current phase must end at current_period_end.", { code: "parameter_unknown", param: `${param}[end_date]` });
          }
        }
        phases.push(buildPhase({ price, quantity: phase.items[0]!.quantity ?? 1, start: phaseStart, end, prorationBehavior: phase.proration_behavior ?? p.proration_behavior ?? "create_prorations", metadata: phase.metadata ?? {} }));
        start = end;
      });
      schedule.phases = phases;
      this.setCurrentPhase(schedule, now);
    }
    this.emit("subscription_schedule.updated", schedule, previous);
  }

  private assertOpen(schedule: Stripe.SubscriptionSchedule): void {
    if (schedule.status !== "active" && schedule.status !== "not_started") {
      throw invalidRequest(`You cannot update a subscription schedule that is ${schedule.status}.`);
    }
  }

  /** Lets the subscription go on by itself, as it is now. */
  release(schedule: Stripe.SubscriptionSchedule): void {
    this.assertOpen(schedule);
    const subscriptionId = idOf(schedule.subscription as string);
    const now = this.r.store.now(idOf(schedule.customer as string));
    schedule.status = "released";
    schedule.released_at = now;
    schedule.released_subscription = subscriptionId;
    schedule.subscription = null;
    schedule.current_phase = null;
    this.emit("subscription_schedule.released", schedule, { status: "active", released_at: null });
    const subscription = subscriptionId ? this.r.store.subscriptions.get(subscriptionId) : undefined;
    if (subscription && subscription.schedule === schedule.id) {
      subscription.schedule = null;
      this.r.subscriptions.emitUpdated(subscription, { schedule: schedule.id });
    }
  }

  /** Cancels the schedule and, as Stripe does, its subscription at once. */
  cancel(schedule: Stripe.SubscriptionSchedule): void {
    this.assertOpen(schedule);
    const subscriptionId = idOf(schedule.subscription as string);
    schedule.status = "canceled";
    schedule.canceled_at = this.r.store.now(idOf(schedule.customer as string));
    schedule.current_phase = null;
    this.emit("subscription_schedule.canceled", schedule, { status: "active", canceled_at: null });
    const subscription = subscriptionId ? this.r.store.subscriptions.get(subscriptionId) : undefined;
    if (subscription && subscription.status !== "canceled") this.r.subscriptions.cancelNow(subscription);
  }

  /**
   * The phase that starts where the subscription's current period ends, if its schedule has
   * one: the price the renewal (or its preview) bills.
   */
  nextPhase(subscription: Stripe.Subscription): { price: Stripe.Price; quantity: number; last: boolean } | null {
    const schedule = this.of(subscription);
    if (!schedule || schedule.status !== "active") return null;
    const boundary = this.r.subscriptions.item(subscription).current_period_end;
    const index = schedule.phases.findIndex((phase) => phase.start_date === boundary);
    const phase = schedule.phases[index];
    if (!phase) return null;
    const item = phase.items[0]!;
    return { price: this.r.catalog.price(String(item.price)), quantity: item.quantity ?? 1, last: index === schedule.phases.length - 1 };
  }

  /**
   * After a renewal entered a new phase: the schedule's current phase moves on, and once the
   * last phase has started the schedule releases the subscription (`end_behavior: release`).
   */
  phaseStarted(subscription: Stripe.Subscription, last: boolean): void {
    const schedule = this.of(subscription);
    if (!schedule) return;
    const now = this.r.store.now(idOf(subscription.customer as string));
    if (last && schedule.end_behavior === "release") {
      this.release(schedule);
      return;
    }
    const previous = { current_phase: schedule.current_phase };
    this.setCurrentPhase(schedule, Math.max(now, this.r.subscriptions.item(subscription).current_period_start));
    this.emit("subscription_schedule.updated", schedule, previous);
  }
}

const updateParams = z
  .object({
    phases: z.array(phaseParams).min(1).max(10).optional(),
    end_behavior: oneOf(["release"]).optional(),
    proration_behavior: prorationBehavior.optional(),
    metadata: metadataParam,
    expand,
  })
  .strict();

export function mountSubscriptionSchedules({ route }: Api, r: Resources): void {
  route("POST", "/v1/subscription_schedules", (raw) => {
    const p = parseParams(z.object({ from_subscription: str, expand }).strict(), raw);
    return r.subscriptionSchedules.createFromSubscription(r.subscriptions.get(p.from_subscription, "from_subscription"));
  });

  route("GET", "/v1/subscription_schedules/:id", (raw, c) => {
    parseParams(z.object({ expand }).strict(), raw);
    return r.subscriptionSchedules.get(c.req.param("id") ?? "");
  });

  route("POST", "/v1/subscription_schedules/:id", (raw, c) => {
    const p = parseParams(updateParams, raw);
    const schedule = r.subscriptionSchedules.get(c.req.param("id") ?? "");
    r.subscriptionSchedules.update(schedule, p);
    return schedule;
  });

  route("POST", "/v1/subscription_schedules/:id/release", (raw, c) => {
    parseParams(z.object({ preserve_cancel_date: z.literal("false").optional(), expand }).strict(), raw);
    const schedule = r.subscriptionSchedules.get(c.req.param("id") ?? "");
    r.subscriptionSchedules.release(schedule);
    return schedule;
  });

  route("POST", "/v1/subscription_schedules/:id/cancel", (raw, c) => {
    parseParams(z.object({ invoice_now: z.literal("false").optional(), prorate: z.literal("false").optional(), expand }).strict(), raw);
    const schedule = r.subscriptionSchedules.get(c.req.param("id") ?? "");
    r.subscriptionSchedules.cancel(schedule);
    return schedule;
  });
}
