/**
 * The organization's subscription: `POST /subscription/checkout` and `POST /subscription/portal`
 * (owners and admins; prices and the customer from our tables, return URLs from APP_URL), and
 * `GET /subscription/{org_id}` (members).
 */
import { Hono } from "hono";
import type Stripe from "stripe";
import { json } from "../../_shared/http.ts";
import { dataOf } from "../../_shared/supabase.ts";
import { portalBody, subscriptionCheckoutBody } from "../../_shared/validate.ts";
import { ApiError } from "../api-error.ts";
import { openCheckoutSession } from "../checkout-session.ts";
import { latestSubscription } from "../latest-subscription.ts";
import { asCaller, type BillingEnv, organizationParam, readJson, requireManager, requireMember } from "../request.ts";
import { type PlanRow, planPrice } from "../stripe-catalog.ts";
import { customerFor, existingCustomerFor, hasLiveSubscription } from "../stripe-customer.ts";
import { checkoutTrialDays } from "../trial.ts";

export const subscription = new Hono<BillingEnv>();

/**
 * One subscription per organization: an older subscription Checkout Session still open (a
 * tab left open, another plan chosen earlier) could be paid as well and start a second
 * subscription, so opening a new one expires the others.
 */
async function expireOtherSubscriptionCheckouts(stripe: Stripe, customer: string, keep: string): Promise<void> {
  for await (const open of stripe.checkout.sessions.list({ customer, status: "open", limit: 100 })) {
    if (open.mode !== "subscription" || open.id === keep) continue;
    try {
      await stripe.checkout.sessions.expire(open.id);
    } catch (error) {
      // Paid or expired meanwhile: the live-subscription check and the webhook deal with that.
      if (!(error instanceof Error && (error as { type?: string }).type === "StripeInvalidRequestError")) throw error;
    }
  }
}

subscription.post("/checkout", async (c) => {
  const { stripe, service, appUrl } = c.var.deps;
  const body = await readJson(c, subscriptionCheckoutBody);
  await requireManager(c, body.organization_id);
  if (await hasLiveSubscription(service, body.organization_id)) {
    throw new ApiError(409, "subscription_exists", "The organization already has a subscription: change it in the customer portal.");
  }
  const plan = dataOf(
    await service.from("subscription_plans").select("*")
      .eq("code", body.plan_code).eq("is_active", true).maybeSingle<PlanRow>(),
  );
  if (!plan) throw new ApiError(404, "plan_not_found", `There is no active plan ${body.plan_code}.`);

  // One trial per owner: the database says whether this organization may have one.
  const trialDays = await checkoutTrialDays(asCaller(c), body.organization_id, plan);
  const customer = await customerFor(stripe, service, body.organization_id);
  const price = await planPrice(stripe, service, plan, body.interval);
  const session = await openCheckoutSession(stripe, "subscription", body.organization_id, {
    mode: "subscription",
    customer,
    line_items: [{ price, quantity: 1 }],
    client_reference_id: body.organization_id,
    metadata: { organization_id: body.organization_id, plan_code: plan.code },
    subscription_data: {
      metadata: { organization_id: body.organization_id, plan_code: plan.code },
      ...(trialDays !== undefined && { trial_period_days: trialDays }),
    },
    success_url: `${appUrl}/?checkout=success&kind=subscription&session_id={CHECKOUT_SESSION_ID}`,
    cancel_url: `${appUrl}/?checkout=cancelled&kind=subscription`,
  });
  await expireOtherSubscriptionCheckouts(stripe, customer, session.id);
  return json({ url: session.url });
});

subscription.post("/portal", async (c) => {
  const { stripe, service, appUrl } = c.var.deps;
  const body = await readJson(c, portalBody);
  await requireManager(c, body.organization_id);
  const customer = await existingCustomerFor(stripe, service, body.organization_id);
  if (!customer) {
    throw new ApiError(409, "no_customer", "The organization has no billing account yet: subscribe or buy credits first.");
  }
  const session = await stripe.billingPortal.sessions.create({
    customer,
    return_url: `${appUrl}/?portal=returned`,
  });
  return json({ url: session.url });
});

subscription.get("/:org_id", async (c) => {
  const organization = organizationParam(c);
  await requireMember(c, organization);
  return json({ subscription: await latestSubscription(asCaller(c), organization) });
});
