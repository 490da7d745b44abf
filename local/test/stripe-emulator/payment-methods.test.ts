/**
 * Saved cards through the real `stripe` client: Checkout saves the card when the session asks
 * for it (setup_future_usage, the "save my card" offer) or starts a subscription, and not
 * otherwise; the customer's default card; listing, attaching and detaching; the portal's card
 * swap. Events are checked as the webhook receiver got them, verified.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import Stripe from "stripe";
import { createCatalog, type Harness, payCheckout, startHarness, stripeError, submitPortal } from "./harness.ts";

let h: Harness;
let pack: Stripe.Price;
let monthly: Stripe.Price;
before(async () => {
  h = await startHarness();
  ({ pack, monthly } = await createCatalog(h.stripe));
});
after(async () => {
  await h.close();
});

async function newCustomer(): Promise<Stripe.Customer> {
  return h.stripe.customers.create({ email: `cards-${Math.random().toString(36).slice(2)}@acme.test` });
}

/** Types of the events about this customer delivered since `from`, in arrival order. */
async function eventsOf(customer: string, from: number): Promise<Stripe.Event[]> {
  await h.emulator.webhooksIdle();
  return h.receiver.events.slice(from).filter((e) => {
    const object = e.data.object as { id?: string; object?: string; customer?: unknown };
    return object.customer === customer || (object.object === "customer" && object.id === customer);
  });
}

async function packSession(customer: string, extra: Partial<Stripe.Checkout.SessionCreateParams> = {}): Promise<Stripe.Checkout.Session> {
  return h.stripe.checkout.sessions.create({ mode: "payment", customer, line_items: [{ price: pack.id, quantity: 1 }], success_url: "http://app.test/ok", ...extra });
}

async function pay(session: Stripe.Checkout.Session, card: string, body: Record<string, unknown> = {}): Promise<void> {
  const response = await fetch(`${h.emulator.url}/_emulator/checkout/${session.id}/pay`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ card_number: card, ...body }) });
  assert.equal(response.status, 200, await response.text());
}

