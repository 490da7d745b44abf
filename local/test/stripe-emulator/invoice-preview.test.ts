/**
 * `invoices.createPreview` through the real `stripe` client: a subscription's next invoice,
 * and the invoice a plan change would make (proration lines included), checked against the
 * invoice the emulator then really makes, so a preview shown to a customer is what they pay.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import Stripe from "stripe";
import { advance, createCatalog, type Harness, payCheckout, startHarness, stripeError } from "./harness.ts";

let h: Harness;
let catalog: Awaited<ReturnType<typeof createCatalog>>;
before(async () => {
  h = await startHarness();
  catalog = await createCatalog(h.stripe);
});
after(async () => {
  await h.close();
});

/** A paid monthly subscription, its clock moved to the middle of its first period. */
async function subscribed(price: Stripe.Price): Promise<{ customer: string; subscription: Stripe.Subscription; midPeriod: number }> {
  const customer = (await h.stripe.customers.create({ email: `preview-${randomUUID()}@acme.test` })).id;
  const session = await h.stripe.checkout.sessions.create({ mode: "subscription", customer, line_items: [{ price: price.id }], success_url: "http://app.test/ok" });
  assert.equal((await payCheckout(h.emulator.url, session.id)).status, 200);
  let subscription = await h.stripe.subscriptions.retrieve(String((await h.stripe.checkout.sessions.retrieve(session.id)).subscription));
  const item = subscription.items.data[0] as Stripe.SubscriptionItem;
  const midPeriod = Math.floor((item.current_period_start + item.current_period_end) / 2);
  await advance(h.emulator, customer, midPeriod);
  subscription = await h.stripe.subscriptions.retrieve(subscription.id);
  return { customer, subscription, midPeriod };
}

function itemOf(subscription: Stripe.Subscription): Stripe.SubscriptionItem {
  return subscription.items.data[0] as Stripe.SubscriptionItem;
}

function isProration(line: Stripe.InvoiceLineItem): boolean {
  return line.parent?.subscription_item_details?.proration === true;
}

