/**
 * Changing an organization's plan or interval in the app, the Stripe side: which kind of change
 * a request is, the subscription and catalog it is decided from, and the subscription schedule
 * that holds a change until the period ends.
 *
 * The money rules (decided for this product, not Stripe's defaults):
 * - An upgrade (same interval, a higher catalog price) takes effect now: Stripe invoices the
 *   prorated difference at once (`always_invoice`, at the previewed `proration_date`, so the
 *   charge equals the preview) and refuses the change if the card is declined
 *   (`error_if_incomplete`). The paid invoice adds the prorated difference of the allowances
 *   (the webhook, apply_proration_invoice_paid).
 * - A downgrade (a lower or equal price) and any interval change wait for the end of the
 *   period, held by a subscription schedule: no proration, no refund, and the period's credits
 *   are kept. Refunding unused time while the period's credits may already be spent would
 *   give credits away; an immediate downgrade with no refund would take away paid features.
 *   The renewal invoice is at the new price and allocates the new plan's allowance.
 */
import type Stripe from "stripe";
import { fromUnix, idOf } from "../_shared/stripe-mapping.ts";
import { type DatabaseClient, dataOf } from "../_shared/supabase.ts";
import { ApiError, isStripeMissing, stripeErrorType } from "./api-error.ts";
import type { PlanRow } from "./stripe-catalog.ts";
import { LIVE_STATUSES } from "./stripe-customer.ts";

export type Interval = "month" | "year";

/** A plan of our catalog with what a change is decided from. */
export interface CatalogPlan extends PlanRow {
  monthly_credits: number;
  annual_credits: number;
  is_active: boolean;
}

/** The catalog price of a plan for an interval (minor units). */
export function catalogAmount(plan: CatalogPlan, interval: Interval): number {
  return interval === "month" ? plan.monthly_unit_amount : plan.annual_unit_amount;
}

/** Every plan of the catalog, active or not (a subscription may be on a retired one). */
export async function catalogPlans(service: DatabaseClient): Promise<CatalogPlan[]> {
  return dataOf(await service.from("subscription_plans").select("*")) as CatalogPlan[];
}

/** The active plan a request names, or 404 plan_not_found. */
export function requestedPlan(plans: CatalogPlan[], code: string): CatalogPlan {
  const plan = plans.find((candidate) => candidate.code === code && candidate.is_active);
  if (!plan) throw new ApiError(404, "plan_not_found", `There is no active plan ${code}.`);
  return plan;
}

/**
 * The plan and interval a Stripe price stands for: one of the catalog's current prices, else
 * the plan our price metadata names (a price we replaced still carries it), else null.
 */
export function planOfPrice(plans: CatalogPlan[], price: Stripe.Price): { plan: CatalogPlan; interval: Interval } | null {
  const recurring: string | undefined = price.recurring?.interval;
  if (recurring !== "month" && recurring !== "year") return null;
  const interval: Interval = recurring;
  const plan = plans.find((candidate) => candidate.stripe_monthly_price_id === price.id || candidate.stripe_annual_price_id === price.id) ??
    plans.find((candidate) => candidate.code === price.metadata?.plan_code);
  return plan ? { plan, interval } : null;
}

/** The organization's newest subscription row, as the webhook keeps it. */
async function latestRow(service: DatabaseClient, organization: string) {
  return dataOf(
    await service.from("organization_subscriptions").select("stripe_subscription_id, stripe_customer_id, status")
      .eq("organization_id", organization).order("created_at", { ascending: false }).limit(1).maybeSingle(),
  );
}

/** A live subscription as Stripe has it now, with its one item and what its price stands for. */
export interface LiveSubscription {
  subscription: Stripe.Subscription;
  item: Stripe.SubscriptionItem;
  customer: string;
  current: { plan: CatalogPlan; interval: Interval } | null;
}

/**
 * The organization's live subscription as Stripe has it now (our row names it; Stripe decides
 * its state), or null when there is none. `ended` tells a canceled one from never subscribed.
 */
