/**
 * Plan changes in the app (mounted under `/subscription`): the next charge
 * (`GET /{org_id}/upcoming`, members), a change previewed (`POST /change/preview`) and made
 * (`POST /change`), a scheduled change dropped (`POST /change/cancel`) and a scheduled
 * cancellation undone (`POST /resume`), for owners and admins. The rules are in plan-change.ts.
 */
import { Hono } from "hono";
import type Stripe from "stripe";
import { json } from "../../_shared/http.ts";
import { fromUnix, invoiceProrationLines, subscriptionState } from "../../_shared/stripe-mapping.ts";
import { rpc } from "../../_shared/supabase.ts";
import { organizationBody, planChangeBody, planChangePreviewBody } from "../../_shared/validate.ts";
import { ApiError, stripeErrorType } from "../api-error.ts";
import {
  catalogAmount,
  catalogPlans,
  changeKind,
  type ChangeKind,
  heldPrice,
  type LiveSubscription,
  linesOf,
  liveSubscription,
  prorationDateFor,
  prorationMoment,
  releaseSchedule,
  requestedPlan,
  requireChangeable,
  scheduleChange,
  scheduledChangeOf,
  scheduleOf,
} from "../plan-change.ts";
import { type BillingContext, type BillingEnv, organizationParam, readJson, requireManager, requireMember } from "../request.ts";
import { planPrice } from "../stripe-catalog.ts";

export const planChange = new Hono<BillingEnv>();

/** A declined card during an upgrade: Stripe refused the change, so nothing changed. */
function isCardDeclined(error: unknown): boolean {
  return stripeErrorType(error) === "StripeCardError";
}

/**
 * Brings our row up to date with the subscription as Stripe just answered (the webhook will
 * say the same later; applying it now means the dashboard shows the change at once).
 */
async function syncRow(c: BillingContext, organization: string, subscription: Stripe.Subscription): Promise<void> {
  await rpc(c.var.deps.service, "apply_stripe_subscription", {
    p_event_id: null,
    p_organization_id: organization,
    ...subscriptionState(subscription, new Date()),
  });
}

/** What a change would do, computed the way the change itself will be made. */
async function preview(c: BillingContext, organization: string, planCode: string, interval: "month" | "year", previewedDate?: number) {
  const { stripe, service } = c.var.deps;
  const plans = await catalogPlans(service);
  const target = requestedPlan(plans, planCode);
  const live = requireChangeable(await liveSubscription(stripe, service, plans, organization));
  const kind = changeKind(live, target, interval);
  const price = await planPrice(stripe, service, target, interval);
  const nextCharge = { date: fromUnix(live.item.current_period_end)!, amount: catalogAmount(target, interval) };
  if (kind === "scheduled") {
    const now = Math.min(Math.max(Math.floor(Date.now() / 1000), live.item.current_period_start), live.item.current_period_end);
    return {
      live,
      price,
      kind,
      prorationDate: now,
      answer: {
        kind,
        effective_at: fromUnix(live.item.current_period_end)!,
        amount_due_now: 0,
        currency: target.currency,
        proration_date: now,
        credits_now: 0,
        lines: [{ description: `${target.name} (${interval}ly) from the next billing period`, amount: catalogAmount(target, interval) }],
        next_charge: nextCharge,
      },
    };
  }
  const change = (prorationDate?: number) =>
    stripe.invoices.createPreview({
      customer: live.customer,
      subscription: live.subscription.id,
      subscription_details: {
        items: [{ id: live.item.id, price }],
        proration_behavior: "always_invoice",
        ...(prorationDate === undefined ? {} : { proration_date: prorationDate }),
      },
    });
  // Previewed at Stripe's now; a change that brings its preview's date is checked against it
  // and previewed again at that date.
  let invoice = await change();
  const prorationDate = prorationDateFor(live.item, prorationMoment(invoice, live.item), previewedDate);
  if (previewedDate !== undefined) invoice = await change(prorationDate);
  // During a trial Stripe changes the price with no proration: nothing is due now, and the
  // preview shows the renewal instead (the trial's allowance rule grants nothing more).
  const chargedNow = invoice.lines.data.length > 0 && invoice.lines.data.every((line) => line.parent?.subscription_item_details?.proration === true);
  const credits = !chargedNow ? 0 : await rpc(service, "proration_allowance_credits", {
    p_lines: invoiceProrationLines(invoice),
    p_period_start: fromUnix(live.item.current_period_start),
    p_period_end: fromUnix(live.item.current_period_end),
  });
  return {
    live,
    price,
    kind,
    prorationDate,
    answer: {
      kind,
      effective_at: fromUnix(prorationDate)!,
      amount_due_now: chargedNow ? invoice.amount_due : 0,
      currency: invoice.currency,
      proration_date: prorationDate,
      credits_now: credits,
      lines: chargedNow ? linesOf(invoice) : [],
      next_charge: nextCharge,
    },
  };
}