describe("cards saved at Checkout", () => {
  test("a pack Checkout with setup_future_usage saves the card to the customer (brand, last4, expiry), without making it the default", async () => {
    const customer = await newCustomer();
    await h.emulator.webhooksIdle();
    const from = h.receiver.events.length;
    const session = await packSession(customer.id, { payment_intent_data: { setup_future_usage: "off_session", metadata: { organization_id: "org_c" } } });
    await pay(session, "4242 4242 4242 4242");

    const cards = await h.stripe.paymentMethods.list({ customer: customer.id, type: "card" });
    assert.equal(cards.data.length, 1);
    const card = cards.data[0] as Stripe.PaymentMethod;
    assert.match(card.id, /^pm_/);
    assert.equal(card.customer, customer.id);
    assert.equal(card.card?.brand, "visa");
    assert.equal(card.card?.last4, "4242");
    assert.ok((card.card?.exp_year ?? 0) > new Date().getUTCFullYear() && (card.card?.exp_month ?? 0) >= 1);
    assert.deepEqual((await h.stripe.paymentMethods.retrieve(card.id)).id, card.id);
    assert.deepEqual((await h.stripe.customers.listPaymentMethods(customer.id)).data.map((pm) => pm.id), [card.id]);

    const intent = await h.stripe.paymentIntents.retrieve(String((await h.stripe.checkout.sessions.retrieve(session.id)).payment_intent));
    assert.equal(intent.payment_method, card.id, "the pack was paid with the saved card");
    assert.equal(intent.setup_future_usage, "off_session");
    const fetched = (await h.stripe.customers.retrieve(customer.id)) as Stripe.Customer;
    assert.equal(fetched.invoice_settings.default_payment_method, null, "Stripe leaves the default to the integration");

    const types = (await eventsOf(customer.id, from)).map((e) => e.type);
    assert.deepEqual(types, ["payment_method.attached", "checkout.session.completed", "payment_intent.succeeded", "charge.succeeded"]);
  });

  test("a pack Checkout that does not ask to save the card leaves it unattached", async () => {
    const customer = await newCustomer();
    const session = await packSession(customer.id);
    await pay(session, "4242424242424242");
    assert.deepEqual((await h.stripe.paymentMethods.list({ customer: customer.id, type: "card" })).data, []);
    const intent = await h.stripe.paymentIntents.retrieve(String((await h.stripe.checkout.sessions.retrieve(session.id)).payment_intent));
    assert.equal((await h.stripe.paymentMethods.retrieve(String(intent.payment_method))).customer, null);
  });

  test("saved_payment_method_options saves the card only when the customer ticks the box", async () => {
    const customer = await newCustomer();
    const declined = await packSession(customer.id, { saved_payment_method_options: { payment_method_save: "enabled" } });
    assert.equal(declined.saved_payment_method_options?.payment_method_save, "enabled");
    await pay(declined, "4242424242424242");
    assert.equal((await h.stripe.paymentMethods.list({ customer: customer.id })).data.length, 0);
    const accepted = await packSession(customer.id, { saved_payment_method_options: { payment_method_save: "enabled" } });
    await pay(accepted, "4242424242424242", { save_card: true });
    assert.equal((await h.stripe.paymentMethods.list({ customer: customer.id })).data.length, 1);
    // The hosted page offers the same choice as a checkbox.
    const onPage = await packSession(customer.id, { saved_payment_method_options: { payment_method_save: "enabled" } });
    assert.match(await (await fetch(String(onPage.url))).text(), /name="save_card"/);
    const submitted = await fetch(String(onPage.url), { method: "POST", redirect: "manual", body: new URLSearchParams({ card_number: "4242424242424242", save_card: "true" }), headers: { "content-type": "application/x-www-form-urlencoded" } });
    assert.equal(submitted.status, 303);
    assert.equal((await h.stripe.paymentMethods.list({ customer: customer.id })).data.length, 2);
  });

  test("saving a card needs a customer", async () => {
    const error = await stripeError(h.stripe.checkout.sessions.create({ mode: "payment", line_items: [{ price: pack.id }], payment_intent_data: { setup_future_usage: "off_session" }, success_url: "http://app.test/ok" }));
    assert.equal(error.statusCode, 400);
    assert.equal(error.param, "payment_intent_data[setup_future_usage]");
  });

  test("a subscription Checkout saves the card and charges the subscription with it", async () => {
    const customer = await newCustomer();
    await h.emulator.webhooksIdle();
    const from = h.receiver.events.length;
    const session = await h.stripe.checkout.sessions.create({ mode: "subscription", customer: customer.id, line_items: [{ price: monthly.id }], success_url: "http://app.test/ok" });
    assert.equal((await payCheckout(h.emulator.url, session.id, "4000000000000341")).status, 200);
    const cards = await h.stripe.paymentMethods.list({ customer: customer.id, type: "card" });
    assert.equal(cards.data[0]?.card?.last4, "0341");
    const subscription = await h.stripe.subscriptions.retrieve(String((await h.stripe.checkout.sessions.retrieve(session.id)).subscription));
    assert.equal(subscription.default_payment_method, cards.data[0]?.id);
    const types = (await eventsOf(customer.id, from)).map((e) => e.type);
    assert.ok(types.indexOf("payment_method.attached") < types.indexOf("checkout.session.completed"), types.join(", "));
  });
});