export async function liveSubscription(
  stripe: Stripe,
  service: DatabaseClient,
  plans: CatalogPlan[],
  organization: string,
): Promise<{ live: LiveSubscription | null; ended: boolean }> {
  const row = await latestRow(service, organization);
  if (!row) return { live: null, ended: false };
  if (!LIVE_STATUSES.includes(row.status)) return { live: null, ended: true };
  let subscription: Stripe.Subscription;
  try {
    subscription = await stripe.subscriptions.retrieve(row.stripe_subscription_id);
  } catch (error) {
    if (isStripeMissing(error)) return { live: null, ended: false };
    throw error;
  }
  if (subscription.status === "canceled" || subscription.status === "incomplete_expired") return { live: null, ended: true };
  const item = subscription.items.data[0];
  if (!item) return { live: null, ended: false };
  return { live: { subscription, item, customer: idOf(subscription.customer) ?? row.stripe_customer_id, current: planOfPrice(plans, item.price) }, ended: false };
}

/** The live subscription a change needs, or the 409 that says why there is none to change. */
export function requireChangeable(found: { live: LiveSubscription | null }): LiveSubscription {
  const live = found.live;
  if (!live) throw new ApiError(409, "no_subscription", "The organization has no live subscription to change: subscribe first.");
  if (live.subscription.cancel_at_period_end) {
    throw new ApiError(409, "subscription_ending", "The subscription ends at the end of its period: resume it first, then change the plan.");
  }
  return live;
}

export type ChangeKind = "upgrade" | "scheduled";

/**
 * Which rule a change falls under. An upgrade is the same interval at a higher catalog price;
 * everything else (a lower or equal price, another interval) waits for the period's end.
 * The same plan and interval is 409 same_plan.
 */
export function changeKind(live: LiveSubscription, target: CatalogPlan, interval: Interval): ChangeKind {
  const current = live.current;
  if (current && current.plan.id === target.id && current.interval === interval) {
    throw new ApiError(409, "same_plan", `The organization is already on ${target.name} (${interval}ly).`);
  }
  if (!current) {
    // A price outside our catalog (set by hand in Stripe): nothing to compare, so nothing is
    // charged now; the change waits for the period's end.
    return "scheduled";
  }
  if (current.interval !== interval) return "scheduled";
  return catalogAmount(target, interval) > catalogAmount(current.plan, current.interval) ? "upgrade" : "scheduled";
}

/** How long a previewed `proration_date` may be used for the change (then preview again). */
export const PREVIEW_VALID_SECONDS = 15 * 60;

/**
 * Stripe's "now" for a subscription, as the preview it computed at that moment shows it: its
 * proration lines start there. Read from Stripe rather than our clock, so a test clock running
 * ahead (or our clock drifting) cannot make the charge differ from the preview. Without
 * proration lines (a trial), our clock, kept inside the period.
 */
export function prorationMoment(invoice: Stripe.Invoice, item: Stripe.SubscriptionItem): number {
  const starts = invoice.lines.data
    .filter((line) => line.parent?.subscription_item_details?.proration === true)
    .map((line) => line.period.start);
  if (starts.length > 0) return Math.min(...starts);
  return Math.min(Math.max(Math.floor(Date.now() / 1000), item.current_period_start), item.current_period_end);
}

/**
 * The proration date a change uses: the previewed one, if it is recent by Stripe's clock (a
 * stale preview, or a date chosen to make the upgrade cheap, is refused: the charge must be the
 * one shown and cover the rest of the period from about now), else Stripe's now.
 */
export function prorationDateFor(item: Stripe.SubscriptionItem, stripeNow: number, previewed: number | undefined): number {
  if (previewed === undefined) return stripeNow;
  if (previewed > stripeNow || previewed < stripeNow - PREVIEW_VALID_SECONDS || previewed < item.current_period_start) {
    throw new ApiError(409, "preview_expired", "The preview is out of date: preview the change again.");
  }
  return previewed;
}

/** The line of the next charge, for the preview and the upcoming invoice. */
export interface ChargeLine {
  description: string;
  amount: number;
}

