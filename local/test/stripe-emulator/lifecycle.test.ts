/**
 * Whole subscription lifecycles through the hosted pages and the test clock, asserting the
 * objects (through the real client) and the webhook events (verified with
 * `constructEventAsync` by a receiving server): checkout -> paid -> renewal -> failed payment
 * -> past due -> recovered -> cancelled; trials; dunning that ends in cancellation or `unpaid`.
 */
import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";
import type Stripe from "stripe";
import { nextPeriodEnd } from "../../stripe-emulator/resources/subscriptions.ts";
import { advance, createCatalog, type Harness, startHarness, submitCheckout, submitPortal } from "./harness.ts";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

/** Waits for deliveries, then returns the event types received since `from`. */
async function received(harness: Harness, from: number): Promise<Stripe.Event[]> {
  await harness.emulator.webhooksIdle();
  return harness.receiver.events.slice(from);
}

/** `types` appear in `events` in this relative order (other events may be interleaved). */
function assertInOrder(events: Stripe.Event[], types: string[]): void {
  let index = 0;
  for (const event of events) if (event.type === types[index]) index++;
  assert.equal(index, types.length, `expected ${types.join(" -> ")} in order; got ${events.map((e) => e.type).join(", ")}`);
}

function only<T extends Stripe.Event["type"]>(events: Stripe.Event[], type: T): Array<Extract<Stripe.Event, { type: T }>> {
  return events.filter((e): e is Extract<Stripe.Event, { type: T }> => e.type === type);
}

async function subscribe(harness: Harness, price: Stripe.Price, card: string, options: { trialDays?: number; customer?: string } = {}) {
  const customer = options.customer ?? (await harness.stripe.customers.create({ email: `org-${Math.random().toString(36).slice(2)}@acme.test`, metadata: { organization_id: "org_1" } })).id;
  const session = await harness.stripe.checkout.sessions.create({
    mode: "subscription",
    customer,
    client_reference_id: "org_1",
    line_items: [{ price: price.id, quantity: 1 }],
    subscription_data: { metadata: { organization_id: "org_1" }, ...(options.trialDays ? { trial_period_days: options.trialDays } : {}) },
    success_url: "http://app.test/billing?session={CHECKOUT_SESSION_ID}",
    cancel_url: "http://app.test/billing",
  });
  const response = await submitCheckout(session, card);
  assert.equal(response.status, 303, await response.text());
  const subscription = String((await harness.stripe.checkout.sessions.retrieve(session.id)).subscription);
  const portal = await harness.stripe.billingPortal.sessions.create({ customer, return_url: "http://app.test/billing" });
  return { customer, session, subscription, portal };
}

describe("billing periods", () => {
  test("monthly periods keep the anchor's day of month, clamped in short months", () => {
    const jan31 = Date.UTC(2027, 0, 31, 12) / 1000;
    const feb = nextPeriodEnd(jan31, jan31, "month", 1);
    assert.equal(new Date(feb * 1000).toISOString().slice(0, 10), "2027-02-28");
    const mar = nextPeriodEnd(jan31, feb, "month", 1);
    assert.equal(new Date(mar * 1000).toISOString().slice(0, 10), "2027-03-31");
    const year = nextPeriodEnd(jan31, jan31, "year", 1);
    assert.equal(new Date(year * 1000).toISOString().slice(0, 10), "2028-01-31");
  });
});

