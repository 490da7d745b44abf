/**
 * Plan changes as the billing API makes them, through the real `stripe` client: a change held
 * to the period's end by a subscription schedule (the renewal at the next phase's price, a new
 * interval's period, the schedule released after its last phase starts, the preview showing
 * the next phase), a schedule released or canceled, an upgrade paid at once or refused with
 * `error_if_incomplete` when the card is declined, and the schedules surviving a restart.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, afterEach, describe, test } from "node:test";
import type Stripe from "stripe";
import { advance, createCatalog, type Harness, startHarness, stripeError, submitCheckout } from "./harness.ts";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});
const directory = mkdtempSync(path.join(tmpdir(), "stripe-emulator-plan-changes-"));
after(() => rmSync(directory, { recursive: true, force: true }));

/** A customer subscribed to `price` through Checkout with `card`. */
async function subscribe(harness: Harness, price: Stripe.Price, card = "4242424242424242") {
  const customer = (await harness.stripe.customers.create({ email: "plans@acme.test" })).id;
  const session = await harness.stripe.checkout.sessions.create({ mode: "subscription", customer, line_items: [{ price: price.id, quantity: 1 }], success_url: "http://app.test/ok" });
  assert.equal((await submitCheckout(session, card)).status, 303);
  const subscription = await harness.stripe.subscriptions.retrieve(String((await harness.stripe.checkout.sessions.retrieve(session.id)).subscription));
  return { customer, subscription, item: subscription.items.data[0]! };
}

/** Holds a change to `price` until the end of the current period, as the billing API does. */
async function scheduleChange(stripe: Stripe, subscription: Stripe.Subscription, price: Stripe.Price) {
  const item = subscription.items.data[0]!;
  const schedule = await stripe.subscriptionSchedules.create({ from_subscription: subscription.id });
  return await stripe.subscriptionSchedules.update(schedule.id, {
    end_behavior: "release",
    proration_behavior: "none",
    phases: [
      { items: [{ price: item.price.id, quantity: 1 }], start_date: schedule.phases[0]!.start_date, end_date: item.current_period_end, proration_behavior: "none" },
      { items: [{ price: price.id, quantity: 1 }], proration_behavior: "none" },
    ],
  });
}