planChange.get("/:org_id/upcoming", async (c) => {
  const organization = organizationParam(c);
  await requireMember(c, organization);
  const { stripe, service } = c.var.deps;
  const plans = await catalogPlans(service);
  const { live } = await liveSubscription(stripe, service, plans, organization);
  // Nothing to charge: never subscribed, ended, or ending at the period's end.
  if (!live || live.subscription.cancel_at_period_end) return json({ upcoming: null });
  let invoice: Stripe.Invoice;
  try {
    invoice = await stripe.invoices.createPreview({ customer: live.customer, subscription: live.subscription.id });
  } catch (error) {
    if ((error as { code?: string }).code === "invoice_upcoming_none") return json({ upcoming: null });
    throw error;
  }
  const scheduled = await scheduledChangeOf(stripe, plans, live, await scheduleOf(stripe, live.subscription));
  return json({
    upcoming: {
      date: fromUnix(invoice.next_payment_attempt ?? live.item.current_period_end),
      amount_due: invoice.amount_due,
      currency: invoice.currency,
      lines: linesOf(invoice),
      scheduled_change: scheduled,
    },
  });
});

planChange.post("/change/preview", async (c) => {
  const body = await readJson(c, planChangePreviewBody);
  await requireManager(c, body.organization_id);
  const { answer } = await preview(c, body.organization_id, body.plan_code, body.interval);
  return json(answer);
});

planChange.post("/change", async (c) => {
  const body = await readJson(c, planChangeBody);
  await requireManager(c, body.organization_id);
  const { stripe } = c.var.deps;
  const { live, price, kind, prorationDate } = await preview(c, body.organization_id, body.plan_code, body.interval, body.proration_date);
  const effectiveAt = kind === "upgrade" ? await upgrade(c, body.organization_id, live, price, prorationDate) : await schedule(c, live, price);
  const result: { kind: ChangeKind; effective_at: string } = { kind, effective_at: effectiveAt };
  // Read back after the change, so our row (and the dashboard) shows it at once.
  await syncRow(c, body.organization_id, await stripe.subscriptions.retrieve(live.subscription.id));
  return json(result);
});

/**
 * The upgrade now: the prorated difference invoiced and charged at once, at the previewed
 * proration date; a declined card refuses the change (Stripe leaves the subscription as it
 * was). A change waiting for the period's end is dropped first (the upgrade replaces it; a
 * subscription a schedule manages is the schedule's to change), and held again if the card is
 * declined, so a refused upgrade changes nothing.
 */
async function upgrade(c: BillingContext, organization: string, live: LiveSubscription, price: string, prorationDate: number): Promise<string> {
  const { stripe } = c.var.deps;
  const schedule = await scheduleOf(stripe, live.subscription);
  const held = heldPrice(schedule, live.item);
  if (schedule) await releaseSchedule(stripe, schedule);
  try {
    await stripe.subscriptions.update(live.subscription.id, {
      items: [{ id: live.item.id, price }],
      proration_behavior: "always_invoice",
      proration_date: prorationDate,
      payment_behavior: "error_if_incomplete",
    }, {
      // A double click or a retry after a timeout charges once.
      idempotencyKey: `plan-upgrade:${organization}:${live.subscription.id}:${live.item.price.id}:${price}:${prorationDate}`,
    });
  } catch (error) {
    if (held) await scheduleChange(stripe, { ...live, subscription: await stripe.subscriptions.retrieve(live.subscription.id) }, held);
    if (isCardDeclined(error)) {
      throw new ApiError(402, "card_declined", "The card on file was declined; the plan was not changed. Update the card in the portal and try again.");
    }
    throw error;
  }
  return fromUnix(prorationDate)!;
}

/** A downgrade or interval change, held by the subscription's schedule until the period ends. */
async function schedule(c: BillingContext, live: LiveSubscription, price: string): Promise<string> {
  await scheduleChange(c.var.deps.stripe, live, price);
  return fromUnix(live.item.current_period_end)!;
}

planChange.post("/change/cancel", async (c) => {
  const body = await readJson(c, organizationBody);
  await requireManager(c, body.organization_id);
  const { stripe, service } = c.var.deps;
  const plans = await catalogPlans(service);
  const { live } = await liveSubscription(stripe, service, plans, body.organization_id);
  if (!live) throw new ApiError(409, "no_subscription", "The organization has no live subscription.");
  const schedule = await scheduleOf(stripe, live.subscription);
  if (!schedule || !(await scheduledChangeOf(stripe, plans, live, schedule))) {
    throw new ApiError(409, "no_scheduled_change", "No plan change is scheduled.");
  }
  await releaseSchedule(stripe, schedule);
  await syncRow(c, body.organization_id, await stripe.subscriptions.retrieve(live.subscription.id));
  return json({ scheduled_change: null });
});

planChange.post("/resume", async (c) => {
  const body = await readJson(c, organizationBody);
  await requireManager(c, body.organization_id);
  const { stripe, service } = c.var.deps;
  const plans = await catalogPlans(service);
  const { live, ended } = await liveSubscription(stripe, service, plans, body.organization_id);
  if (!live) {
    if (ended) throw new ApiError(409, "subscription_ended", "The subscription has ended: subscribe again to continue.");
    throw new ApiError(409, "no_subscription", "The organization has no subscription to resume.");
  }
  if (!live.subscription.cancel_at_period_end) throw new ApiError(409, "not_ending", "The subscription is not set to end: nothing to resume.");
  const resumed = await stripe.subscriptions.update(live.subscription.id, { cancel_at_period_end: false });
  await syncRow(c, body.organization_id, resumed);
  return json({ cancel_at_period_end: false });
});