describe("the customer's default card", () => {
  test("customers.update sets invoice_settings.default_payment_method (customer.updated); another customer's card is refused", async () => {
    const customer = await newCustomer();
    await pay(await packSession(customer.id, { payment_intent_data: { setup_future_usage: "off_session" } }), "4242424242424242");
    const card = (await h.stripe.paymentMethods.list({ customer: customer.id, type: "card" })).data[0] as Stripe.PaymentMethod;
    await h.emulator.webhooksIdle();
    const from = h.receiver.events.length;

    const updated = await h.stripe.customers.update(customer.id, { invoice_settings: { default_payment_method: card.id } });
    assert.equal(updated.invoice_settings.default_payment_method, card.id);
    const fetched = (await h.stripe.customers.retrieve(customer.id, { expand: ["invoice_settings.default_payment_method"] })) as Stripe.Customer;
    assert.equal((fetched.invoice_settings.default_payment_method as Stripe.PaymentMethod).card?.last4, "4242");
    const events = await eventsOf(customer.id, from);
    assert.deepEqual(events.map((e) => e.type), ["customer.updated"]);
    assert.deepEqual(events[0]?.data.previous_attributes, { invoice_settings: { default_payment_method: null } });

    const stranger = await newCustomer();
    const refused = await stripeError(h.stripe.customers.update(stranger.id, { invoice_settings: { default_payment_method: card.id } }));
    assert.equal(refused.statusCode, 400);
    assert.equal(refused.param, "invoice_settings[default_payment_method]");
    assert.equal(((await h.stripe.customers.retrieve(stranger.id)) as Stripe.Customer).invoice_settings.default_payment_method, null, "nothing changed");
  });

  test("attach and detach a test payment method (pm_card_visa); detaching the default clears it", async () => {
    const customer = await newCustomer();
    const attached = await h.stripe.paymentMethods.attach("pm_card_visa", { customer: customer.id });
    assert.match(attached.id, /^pm_/);
    assert.notEqual(attached.id, "pm_card_visa", "a test id makes a new payment method each time, as on Stripe");
    assert.equal(attached.customer, customer.id);
    await h.stripe.customers.update(customer.id, { invoice_settings: { default_payment_method: attached.id } });
    const detached = await h.stripe.paymentMethods.detach(attached.id);
    assert.equal(detached.customer, null);
    assert.equal(((await h.stripe.customers.retrieve(customer.id)) as Stripe.Customer).invoice_settings.default_payment_method, null);
    assert.deepEqual((await h.stripe.paymentMethods.list({ customer: customer.id })).data, []);
    const declined = await stripeError(h.stripe.paymentMethods.attach("pm_card_visa_chargeDeclined", { customer: customer.id }));
    assert.equal(declined.statusCode, 402);
    assert.equal(declined.code, "card_declined");
  });

  test("the portal replaces the card: saved, the customer's and the subscription's default, with payment_method.attached and customer.updated", async () => {
    const customer = await newCustomer();
    const session = await h.stripe.checkout.sessions.create({ mode: "subscription", customer: customer.id, line_items: [{ price: monthly.id }], success_url: "http://app.test/ok" });
    await payCheckout(h.emulator.url, session.id, "4242424242424242");
    const subscriptionId = String((await h.stripe.checkout.sessions.retrieve(session.id)).subscription);
    const portal = await h.stripe.billingPortal.sessions.create({ customer: customer.id, return_url: "http://app.test/billing" });
    assert.match(await (await fetch(portal.url)).text(), /visa ending in 4242, expires 12\//);
    await h.emulator.webhooksIdle();
    const from = h.receiver.events.length;

    const response = await submitPortal(portal, { action: "card", card_number: "4000 0027 6000 3184" });
    assert.equal(response.status, 303);
    assert.match(String(response.headers.get("location")), /notice=Card%20replaced/);

    const fetched = (await h.stripe.customers.retrieve(customer.id)) as Stripe.Customer;
    const card = await h.stripe.paymentMethods.retrieve(String(fetched.invoice_settings.default_payment_method));
    assert.equal(card.card?.last4, "3184");
    assert.equal((await h.stripe.subscriptions.retrieve(subscriptionId)).default_payment_method, card.id);
    assert.equal((await h.stripe.paymentMethods.list({ customer: customer.id, type: "card" })).data.length, 2, "the old card stays saved");
    const events = await eventsOf(customer.id, from);
    assert.deepEqual(events.map((e) => e.type), ["payment_method.attached", "customer.updated", "customer.subscription.updated"]);
    assert.equal((events[0]?.data.object as Stripe.PaymentMethod).id, card.id);
    assert.match(await (await fetch(portal.url)).text(), /visa ending in 3184/);
  });
});