describe("subscription schedules", () => {
  test("a downgrade held to the period's end renews at the new price, then the schedule releases", async () => {
    h = await startHarness();
    const { team, monthly } = await createCatalog(h.stripe);
    const { customer, subscription, item } = await subscribe(h, team);
    const schedule = await scheduleChange(h.stripe, subscription, monthly);
    assert.equal(schedule.status, "active");
    assert.equal(schedule.phases.length, 2);
    assert.equal(schedule.phases[1]!.start_date, item.current_period_end);
    assert.equal((await h.stripe.subscriptions.retrieve(subscription.id)).schedule, schedule.id);

    // Nothing changes now: same price, no invoice, and the preview shows the next phase.
    const now = await h.stripe.subscriptions.retrieve(subscription.id);
    assert.equal(now.items.data[0]!.price.id, team.id);
    assert.equal((await h.stripe.invoices.list({ subscription: subscription.id })).data.length, 1);
    const preview = await h.stripe.invoices.createPreview({ customer, subscription: subscription.id });
    assert.equal(preview.amount_due, 2900);
    assert.equal(preview.lines.data[0]!.pricing?.price_details?.price, monthly.id);

    await advance(h.emulator, customer);
    const renewed = await h.stripe.subscriptions.retrieve(subscription.id);
    assert.equal(renewed.items.data[0]!.price.id, monthly.id);
    assert.equal(renewed.items.data[0]!.current_period_start, item.current_period_end);
    assert.equal(renewed.schedule, null, "after its last phase starts the schedule lets the subscription go");
    const invoice = (await h.stripe.invoices.list({ subscription: subscription.id, limit: 1 })).data[0]!;
    assert.equal(invoice.billing_reason, "subscription_cycle");
    assert.equal(invoice.amount_paid, 2900, "the renewal is at the new price, with no proration");
    assert.equal((await h.stripe.subscriptionSchedules.retrieve(schedule.id)).status, "released");

    await h.emulator.webhooksIdle();
    const types = h.receiver.events.map((event) => event.type);
    for (const type of ["subscription_schedule.created", "subscription_schedule.updated", "subscription_schedule.released"]) {
      assert.ok(types.includes(type as Stripe.Event.Type), `${type} was sent`);
    }
  });

  test("an interval change held to the period's end starts a yearly period at the renewal", async () => {
    h = await startHarness();
    const { monthly, annual } = await createCatalog(h.stripe);
    const { customer, subscription, item } = await subscribe(h, monthly);
    await scheduleChange(h.stripe, subscription, annual);
    const preview = await h.stripe.invoices.createPreview({ customer, subscription: subscription.id });
    assert.equal(preview.amount_due, 29000);
    await advance(h.emulator, customer);
    const renewed = (await h.stripe.subscriptions.retrieve(subscription.id)).items.data[0]!;
    assert.equal(renewed.price.id, annual.id);
    assert.equal(renewed.current_period_start, item.current_period_end);
    const start = new Date(item.current_period_end * 1000);
    assert.equal(renewed.current_period_end, Date.UTC(start.getUTCFullYear() + 1, start.getUTCMonth(), start.getUTCDate(), start.getUTCHours(), start.getUTCMinutes(), start.getUTCSeconds()) / 1000);
  });

  test("changing again replaces the next phase; releasing keeps the subscription as it is", async () => {
    h = await startHarness();
    const { team, monthly, annual } = await createCatalog(h.stripe);
    const { customer, subscription } = await subscribe(h, team);
    await scheduleChange(h.stripe, subscription, monthly);
    const replaced = await scheduleChange(h.stripe, await h.stripe.subscriptions.retrieve(subscription.id), annual).catch((error) => error);
    assert.ok(replaced instanceof Error, "a second schedule for one subscription is refused");
    const schedule = await h.stripe.subscriptionSchedules.retrieve(String((await h.stripe.subscriptions.retrieve(subscription.id)).schedule));
    const item = subscription.items.data[0]!;
    const updated = await h.stripe.subscriptionSchedules.update(schedule.id, {
      phases: [
        { items: [{ price: team.id, quantity: 1 }], start_date: schedule.phases[0]!.start_date, end_date: item.current_period_end },
        { items: [{ price: annual.id, quantity: 1 }] },
      ],
    });
    assert.equal((updated.phases[1]!.items[0]!.price as string), annual.id);

    const released = await h.stripe.subscriptionSchedules.release(schedule.id);
    assert.equal(released.status, "released");
    assert.equal(released.released_subscription, subscription.id);
    assert.equal((await h.stripe.subscriptions.retrieve(subscription.id)).schedule, null);
    await advance(h.emulator, customer);
    assert.equal((await h.stripe.subscriptions.retrieve(subscription.id)).items.data[0]!.price.id, team.id, "a released schedule changes nothing at the renewal");
    assert.equal((await stripeError(h.stripe.subscriptionSchedules.release(schedule.id))).statusCode, 400);
  });

  test("a phase boundary the emulator cannot honour is refused, not run at the wrong time", async () => {
    h = await startHarness();
    const { team, monthly } = await createCatalog(h.stripe);
    const { subscription, item } = await subscribe(h, team);
    const schedule = await h.stripe.subscriptionSchedules.create({ from_subscription: subscription.id });
    const early = await stripeError(h.stripe.subscriptionSchedules.update(schedule.id, {
      phases: [
        { items: [{ price: team.id, quantity: 1 }], start_date: schedule.phases[0]!.start_date, end_date: item.current_period_end - 86_400 },
        { items: [{ price: monthly.id, quantity: 1 }] },
      ],
    }));
    assert.equal(early.statusCode, 400);
    const cancelAtEnd = await stripeError(h.stripe.subscriptions.update(subscription.id, { cancel_at_period_end: true }));
    assert.match(cancelAtEnd.message, /managed by the subscription schedule/);
  });

  test("canceling a schedule cancels its subscription", async () => {
    h = await startHarness();
    const { team, monthly } = await createCatalog(h.stripe);
    const { subscription } = await subscribe(h, team);
    const schedule = await scheduleChange(h.stripe, subscription, monthly);
    assert.equal((await h.stripe.subscriptionSchedules.cancel(schedule.id)).status, "canceled");
    assert.equal((await h.stripe.subscriptions.retrieve(subscription.id)).status, "canceled");
  });

  test("schedules survive a restart", async () => {
    const stateFile = path.join(directory, "state.jsonl");
    h = await startHarness({ stateFile });
    const { team, monthly } = await createCatalog(h.stripe);
    const { customer, subscription } = await subscribe(h, team);
    const schedule = await scheduleChange(h.stripe, subscription, monthly);
    await h.close();
    h = await startHarness({ stateFile });
    assert.deepEqual(await h.stripe.subscriptionSchedules.retrieve(schedule.id), schedule);
    await advance(h.emulator, customer);
    assert.equal((await h.stripe.subscriptions.retrieve(subscription.id)).items.data[0]!.price.id, monthly.id);
  });
});

