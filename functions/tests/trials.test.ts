/**
 * Trials through the real functions and the Stripe emulator: a trial grants the plan's trial
 * allowance (never the annual one) until the trial ends; one trial per owner, however many
 * organizations they create; and the trial-ending alert shows Stripe's trial end, not the
 * event body's.
 */
import assert from "node:assert/strict";
import Stripe from "stripe";
import {
  advanceClockUntil,
  api,
  balance,
  db,
  deliver,
  eventPayload,
  eventually,
  type Member,
  ownerWithOrganization,
  payCheckout,
  portalAction,
  sign,
  stripe,
} from "./support.ts";

const test = (name: string, fn: () => Promise<void>) => Deno.test({ name, sanitizeOps: false, sanitizeResources: false, fn });

const professionalAnnual = (organizationId: string) => ({ organization_id: organizationId, plan_code: "professional", interval: "year" });

/** Opens a subscription Checkout Session through the API and returns its id. */
async function openCheckout(member: Member, organizationId: string): Promise<{ url: string; sessionId: string }> {
  const checkout = await api(member, "POST", "/subscription/checkout", professionalAnnual(organizationId));
  assert.equal(checkout.status, 200, JSON.stringify(checkout.body));
  return { url: checkout.body.url, sessionId: new URL(checkout.body.url).pathname.split("/").pop()! };
}

async function subscriptionLots(organizationId: string) {
  const { data, error } = await db.from("credit_lots").select("reference, granted, expires_at, period_start")
    .eq("organization_id", organizationId).eq("source", "subscription").order("id");
  if (error) throw new Error(error.message);
  return data;
}

async function createOrganization(member: Member, name: string): Promise<string> {
  const { data, error } = await member.client.rpc("create_organization", { p_name: name });
  if (error) throw new Error(error.message);
  return data as string;
}

test("an annual trial grants the trial allowance until the trial ends; the first paid annual invoice grants the annual allowance", async () => {
  const { owner, organizationId } = await ownerWithOrganization("Annual Trial Inc");
  const { url } = await openCheckout(owner, organizationId);
  const session = await payCheckout(url) as Stripe.Checkout.Session;
  const subscription = await stripe.subscriptions.retrieve(session.subscription as string);
  assert.equal(subscription.status, "trialing", "Professional comes with a trial");
  assert.ok(subscription.trial_end);

  const trialLots = await eventually("the trial's credits", async () => {
    const lots = await subscriptionLots(organizationId);
    return lots?.length === 1 ? lots : undefined;
  });
  assert.equal(trialLots[0]!.granted, 2500, "the trial grants Professional's trial allowance, not the 60,000 of a year");
  assert.equal(Date.parse(trialLots[0]!.expires_at), subscription.trial_end * 1000, "and it expires when the trial ends");
  assert.equal((await balance(owner, organizationId)).subscription, 2500);

  await advanceClockUntil(subscription.id, "the first paid annual invoice's credits", async () => {
    const lots = await subscriptionLots(organizationId);
    return lots?.length === 2 ? true : undefined;
  });
  const lots = (await subscriptionLots(organizationId))!;
  assert.equal(lots[1]!.granted, 60000, "the paid annual invoice grants the annual allowance");
  assert.equal(Date.parse(lots[1]!.period_start), subscription.trial_end * 1000, "for the year that starts when the trial ends");
  assert.equal(Date.parse(lots[0]!.expires_at), subscription.trial_end * 1000, "the trial's credits still end with the trial");
});

