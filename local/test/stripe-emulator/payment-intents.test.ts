/**
 * Off-session PaymentIntents through the real `stripe` client, as an auto top-up makes them:
 * a card saved at Checkout, then `paymentIntents.create({..., off_session: true, confirm:
 * true}, {idempotencyKey})`. Each of Stripe's test cards gives Stripe's outcome (the response
 * or the StripeCardError, the PaymentIntent's state) and Stripe's events in order; an
 * idempotency key replays the first answer; a payment that needs authentication is completed
 * on the hosted authentication page.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import Stripe from "stripe";
import { createCatalog, type Harness, startHarness, stripeError } from "./harness.ts";

let h: Harness;
let pack: Stripe.Price;
before(async () => {
  h = await startHarness();
  ({ pack } = await createCatalog(h.stripe));
});
after(async () => {
  await h.close();
});

/** A customer with `cardNumber` saved at a pack Checkout (setup_future_usage) and made its default card. */
async function customerWithCard(cardNumber: string): Promise<{ customer: string; card: string }> {
  const customer = await h.stripe.customers.create({ email: `topup-${randomUUID()}@acme.test` });
  const session = await h.stripe.checkout.sessions.create({ mode: "payment", customer: customer.id, line_items: [{ price: pack.id }], payment_intent_data: { setup_future_usage: "off_session" }, success_url: "http://app.test/ok" });
  const paid = await fetch(`${h.emulator.url}/_emulator/checkout/${session.id}/pay`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ card_number: cardNumber }) });
  assert.equal(paid.status, 200, await paid.text());
  const card = (await h.stripe.paymentMethods.list({ customer: customer.id, type: "card" })).data[0];
  assert.ok(card, "the card was saved at Checkout");
  await h.stripe.customers.update(customer.id, { invoice_settings: { default_payment_method: card.id } });
  await h.emulator.webhooksIdle();
  return { customer: customer.id, card: card.id };
}

function topUp(customer: string, card: string, idempotencyKey = `topup-${randomUUID()}`) {
  return h.stripe.paymentIntents.create(
    { amount: 1000, currency: "usd", customer, payment_method: card, off_session: true, confirm: true, metadata: { organization_id: "org_t", kind: "auto_top_up" } },
    { idempotencyKey },
  );
}

/** The events about this PaymentIntent the receiver got since `from`. */
async function eventsOf(paymentIntent: string, from: number): Promise<Stripe.Event[]> {
  await h.emulator.webhooksIdle();
  return h.receiver.events.slice(from).filter((e) => {
    const object = e.data.object as { id?: string; payment_intent?: unknown };
    return object.id === paymentIntent || object.payment_intent === paymentIntent;
  });
}

async function cardError(promise: Promise<unknown>): Promise<Stripe.errors.StripeCardError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof Stripe.errors.StripeCardError, `expected a StripeCardError, got ${String(error)}`);
    return error;
  }
  assert.fail("expected the payment to fail");
}