describe("upgrades paid at once", () => {
  test("always_invoice at a proration date charges the preview's amount", async () => {
    h = await startHarness();
    const { monthly, team } = await createCatalog(h.stripe);
    const { customer, subscription, item } = await subscribe(h, monthly);
    const prorationDate = item.current_period_start + Math.floor((item.current_period_end - item.current_period_start) / 3);
    const details = { items: [{ id: item.id, price: team.id }], proration_behavior: "always_invoice" as const, proration_date: prorationDate };
    const preview = await h.stripe.invoices.createPreview({ customer, subscription: subscription.id, subscription_details: details });
    assert.ok(preview.amount_due > 0);
    assert.ok(preview.lines.data.every((line) => line.parent?.subscription_item_details?.proration));
    await h.stripe.subscriptions.update(subscription.id, { ...details, payment_behavior: "error_if_incomplete" });
    const invoice = (await h.stripe.invoices.list({ subscription: subscription.id, limit: 1 })).data[0]!;
    assert.equal(invoice.billing_reason, "subscription_update");
    assert.equal(invoice.status, "paid");
    assert.equal(invoice.amount_paid, preview.amount_due);
  });

  test("error_if_incomplete with a declined card: 402 card_declined, nothing changed, no invoice left open", async () => {
    h = await startHarness();
    const { monthly, team } = await createCatalog(h.stripe);
    // Pays at Checkout, declined for every later (off-session) charge.
    const { customer, subscription, item } = await subscribe(h, monthly, "4000000000000341");
    const error = await stripeError(h.stripe.subscriptions.update(subscription.id, {
      items: [{ id: item.id, price: team.id }],
      proration_behavior: "always_invoice",
      payment_behavior: "error_if_incomplete",
    }));
    assert.equal(error.statusCode, 402);
    assert.equal(error.code, "card_declined");
    const after = await h.stripe.subscriptions.retrieve(subscription.id);
    assert.equal(after.items.data[0]!.price.id, monthly.id);
    assert.equal(after.status, "active");
    assert.equal(after.latest_invoice, subscription.latest_invoice);
    assert.equal((await h.stripe.invoices.list({ subscription: subscription.id, status: "open" })).data.length, 0);
    assert.equal((await h.stripe.customers.retrieve(customer) as Stripe.Customer).balance, 0);
    await h.emulator.webhooksIdle();
    assert.ok(!h.receiver.events.some((event) => event.type === "customer.subscription.updated" && (event.data.object as Stripe.Subscription).items.data[0]!.price.id === team.id), "no event announces the refused change");
  });
});