describe("invoice preview", () => {
  test("the next invoice of a subscription: its next period at its price, charged at the renewal, and not saved", async () => {
    const { customer, subscription } = await subscribed(catalog.monthly);
    const item = itemOf(subscription);
    const preview = await h.stripe.invoices.createPreview({ customer, subscription: subscription.id });
    assert.equal(preview.object, "invoice");
    assert.equal(preview.amount_due, 2900);
    assert.equal(preview.currency, "usd");
    assert.equal(preview.customer, customer);
    assert.equal(preview.parent?.subscription_details?.subscription, subscription.id);
    assert.equal(preview.billing_reason, "upcoming");
    assert.equal(preview.next_payment_attempt, item.current_period_end);
    assert.equal(preview.lines.data.length, 1);
    assert.deepEqual(preview.lines.data[0]?.period.start, item.current_period_end);
    assert.ok((preview.lines.data[0]?.period.end ?? 0) > item.current_period_end);
    assert.ok(!(await h.stripe.invoices.list({ customer, limit: 100 })).data.some((i) => i.id === preview.id), "a preview is not an invoice");
  });

  test("a plan change previewed with create_prorations (unused time credited, remaining time charged, then the new price) is what the renewal bills", async () => {
    const { customer, subscription, midPeriod } = await subscribed(catalog.monthly);
    const item = itemOf(subscription);
    const details = { items: [{ id: item.id, price: catalog.team.id }], proration_behavior: "create_prorations" as const, proration_date: midPeriod };
    const preview = await h.stripe.invoices.createPreview({ customer, subscription: subscription.id, subscription_details: details });
    const prorations = preview.lines.data.filter(isProration);
    assert.equal(prorations.length, 2);
    const remaining = (item.current_period_end - midPeriod) / (item.current_period_end - item.current_period_start);
    assert.equal(prorations[0]?.amount, -Math.round(2900 * remaining));
    assert.equal(prorations[1]?.amount, Math.round(9900 * remaining));
    const next = preview.lines.data.filter((line) => !isProration(line));
    assert.deepEqual(next.map((line) => line.amount), [9900]);
    assert.equal(preview.amount_due, prorations.reduce((sum, line) => sum + line.amount, 0) + 9900);
    assert.equal(itemOf(await h.stripe.subscriptions.retrieve(subscription.id)).price.id, catalog.monthly.id, "a preview changes nothing");

    await h.stripe.subscriptions.update(subscription.id, details);
    await advance(h.emulator, customer);
    const renewal = await h.stripe.invoices.retrieve(String((await h.stripe.subscriptions.retrieve(subscription.id)).latest_invoice));
    assert.equal(renewal.billing_reason, "subscription_cycle");
    assert.equal(renewal.amount_due, preview.amount_due);
    assert.deepEqual(renewal.lines.data.map((line) => line.amount), preview.lines.data.map((line) => line.amount));
  });

  test("always_invoice previews the invoice made at once, waiting prorations included, and the update makes exactly it", async () => {
    const { customer, subscription, midPeriod } = await subscribed(catalog.monthly);
    const item = itemOf(subscription);
    // An earlier change whose prorations wait for the next invoice...
    await h.stripe.subscriptions.update(subscription.id, { items: [{ id: item.id, price: catalog.team.id }], proration_behavior: "create_prorations", proration_date: midPeriod });
    // ...are swept into the invoice an always_invoice change makes now, as on Stripe.
    const details = { items: [{ id: item.id, price: catalog.monthly.id }], proration_behavior: "always_invoice" as const, proration_date: midPeriod };
    const preview = await h.stripe.invoices.createPreview({ customer, subscription: subscription.id, subscription_details: details });
    assert.equal(preview.lines.data.length, 4);
    assert.ok(preview.lines.data.every(isProration));
    assert.equal(preview.next_payment_attempt, preview.created);
    const net = preview.lines.data.reduce((sum, line) => sum + line.amount, 0);
    assert.equal(net, 0, "up and back down in the same instant nets to zero");

    const updated = await h.stripe.subscriptions.update(subscription.id, details);
    const invoice = await h.stripe.invoices.retrieve(String(updated.latest_invoice));
    assert.equal(invoice.billing_reason, "subscription_update");
    assert.deepEqual(invoice.lines.data.map((line) => line.amount), preview.lines.data.map((line) => line.amount));
    await advance(h.emulator, customer);
    const renewal = await h.stripe.invoices.retrieve(String((await h.stripe.subscriptions.retrieve(subscription.id)).latest_invoice));
    assert.deepEqual(renewal.lines.data.map((line) => line.amount), [2900], "nothing left over for the renewal");
  });

  test("a downgrade's credit lands in the customer's balance and pays the next invoice, in the preview and for real", async () => {
    const { customer, subscription, midPeriod } = await subscribed(catalog.team);
    const item = itemOf(subscription);
    await h.stripe.subscriptions.update(subscription.id, { items: [{ id: item.id, price: catalog.monthly.id }], proration_behavior: "always_invoice", proration_date: midPeriod });
    const balance = ((await h.stripe.customers.retrieve(customer)) as Stripe.Customer).balance;
    assert.ok(balance < 0, `a net credit, got ${balance}`);
    const preview = await h.stripe.invoices.createPreview({ customer, subscription: subscription.id });
    assert.equal(preview.starting_balance, balance);
    assert.equal(preview.total, 2900);
    assert.equal(preview.amount_due, Math.max(0, 2900 + balance));
    await advance(h.emulator, customer);
    const renewal = await h.stripe.invoices.retrieve(String((await h.stripe.subscriptions.retrieve(subscription.id)).latest_invoice));
    assert.equal(renewal.amount_due, preview.amount_due);
    assert.equal(renewal.starting_balance, balance);
    assert.equal(((await h.stripe.customers.retrieve(customer)) as Stripe.Customer).balance, preview.ending_balance);
  });

  test("what cannot be previewed is a 400 or 404, not a made-up invoice", async () => {
    const { customer, subscription } = await subscribed(catalog.monthly);
    const unknown = await stripeError(h.stripe.invoices.createPreview({ customer, subscription: subscription.id, subscription_details: { items: [{ id: itemOf(subscription).id, price: "price_nothing" }] } }));
    assert.equal(unknown.statusCode, 404);
    assert.equal(unknown.param, "subscription_details[items][0][price]");
    const oneTime = await stripeError(h.stripe.invoices.createPreview({ subscription: subscription.id, subscription_details: { items: [{ id: itemOf(subscription).id, price: catalog.pack.id }] } }));
    assert.equal(oneTime.statusCode, 400);
    const someoneElse = await stripeError(h.stripe.invoices.createPreview({ customer: (await h.stripe.customers.create({})).id, subscription: subscription.id }));
    assert.equal(someoneElse.param, "customer");
    await h.stripe.subscriptions.update(subscription.id, { cancel_at_period_end: true });
    assert.equal((await stripeError(h.stripe.invoices.createPreview({ subscription: subscription.id }))).code, "invoice_upcoming_none");
    await h.stripe.subscriptions.cancel(subscription.id);
    assert.equal((await stripeError(h.stripe.invoices.createPreview({ subscription: subscription.id }))).statusCode, 400);
  });
});