describe("off-session PaymentIntents on a saved card", () => {
  test("4242 4242 4242 4242 succeeds at once: payment_intent.created, charge.succeeded, payment_intent.succeeded", async () => {
    const { customer, card } = await customerWithCard("4242424242424242");
    const from = h.receiver.events.length;
    const intent = await topUp(customer, card);
    assert.equal(intent.status, "succeeded");
    assert.equal(intent.amount_received, 1000);
    assert.equal(intent.customer, customer);
    assert.equal(intent.payment_method, card);
    assert.deepEqual(intent.metadata, { organization_id: "org_t", kind: "auto_top_up" });
    const charge = await h.stripe.charges.retrieve(String(intent.latest_charge));
    assert.equal(charge.status, "succeeded");
    assert.equal(charge.payment_method_details?.card?.last4, "4242");
    const events = await eventsOf(intent.id, from);
    assert.deepEqual(events.map((e) => e.type), ["payment_intent.created", "charge.succeeded", "payment_intent.succeeded"]);
    const succeeded = events[2]?.data.object as Stripe.PaymentIntent;
    assert.equal(succeeded.status, "succeeded");
    assert.deepEqual(succeeded.metadata, intent.metadata, "the webhook sees the metadata that names the top-up");
  });

  test("4000 0000 0000 0341 was saved but fails off-session: a 402 card_declined carrying the PaymentIntent, charge.failed, payment_intent.payment_failed", async () => {
    const { customer, card } = await customerWithCard("4000000000000341");
    const from = h.receiver.events.length;
    const error = await cardError(topUp(customer, card));
    assert.equal(error.statusCode, 402);
    assert.equal(error.code, "card_declined");
    assert.equal(error.decline_code, "generic_decline");
    const intent = error.payment_intent;
    assert.ok(intent, "the error carries the PaymentIntent, as Stripe's does");
    assert.equal(intent.status, "requires_payment_method");
    assert.equal(intent.last_payment_error?.code, "card_declined");
    assert.equal((await h.stripe.paymentIntents.retrieve(intent.id)).status, "requires_payment_method");
    const events = await eventsOf(intent.id, from);
    assert.deepEqual(events.map((e) => e.type), ["payment_intent.created", "charge.failed", "payment_intent.payment_failed"]);
    const failed = events[2]?.data.object as Stripe.PaymentIntent;
    assert.equal(failed.last_payment_error?.code, "card_declined");
    assert.deepEqual(failed.metadata, { organization_id: "org_t", kind: "auto_top_up" });
  });

  test("4000 0027 6000 3184 needs authentication: 402 authentication_required; the hosted page completes it with payment_intent.succeeded", async () => {
    const { customer, card } = await customerWithCard("4000 0027 6000 3184");
    const from = h.receiver.events.length;
    const error = await cardError(topUp(customer, card));
    assert.equal(error.statusCode, 402);
    assert.equal(error.code, "authentication_required");
    assert.equal(error.decline_code, "authentication_required");
    const intent = await h.stripe.paymentIntents.retrieve(String(error.payment_intent?.id));
    assert.equal(intent.status, "requires_payment_method");
    assert.equal(intent.last_payment_error?.code, "authentication_required");
    assert.equal((intent.last_payment_error?.payment_method as Stripe.PaymentMethod | undefined)?.id, card, "the card to authenticate is named on the error");
    let events = await eventsOf(intent.id, from);
    assert.deepEqual(events.map((e) => e.type), ["payment_intent.created", "charge.failed", "payment_intent.payment_failed"]);
    assert.equal((events[2]?.data.object as Stripe.PaymentIntent).last_payment_error?.code, "authentication_required");

    // The link an owner's email carries: the customer confirms with their bank, the card is charged.
    const link = `${h.emulator.url}/payment_intents/${intent.id}/authenticate`;
    const page = await fetch(link);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /\$10\.00[\s\S]*ending in 3184/);
    const submitted = await fetch(link, { method: "POST", body: new URLSearchParams({ outcome: "complete" }), headers: { "content-type": "application/x-www-form-urlencoded" } });
    assert.equal(submitted.status, 200);
    assert.match(await submitted.text(), /Payment complete/);
    const done = await h.stripe.paymentIntents.retrieve(intent.id);
    assert.equal(done.status, "succeeded");
    assert.equal(done.amount_received, 1000);
    events = await eventsOf(intent.id, from);
    assert.deepEqual(events.slice(3).map((e) => e.type), ["charge.succeeded", "payment_intent.succeeded"]);
    assert.equal((await fetch(link)).status, 409, "a completed payment has nothing left to authenticate");
  });

  test("the same idempotency key replays the first answer (a success or a decline) and charges once", async () => {
    const good = await customerWithCard("4242424242424242");
    const key = `topup-${randomUUID()}`;
    const first = await topUp(good.customer, good.card, key);
    const again = await topUp(good.customer, good.card, key);
    assert.equal(again.id, first.id);
    assert.equal(again.lastResponse.headers["idempotent-replayed"], "true");
    assert.equal((await h.stripe.paymentIntents.list({ customer: good.customer })).data.filter((pi) => pi.metadata.kind === "auto_top_up").length, 1);
    assert.equal((await h.stripe.charges.list({ payment_intent: first.id })).data.length, 1);

    const bad = await customerWithCard("4000000000000341");
    const declineKey = `topup-${randomUUID()}`;
    const firstError = await cardError(topUp(bad.customer, bad.card, declineKey));
    const replayed = await cardError(topUp(bad.customer, bad.card, declineKey));
    assert.equal(replayed.payment_intent?.id, firstError.payment_intent?.id);
    assert.equal((await h.stripe.charges.list({ customer: bad.customer })).data.filter((c) => c.status === "failed").length, 1, "one attempt, not two");

    const conflict = await stripeError(h.stripe.paymentIntents.create({ amount: 2000, currency: "usd", customer: good.customer, payment_method: good.card, off_session: true, confirm: true }, { idempotencyKey: key }));
    assert.equal(conflict.type, "StripeIdempotencyError");
  });
});