test("an owner's second organization gets Checkout without a trial, so trial, cancel, spend, new organization yields no second trial allowance", async () => {
  const { owner, organizationId: first } = await ownerWithOrganization("Gamer One");
  const plansBefore = await api(owner, "GET", `/plans?organization_id=${first}`);
  assert.equal(plansBefore.status, 200, JSON.stringify(plansBefore.body));
  assert.deepEqual(plansBefore.body.trial, { eligible: true, reason: null }, "a new owner may have a trial");

  // The first trial: take it, spend it all, cancel at period end.
  const session = await payCheckout((await openCheckout(owner, first)).url) as Stripe.Checkout.Session;
  await eventually("the trial's credits", async () => ((await balance(owner, first)).subscription === 2500 ? true : undefined));
  const spent = await api(owner, "POST", "/credits/consume", { organization_id: first, event_key: "ai_inference", quantity: 100 });
  assert.equal(spent.status, 200, JSON.stringify(spent.body));
  assert.equal(spent.body.balance.total, 0, "the whole trial allowance is spent");
  const portal = await api(owner, "POST", "/subscription/portal", { organization_id: first });
  assert.equal(portal.status, 200, JSON.stringify(portal.body));
  await portalAction(portal.body.url, { action: "cancel_at_period_end", subscription: session.subscription as string });

  // A fresh organization of the same owner.
  const second = await createOrganization(owner, "Gamer Two");
  const plans = await api(owner, "GET", `/plans?organization_id=${second}`);
  assert.equal(plans.status, 200, JSON.stringify(plans.body));
  assert.deepEqual(plans.body.trial, { eligible: false, reason: "trial_used" }, "the plans route says the trial was used");
  const plain = await api(owner, "GET", "/plans");
  assert.equal(plain.body.trial, undefined, "without an organization the plans route answers as before");
  const { owner: stranger } = await ownerWithOrganization("Nosy Inc");
  assert.equal((await api(stranger, "GET", `/plans?organization_id=${second}`)).status, 403, "a stranger cannot ask about it");
  const malformed = await api(owner, "GET", "/plans?organization_id=not-a-uuid");
  assert.equal(malformed.status, 400, "a malformed organization id is a 400");
  assert.equal(malformed.body.error.code, "invalid_request");

  const { url, sessionId } = await openCheckout(owner, second);
  const opened = await stripe.checkout.sessions.retrieve(sessionId);
  assert.equal(opened.status, "open");
  const paid = await payCheckout(url) as Stripe.Checkout.Session;
  const readBack = await stripe.checkout.sessions.retrieve(sessionId, { expand: ["subscription"] });
  assert.equal(readBack.payment_status, "paid", "the session charged the card instead of starting a trial");
  const subscription = readBack.subscription as Stripe.Subscription;
  assert.equal(subscription.id, paid.subscription);
  assert.equal(subscription.trial_end, null, "the subscription has no trial");
  assert.equal(subscription.status, "active", "and is active at once");

  const lots = await eventually("the paid year's credits", async () => {
    const found = await subscriptionLots(second);
    return found?.length === 1 ? found : undefined;
  });
  assert.deepEqual(lots.map((lot) => lot.granted), [60000], "the second organization got only what it paid for: no trial allowance");
  const history = await api(owner, "GET", `/history/${second}`);
  assert.ok(history.body.history.every((row: { amount: number }) => row.amount > 0), "and no $0 trial invoice");
});

test("two trial checkouts opened before either trial started, both paid, grant one trial allowance", async () => {
  const { owner, organizationId: first } = await ownerWithOrganization("Racer One");
  const second = await createOrganization(owner, "Racer Two");
  // Both are opened while the owner has had no trial, so both Checkout Sessions carry one.
  const checkouts = [await openCheckout(owner, first), await openCheckout(owner, second)];
  for (const { url } of checkouts) await payCheckout(url);

  const granted = await eventually("both trials to be applied", async () => {
    const lots = [...(await subscriptionLots(first))!, ...(await subscriptionLots(second))!];
    const { count } = await db.from("billing_history").select("id", { count: "exact", head: true })
      .in("organization_id", [first, second]).eq("kind", "subscription_invoice");
    return count === 2 ? lots.map((lot) => lot.granted) : undefined;
  });
  assert.deepEqual(granted, [2500], "only the first trial recorded grants the trial allowance");
});

test("the trial-ending alert shows the trial end Stripe has, not the one in the event body", async () => {
  const { owner, organizationId } = await ownerWithOrganization("Stale Body Inc");
  const session = await payCheckout((await openCheckout(owner, organizationId)).url) as Stripe.Checkout.Session;
  const subscription = await stripe.subscriptions.retrieve(session.subscription as string);
  await eventually("the subscription", async () => ((await balance(owner, organizationId)).subscription === 2500 ? true : undefined));

  // A genuine, signed event whose copy of the subscription says something Stripe no longer does.
  const staleTrialEnd = subscription.trial_end! + 90 * 86_400;
  const staleEvent = () =>
    eventPayload(`evt_stale_${crypto.randomUUID().replaceAll("-", "")}`, "customer.subscription.trial_will_end",
      { ...subscription, status: "trialing", trial_end: staleTrialEnd });
  const payload = staleEvent();
  const response = await deliver(payload, await sign(payload));
  assert.equal(response.status, 200, JSON.stringify(response.body));

  const alert = await eventually("the trial-ending alert", async () => {
    const { data } = await db.from("billing_alerts").select("message, data")
      .eq("organization_id", organizationId).eq("kind", "trial_ending").maybeSingle();
    return data ?? undefined;
  });
  const stripeTrialEnd = new Date(subscription.trial_end! * 1000).toISOString();
  assert.equal(alert.data.trial_end, stripeTrialEnd, "the alert carries Stripe's trial end");
  assert.equal(alert.message, `The trial ends on ${stripeTrialEnd.slice(0, 10)}.`);

  // Once the trial is over in Stripe, a reminder that arrives late (its copy still trialing) is ignored.
  const portal = await api(owner, "POST", "/subscription/portal", { organization_id: organizationId });
  assert.equal(portal.status, 200, JSON.stringify(portal.body));
  await portalAction(portal.body.url, { action: "cancel_now", subscription: subscription.id });
  const late = staleEvent();
  const lateResponse = await deliver(late, await sign(late));
  assert.equal(lateResponse.status, 200, JSON.stringify(lateResponse.body));
  // The answer comes before the apply: wait for the inbox to say what became of it.
  const lateStatus = await eventually("the late reminder to be applied", async () => {
    const { data } = await db.from("stripe_events").select("status").eq("id", JSON.parse(late).id).maybeSingle();
    return data && data.status !== "received" ? data.status : undefined;
  });
  assert.equal(lateStatus, "ignored", "a trial that is over gets no trial-ending alert");
});