describe("subscription lifecycle", () => {
  test("checkout -> paid -> renewal -> failed payment -> past due -> recovered -> cancelled", async () => {
    h = await startHarness();
    const { monthly } = await createCatalog(h.stripe);
    await h.emulator.webhooksIdle();

    // Checkout: paid, subscription active.
    let from = h.receiver.events.length;
    const { customer, session, subscription: subscriptionId, portal } = await subscribe(h, monthly, "4242424242424242");
    let events = await received(h, from);
    assertInOrder(events, [
      "checkout.session.completed",
      "customer.subscription.created",
      "invoice.created",
      "invoice.finalized",
      "invoice.paid",
      "invoice.payment_succeeded",
      "customer.subscription.updated",
    ]);
    const completed = only(events, "checkout.session.completed")[0]?.data.object;
    assert.equal(completed?.id, session.id);
    assert.equal(completed?.payment_status, "paid");
    assert.equal(completed?.client_reference_id, "org_1");
    assert.equal(completed?.subscription, subscriptionId);
    assert.equal(only(events, "customer.subscription.created")[0]?.data.object.status, "incomplete", "created before the first payment, as Stripe does");
    const activated = only(events, "customer.subscription.updated").at(-1);
    assert.equal(activated?.data.object.status, "active");
    assert.deepEqual(activated?.data.previous_attributes, { status: "incomplete" });
    const firstPaid = only(events, "invoice.paid")[0]?.data.object;
    assert.equal(firstPaid?.parent?.subscription_details?.subscription, subscriptionId);
    assert.deepEqual(firstPaid?.parent?.subscription_details?.metadata, { organization_id: "org_1" });

    let subscription = await h.stripe.subscriptions.retrieve(subscriptionId);
    const firstPeriod = subscription.items.data[0];
    assert.ok(firstPeriod);

    // Renewal: paid, new period.
    from = h.receiver.events.length;
    const clock = await advance(h.emulator, customer);
    assert.equal(clock.now, firstPeriod.current_period_end);
    events = await received(h, from);
    assertInOrder(events, ["customer.subscription.updated", "invoice.created", "invoice.finalized", "invoice.paid", "invoice.payment_succeeded"]);
    const renewed = only(events, "customer.subscription.updated")[0]?.data;
    assert.equal(renewed?.object.items.data[0]?.current_period_start, firstPeriod.current_period_end);
    assert.ok(renewed?.previous_attributes?.items, "previous_attributes names the old periods");
    subscription = await h.stripe.subscriptions.retrieve(subscriptionId);
    const secondPeriod = subscription.items.data[0];
    assert.equal(secondPeriod?.current_period_start, firstPeriod.current_period_end);
    const renewal = await h.stripe.invoices.retrieve(String(subscription.latest_invoice));
    assert.equal(renewal.billing_reason, "subscription_cycle");
    assert.equal(renewal.status, "paid");
    assert.equal(renewal.period_start, secondPeriod?.current_period_start);
    assert.equal(renewal.lines.data[0]?.period.start, secondPeriod?.current_period_start);
    assert.equal(renewal.created, firstPeriod.current_period_end, "objects are stamped with the customer's clock");

    // The card is replaced with one that fails off-session; the next renewal fails.
    assert.equal((await submitPortal(portal, { action: "card", card_number: "4000 0000 0000 0341" })).status, 303);
    from = h.receiver.events.length;
    await advance(h.emulator, customer);
    events = await received(h, from);
    assertInOrder(events, ["invoice.created", "invoice.finalized", "charge.failed", "payment_intent.payment_failed", "invoice.payment_failed", "customer.subscription.updated"]);
    subscription = await h.stripe.subscriptions.retrieve(subscriptionId);
    assert.equal(subscription.status, "past_due");
    const failing = await h.stripe.invoices.retrieve(String(subscription.latest_invoice));
    assert.equal(failing.status, "open");
    assert.equal(failing.attempt_count, 1);
    assert.ok(failing.next_payment_attempt && failing.next_payment_attempt > failing.created, "a retry is scheduled");
    assert.equal(only(events, "customer.subscription.updated").at(-1)?.data.object.status, "past_due");

    // The scheduled retry fails again.
    from = h.receiver.events.length;
    const retryClock = await advance(h.emulator, customer);
    assert.equal(retryClock.now, failing.next_payment_attempt);
    events = await received(h, from);
    assert.deepEqual(only(events, "invoice.payment_failed").map((e) => e.data.object.attempt_count), [2]);
    assert.equal((await h.stripe.subscriptions.retrieve(subscriptionId)).status, "past_due");

    // Recovered: a working card pays the open invoice at once.
    from = h.receiver.events.length;
    assert.equal((await submitPortal(portal, { action: "card", card_number: "4242424242424242" })).status, 303);
    events = await received(h, from);
    assertInOrder(events, ["invoice.paid", "invoice.payment_succeeded", "customer.subscription.updated"]);
    assert.equal(only(events, "invoice.paid")[0]?.data.object.id, failing.id);
    const recovered = only(events, "customer.subscription.updated").at(-1)?.data;
    assert.equal(recovered?.object.status, "active");
    assert.deepEqual(recovered?.previous_attributes, { status: "past_due" });
    assert.equal((await h.stripe.invoices.retrieve(failing.id)).status, "paid");

    // Cancel at period end from the portal, then the period ends.
    from = h.receiver.events.length;
    assert.equal((await submitPortal(portal, { action: "cancel_at_period_end", subscription: subscriptionId })).status, 303);
    subscription = await h.stripe.subscriptions.retrieve(subscriptionId);
    assert.equal(subscription.cancel_at_period_end, true);
    assert.equal(subscription.status, "active");
    await advance(h.emulator, customer);
    events = await received(h, from);
    assertInOrder(events, ["customer.subscription.updated", "customer.subscription.deleted"]);
    subscription = await h.stripe.subscriptions.retrieve(subscriptionId);
    assert.equal(subscription.status, "canceled");
    assert.equal(subscription.ended_at, subscription.items.data[0]?.current_period_end);
    assert.equal(only(events, "invoice.created").length, 0, "no invoice after cancellation");

    // Every event the emulator recorded reached the receiver, each signature verified.
    await h.emulator.webhooksIdle();
    assert.deepEqual(h.receiver.rejected, []);
    assert.deepEqual(new Set(h.receiver.events.map((e) => e.id)), new Set(h.emulator.store.events.map((s) => s.event.id)));
  });

  test("a trial starts trialing, warns three days before its end, then converts and bills", async () => {
    h = await startHarness();
    const { monthly } = await createCatalog(h.stripe);
    const { customer, session, subscription: subscriptionId } = await subscribe(h, monthly, "4242424242424242", { trialDays: 14 });
    const done = await h.stripe.checkout.sessions.retrieve(session.id);
    assert.equal(done.payment_status, "no_payment_required");
    let subscription = await h.stripe.subscriptions.retrieve(subscriptionId);
    assert.equal(subscription.status, "trialing");
    assert.ok(subscription.trial_end && subscription.trial_start);
    assert.equal(subscription.trial_end - subscription.trial_start, 14 * 86_400);
    assert.equal(subscription.items.data[0]?.current_period_end, subscription.trial_end);
    const trialInvoice = await h.stripe.invoices.retrieve(String(subscription.latest_invoice));
    assert.equal(trialInvoice.amount_due, 0);
    assert.equal(trialInvoice.status, "paid");
    assert.equal((await h.stripe.charges.list({ customer })).data.length, 0, "nothing charged for the trial");

    await h.emulator.webhooksIdle();
    let from = h.receiver.events.length;
    const warned = await advance(h.emulator, customer);
    assert.equal(warned.now, subscription.trial_end - 3 * 86_400);
    let events = await received(h, from);
    assert.deepEqual(events.map((e) => e.type), ["customer.subscription.trial_will_end"]);

    from = h.receiver.events.length;
    await advance(h.emulator, customer);
    events = await received(h, from);
    assertInOrder(events, ["customer.subscription.updated", "invoice.created", "invoice.finalized", "invoice.paid", "invoice.payment_succeeded"]);
    assert.deepEqual(only(events, "customer.subscription.updated")[0]?.data.previous_attributes?.status, "trialing");
    subscription = await h.stripe.subscriptions.retrieve(subscriptionId);
    assert.equal(subscription.status, "active");
    const firstBill = await h.stripe.invoices.retrieve(String(subscription.latest_invoice));
    assert.equal(firstBill.amount_paid, 2900);
    assert.equal(firstBill.period_start, subscription.trial_end);
    assert.deepEqual(h.receiver.rejected, []);
  });

  test("a trial whose card fails at conversion goes past_due", async () => {
    h = await startHarness();
    const { monthly } = await createCatalog(h.stripe);
    const { customer, subscription: subscriptionId } = await subscribe(h, monthly, "4000000000000341", { trialDays: 7 });
    const subscription = await h.stripe.subscriptions.retrieve(subscriptionId);
    await advance(h.emulator, customer, subscription.trial_end ?? 0);
    const after = await h.stripe.subscriptions.retrieve(subscriptionId);
    assert.equal(after.status, "past_due");
    assert.equal(after.items.data[0]?.current_period_start, subscription.trial_end);
    await h.emulator.webhooksIdle();
    const types = h.receiver.events.map((e) => e.type);
    assert.ok(types.indexOf("customer.subscription.trial_will_end") < types.indexOf("invoice.payment_failed"), "both milestones ran, in time order");
  });

  test("retries exhausted cancel the subscription (Stripe's default)", async () => {
    h = await startHarness();
    const { monthly } = await createCatalog(h.stripe);
    const { customer, subscription: subscriptionId } = await subscribe(h, monthly, "4000000000000341");
    assert.equal((await h.stripe.subscriptions.retrieve(subscriptionId)).status, "active", "the 0341 card pays on-session at checkout");
    await advance(h.emulator, customer); // renewal fails
    assert.equal((await h.stripe.subscriptions.retrieve(subscriptionId)).status, "past_due");
    for (let retry = 0; retry < 3; retry++) await advance(h.emulator, customer);
    const subscription = await h.stripe.subscriptions.retrieve(subscriptionId);
    assert.equal(subscription.status, "canceled");
    assert.equal(subscription.cancellation_details?.reason, "payment_failed");
    await h.emulator.webhooksIdle();
    const failures = h.receiver.events.filter((e) => e.type === "invoice.payment_failed");
    assert.equal(failures.length, 4, "the first attempt and three retries");
    assert.equal(h.receiver.events.at(-1)?.type, "customer.subscription.deleted");
  });

  test("retries exhausted can leave the subscription unpaid instead", async () => {
    h = await startHarness({ dunning: { finalAction: "unpaid", retryDays: [1] } });
    const { monthly } = await createCatalog(h.stripe);
    const { customer, subscription: subscriptionId } = await subscribe(h, monthly, "4000000000000341");
    await advance(h.emulator, customer);
    await advance(h.emulator, customer);
    assert.equal((await h.stripe.subscriptions.retrieve(subscriptionId)).status, "unpaid");
  });

  test("the portal switches plan and interval where its configuration allows, and cancels at once", async () => {
    h = await startHarness();
    const { monthly, annual } = await createCatalog(h.stripe);
    const { customer, subscription: subscriptionId, portal: defaultPortal } = await subscribe(h, monthly, "4242424242424242");
    // Plan switching only where the session's configuration turns it on.
    assert.doesNotMatch(await (await fetch(defaultPortal.url)).text(), /Switch plan or interval/);
    const refused = await submitPortal(defaultPortal, { action: "switch", subscription: subscriptionId, price: annual.id });
    assert.match(decodeURIComponent(refused.headers.get("location") ?? ""), /does not offer plan changes/);
    const configuration = await h.stripe.billingPortal.configurations.create({ features: { subscription_update: { enabled: true, proration_behavior: "create_prorations" } } });
    assert.equal(configuration.features.subscription_update.enabled, true);
    const portal = await h.stripe.billingPortal.sessions.create({ customer, configuration: configuration.id, return_url: "http://app.test/billing" });
    const page = await fetch(portal.url);
    const html = await page.text();
    assert.match(html, /Switch plan or interval/);
    assert.match(html, /Cancel at period end/);

    const switched = await submitPortal(portal, { action: "switch", subscription: subscriptionId, price: annual.id });
    assert.equal(switched.status, 303);
    assert.match(switched.headers.get("location") ?? "", /notice=/);
    let subscription = await h.stripe.subscriptions.retrieve(subscriptionId);
    assert.equal(subscription.items.data[0]?.price.id, annual.id);
    assert.equal(subscription.items.data[0]?.plan.interval, "year");

    const resumed = await submitPortal(portal, { action: "cancel_at_period_end", subscription: subscriptionId });
    assert.equal(resumed.status, 303);
    await submitPortal(portal, { action: "resume", subscription: subscriptionId });
    assert.equal((await h.stripe.subscriptions.retrieve(subscriptionId)).cancel_at_period_end, false);

    await submitPortal(portal, { action: "cancel_now", subscription: subscriptionId });
    subscription = await h.stripe.subscriptions.retrieve(subscriptionId);
    assert.equal(subscription.status, "canceled");
    await h.emulator.webhooksIdle();
    assert.equal(h.receiver.events.at(-1)?.type, "customer.subscription.deleted");

    const bad = await submitPortal(portal, { action: "card", card_number: "1234" });
    assert.match(bad.headers.get("location") ?? "", /error=/);
    const declined = await submitPortal(portal, { action: "card", card_number: "4000000000000002" });
    assert.match(decodeURIComponent(declined.headers.get("location") ?? ""), /declined/, "a declining card is not saved");
  });
});