describe("on-session PaymentIntents and bad input", () => {
  test("an on-session confirmation of a card that needs authentication waits for it (requires_action, redirect_to_url) and returns to return_url", async () => {
    const { customer, card } = await customerWithCard("4000002760003184");
    const from = h.receiver.events.length;
    const created = await h.stripe.paymentIntents.create({ amount: 1500, currency: "usd", customer, payment_method: card });
    assert.equal(created.status, "requires_confirmation");
    const confirmed = await h.stripe.paymentIntents.confirm(created.id, { return_url: "http://app.test/credits" });
    assert.equal(confirmed.status, "requires_action");
    assert.equal(confirmed.next_action?.type, "redirect_to_url");
    const url = String(confirmed.next_action?.redirect_to_url?.url);
    assert.equal(confirmed.next_action?.redirect_to_url?.return_url, "http://app.test/credits");
    const back = await fetch(url, { method: "POST", body: new URLSearchParams({ outcome: "fail" }), redirect: "manual", headers: { "content-type": "application/x-www-form-urlencoded" } });
    assert.equal(back.status, 303);
    assert.match(String(back.headers.get("location")), new RegExp(`^http://app\\.test/credits\\?payment_intent=${created.id}&`));
    const failed = await h.stripe.paymentIntents.retrieve(created.id);
    assert.equal(failed.status, "requires_payment_method");
    assert.equal(failed.last_payment_error?.code, "payment_intent_authentication_failure");
    const events = await eventsOf(created.id, from);
    assert.deepEqual(events.map((e) => e.type), ["payment_intent.created", "payment_intent.requires_action", "payment_intent.payment_failed"]);

    const canceled = await h.stripe.paymentIntents.cancel(created.id);
    assert.equal(canceled.status, "canceled");
    assert.equal((await stripeError(h.stripe.paymentIntents.cancel(created.id))).code, "payment_intent_unexpected_state");
  });

  test("bad requests are 400s that create nothing: off_session without confirm, another customer's card, too small an amount", async () => {
    const { customer, card } = await customerWithCard("4242424242424242");
    const stranger = (await h.stripe.customers.create({ email: "stranger@acme.test" })).id;
    const before = (await h.stripe.paymentIntents.list({ limit: 100 })).data.length;
    const noConfirm = await stripeError(h.stripe.paymentIntents.create({ amount: 1000, currency: "usd", customer, payment_method: card, off_session: true }));
    assert.equal(noConfirm.statusCode, 400);
    assert.equal(noConfirm.param, "off_session");
    const foreign = await stripeError(h.stripe.paymentIntents.create({ amount: 1000, currency: "usd", customer: stranger, payment_method: card, off_session: true, confirm: true }));
    assert.equal(foreign.statusCode, 400);
    assert.equal(foreign.param, "payment_method");
    const small = await stripeError(h.stripe.paymentIntents.create({ amount: 10, currency: "usd", customer, payment_method: card, off_session: true, confirm: true }));
    assert.equal(small.code, "amount_too_small");
    const unknown = await stripeError(h.stripe.paymentIntents.create({ amount: 1000, currency: "usd", customer, payment_method: "pm_nothing", off_session: true, confirm: true }));
    assert.equal(unknown.statusCode, 404);
    assert.equal(unknown.param, "payment_method");
    assert.equal((await h.stripe.paymentIntents.list({ limit: 100 })).data.length, before);
  });

  test("Stripe's test payment method ids work server-side (pm_card_chargeCustomerFail declines off-session once attached)", async () => {
    const customer = (await h.stripe.customers.create({ email: "tokens@acme.test" })).id;
    const card = await h.stripe.paymentMethods.attach("pm_card_chargeCustomerFail", { customer });
    const error = await cardError(h.stripe.paymentIntents.create({ amount: 1000, currency: "usd", customer, payment_method: card.id, off_session: true, confirm: true }));
    assert.equal(error.code, "card_declined");
    const ok = await h.stripe.paymentIntents.create({ amount: 1000, currency: "usd", payment_method: "pm_card_visa", confirm: true });
    assert.equal(ok.status, "succeeded");
  });
});