export function linesOf(invoice: Stripe.Invoice): ChargeLine[] {
  return invoice.lines.data.map((line) => ({ description: line.description ?? "", amount: line.amount }));
}

/** The change a subscription schedule holds for the next phase, as the API shows it. */
export interface ScheduledChange {
  plan_code: string;
  plan_name: string;
  interval: Interval;
  effective_at: string;
}

/** The subscription's schedule, when it has one that still holds a change. */
export async function scheduleOf(stripe: Stripe, subscription: Stripe.Subscription): Promise<Stripe.SubscriptionSchedule | null> {
  const id = idOf(subscription.schedule as string | { id: string } | null);
  if (!id) return null;
  const schedule = await stripe.subscriptionSchedules.retrieve(id);
  return schedule.status === "active" || schedule.status === "not_started" ? schedule : null;
}

/** The phase after the current one, and what it changes to. */
export async function scheduledChangeOf(
  stripe: Stripe,
  plans: CatalogPlan[],
  live: LiveSubscription,
  schedule: Stripe.SubscriptionSchedule | null,
): Promise<ScheduledChange | null> {
  if (!schedule) return null;
  const next = schedule.phases.find((phase) => phase.start_date >= live.item.current_period_end);
  const priceRef = next?.items[0]?.price;
  if (!next || !priceRef) return null;
  const price = typeof priceRef === "string" ? await stripe.prices.retrieve(priceRef) : priceRef as Stripe.Price;
  const found = planOfPrice(plans, price);
  if (!found) return null;
  return { plan_code: found.plan.code, plan_name: found.plan.name, interval: found.interval, effective_at: fromUnix(next.start_date)! };
}

/**
 * Holds a change until the period ends: the subscription's schedule (made from the
 * subscription the first time) gets two phases, the current price until the period's end,
 * then the new price; changing again replaces the second phase. On release the subscription
 * carries on at the new price as any other.
 */
export async function scheduleChange(stripe: Stripe, live: LiveSubscription, newPrice: string): Promise<Stripe.SubscriptionSchedule> {
  const schedule = (await scheduleOf(stripe, live.subscription)) ?? await createSchedule(stripe, live.subscription.id);
  const currentPhase = schedule.phases[0];
  return await stripe.subscriptionSchedules.update(schedule.id, {
    end_behavior: "release",
    proration_behavior: "none",
    phases: [
      {
        items: [{ price: live.item.price.id, quantity: live.item.quantity ?? 1 }],
        start_date: currentPhase?.start_date ?? live.item.current_period_start,
        end_date: live.item.current_period_end,
        proration_behavior: "none",
      },
      {
        items: [{ price: newPrice, quantity: live.item.quantity ?? 1 }],
        proration_behavior: "none",
      },
    ],
  });
}

/**
 * A schedule for the subscription. No idempotency key: a released schedule must not be
 * replayed for the next change. Two requests at once both try, Stripe lets one attach, and the
 * other uses that one.
 */
async function createSchedule(stripe: Stripe, subscriptionId: string): Promise<Stripe.SubscriptionSchedule> {
  try {
    return await stripe.subscriptionSchedules.create({ from_subscription: subscriptionId });
  } catch (error) {
    if (stripeErrorType(error) !== "StripeInvalidRequestError") throw error;
    const attached = await scheduleOf(stripe, await stripe.subscriptions.retrieve(subscriptionId));
    if (!attached) throw error;
    return attached;
  }
}

/** The price a schedule's next phase moves to, if it holds one. */
export function heldPrice(schedule: Stripe.SubscriptionSchedule | null, item: Stripe.SubscriptionItem): string | null {
  const next = schedule?.phases.find((phase) => phase.start_date >= item.current_period_end);
  const price = next?.items[0]?.price;
  return price ? idOf(price as string | { id: string }) : null;
}

/** Drops a scheduled change: the schedule is released and the subscription carries on as it is. */
export async function releaseSchedule(stripe: Stripe, schedule: Stripe.SubscriptionSchedule): Promise<void> {
  await stripe.subscriptionSchedules.release(schedule.id);
}
