/**
 * The real `stripe` client against the emulator, for every call the product makes: customers,
 * products and prices, Checkout, the portal, subscriptions, invoices, payment intents, charges,
 * refunds and events; Stripe's error codes; idempotency keys.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import Stripe from "stripe";
import { advance, createCatalog, type Harness, startHarness, stripeError, submitCheckout } from "./harness.ts";

let h: Harness;
before(async () => {
  h = await startHarness();
});
after(async () => {
  await h.close();
});

describe("customers", () => {
  test("create, retrieve, update, list by email and search by metadata", async () => {
    const created = await h.stripe.customers.create({ email: "owner@acme.test", name: "Acme", metadata: { organization_id: "org_acme" } });
    assert.match(created.id, /^cus_/);
    assert.equal(created.object, "customer");
    assert.equal(created.email, "owner@acme.test");
    assert.deepEqual(created.metadata, { organization_id: "org_acme" });
    assert.ok(Math.abs(created.created - Date.now() / 1000) < 60, "created is Unix seconds");

    const fetched = await h.stripe.customers.retrieve(created.id);
    assert.equal(fetched.id, created.id);

    const updated = await h.stripe.customers.update(created.id, { name: "Acme Inc", metadata: { tier: "gold", organization_id: "" } });
    assert.equal(updated.name, "Acme Inc");
    assert.deepEqual(updated.metadata, { tier: "gold" }, "an empty metadata value removes the key");
    assert.deepEqual((await h.stripe.customers.update(created.id, { metadata: "" })).metadata, {}, "metadata='' unsets every key");
    await h.stripe.customers.update(created.id, { metadata: { organization_id: "org_acme" } });

    await h.stripe.customers.create({ email: "someone@else.test" });
    const byEmail = await h.stripe.customers.list({ email: "owner@acme.test" });
    assert.deepEqual(byEmail.data.map((c) => c.id), [created.id]);
    assert.equal(byEmail.has_more, false);

    const found = await h.stripe.customers.search({ query: "metadata['organization_id']:'org_acme'" });
    assert.deepEqual(found.data.map((c) => c.id), [created.id]);
    const none = await h.stripe.customers.search({ query: "metadata['organization_id']:'org_nobody'" });
    assert.equal(none.data.length, 0);
  });

  test("lists page newest first with starting_after", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push((await h.stripe.customers.create({ email: "pager@acme.test" })).id);
    const first = await h.stripe.customers.list({ email: "pager@acme.test", limit: 2 });
    assert.deepEqual(first.data.map((c) => c.id), [ids[2], ids[1]]);
    assert.equal(first.has_more, true);
    const second = await h.stripe.customers.list({ email: "pager@acme.test", limit: 2, starting_after: ids[1] });
    assert.deepEqual(second.data.map((c) => c.id), [ids[0]]);
    const all: string[] = [];
    for await (const customer of h.stripe.customers.list({ email: "pager@acme.test", limit: 1 })) all.push(customer.id);
    assert.deepEqual(all, [...ids].reverse(), "auto-pagination walks every page");
  });

  test("an unknown customer is a 404 resource_missing", async () => {
    const error = await stripeError(h.stripe.customers.retrieve("cus_doesnotexist"));
    assert.equal(error.statusCode, 404);
    assert.equal(error.type, "StripeInvalidRequestError");
    assert.equal(error.code, "resource_missing");
    assert.equal(error.param, "id");
    assert.equal(error.message, "No such customer: 'cus_doesnotexist'");
  });

  test("delete cancels the customer's live subscriptions; the customer then reads back as deleted and can be used for nothing", async () => {
    const { monthly } = await createCatalog(h.stripe);
    const customer = await h.stripe.customers.create({ email: "leaving@acme.test", metadata: { organization_id: "org_leaving" } });
    const session = await h.stripe.checkout.sessions.create({
      mode: "subscription",
      customer: customer.id,
      line_items: [{ price: monthly.id, quantity: 1 }],
      success_url: "http://app.test/billing",
    });
    assert.equal((await submitCheckout(session, "4242 4242 4242 4242")).status, 303);
    const subscription = (await h.stripe.subscriptions.list({ customer: customer.id })).data[0]!;
    assert.equal(subscription.status, "active");

    const deleted = await h.stripe.customers.del(customer.id);
    assert.deepEqual(deleted, { ...deleted, id: customer.id, object: "customer", deleted: true });
    assert.equal((await h.stripe.subscriptions.retrieve(subscription.id)).status, "canceled", "Stripe cancels them at once");
    const read = await h.stripe.customers.retrieve(customer.id);
    assert.equal((read as Stripe.DeletedCustomer).deleted, true, "a read says deleted");
    assert.equal((await h.stripe.customers.search({ query: "metadata['organization_id']:'org_leaving'" })).data.length, 0);
    assert.ok(!(await h.stripe.customers.list({ email: "leaving@acme.test" })).data.length, "not listed");

    const checkout = await stripeError(h.stripe.checkout.sessions.create({
      mode: "subscription",
      customer: customer.id,
      line_items: [{ price: monthly.id, quantity: 1 }],
      success_url: "http://app.test/billing",
    }));
    assert.equal(checkout.code, "resource_missing");
    assert.equal(checkout.param, "customer");
    const portal = await stripeError(h.stripe.billingPortal.sessions.create({ customer: customer.id }));
    assert.equal(portal.code, "resource_missing");
    assert.equal((await stripeError(h.stripe.customers.del(customer.id))).code, "resource_missing", "deleting twice");
  });

  test("an unsupported search clause is a 400, not a wrong answer", async () => {
    const error = await stripeError(h.stripe.customers.search({ query: "created>1000" }));
    assert.equal(error.statusCode, 400);
    assert.equal(error.param, "query");
  });
});

describe("products and prices", () => {
  test("create, retrieve, list by lookup_keys, expand the product", async () => {
    const { product, monthly, annual, pack } = await createCatalog(h.stripe);
    assert.equal((await h.stripe.products.retrieve(product.id)).name, "Pro");
    const price = await h.stripe.prices.retrieve(monthly.id);
    assert.equal(price.unit_amount, 2900);
    assert.equal(price.type, "recurring");
    assert.equal(price.recurring?.interval, "month");
    assert.equal(price.lookup_key, "pro_monthly");
    assert.equal(pack.type, "one_time");
    assert.equal(pack.recurring, null);

    const byKeys = await h.stripe.prices.list({ lookup_keys: ["pro_monthly", "pro_annual"], expand: ["data.product"] });
    assert.deepEqual(new Set(byKeys.data.map((p) => p.id)), new Set([monthly.id, annual.id]));
    for (const p of byKeys.data) assert.equal((p.product as Stripe.Product).name, "Pro");

    const products = await h.stripe.products.list({ active: true });
    assert.ok(products.data.some((p) => p.id === product.id));
    const recurring = await h.stripe.prices.list({ product: product.id, type: "recurring" });
    assert.equal(recurring.data.length, 2);
  });

  test("update products and prices; an unexpandable path is a 400", async () => {
    const product = await h.stripe.products.create({ name: "Old name" });
    const renamed = await h.stripe.products.update(product.id, { name: "New name", metadata: { plan: "x" } });
    assert.equal(renamed.name, "New name");
    assert.deepEqual(renamed.metadata, { plan: "x" });
    const price = await h.stripe.prices.create({ product: product.id, currency: "eur", unit_amount: 500 });
    const archived = await h.stripe.prices.update(price.id, { active: false, nickname: "legacy" });
    assert.equal(archived.active, false);
    assert.equal(archived.nickname, "legacy");
    assert.ok(!(await h.stripe.prices.list({ active: true, product: product.id })).data.length);
    const bad = await stripeError(h.stripe.prices.retrieve(price.id, { expand: ["currency"] }));
    assert.equal(bad.statusCode, 400);
    assert.match(bad.message, /cannot be expanded/);
  });

  test("a lookup key is unique unless transferred", async () => {
    const product = await h.stripe.products.create({ name: "Keyed" });
    const first = await h.stripe.prices.create({ product: product.id, currency: "usd", unit_amount: 100, lookup_key: "keyed" });
    const error = await stripeError(h.stripe.prices.create({ product: product.id, currency: "usd", unit_amount: 200, lookup_key: "keyed" }));
    assert.equal(error.statusCode, 400);
    assert.equal(error.code, "lookup_key_already_exists");
    const second = await h.stripe.prices.create({ product: product.id, currency: "usd", unit_amount: 200, lookup_key: "keyed", transfer_lookup_key: true });
    assert.equal((await h.stripe.prices.retrieve(first.id)).lookup_key, null);
    assert.deepEqual((await h.stripe.prices.list({ lookup_keys: ["keyed"] })).data.map((p) => p.id), [second.id]);
  });

  test("bad parameters are 400s with Stripe's codes", async () => {
    const missing = await stripeError(h.stripe.prices.create({ currency: "usd", unit_amount: 100 }));
    assert.equal(missing.statusCode, 400);
    assert.equal(missing.code, "parameter_missing");
    assert.equal(missing.param, "product");

    const product = await h.stripe.products.create({ name: "Bad" });
    const integer = await stripeError(h.stripe.prices.create({ product: product.id, currency: "usd", unit_amount: 100, tax_behavior: "exclusive" }));
    assert.equal(integer.code, "parameter_unknown", "tax_behavior is not emulated: rejected, not ignored");
    assert.equal(integer.param, "tax_behavior");
  });

  test("a non-integer amount is parameter_invalid_integer", async () => {
    const product = await h.stripe.products.create({ name: "Bad amount" });
    const error = await stripeError(h.stripe.rawRequest("POST", "/v1/prices", { product: product.id, currency: "usd", unit_amount: "12.5" }));
    assert.equal(error.statusCode, 400);
    assert.equal(error.code, "parameter_invalid_integer");
    assert.equal(error.param, "unit_amount");
  });

  test("an unknown price is a 404 on the parameter that named it", async () => {
    const error = await stripeError(
      h.stripe.checkout.sessions.create({ mode: "subscription", line_items: [{ price: "price_missing", quantity: 1 }], success_url: "http://app.test/ok" }),
    );
    assert.equal(error.statusCode, 404);
    assert.equal(error.code, "resource_missing");
    assert.equal(error.param, "line_items[0][price]");
  });
});

describe("checkout and subscriptions", () => {
  test("a subscription checkout: create, pay on the hosted page, retrieve with expansions", async () => {
    const { monthly } = await createCatalog(h.stripe);
    const customer = await h.stripe.customers.create({ email: "buyer@acme.test" });
    const session = await h.stripe.checkout.sessions.create({
      mode: "subscription",
      customer: customer.id,
      line_items: [{ price: monthly.id, quantity: 1 }],
      client_reference_id: "org_1",
      metadata: { organization_id: "org_1" },
      subscription_data: { metadata: { organization_id: "org_1" } },
      success_url: "http://app.test/billing?session={CHECKOUT_SESSION_ID}",
      cancel_url: "http://app.test/billing",
    });
    assert.equal(session.status, "open");
    assert.equal(session.payment_status, "unpaid");
    assert.equal(session.amount_total, 2900);
    assert.ok(session.url?.startsWith(h.emulator.url));

    const page = await fetch(session.url ?? "");
    assert.equal(page.status, 200);
    assert.match(await page.text(), /\$29\.00/);

    const response = await submitCheckout(session, "4242 4242 4242 4242");
    assert.equal(response.status, 303);
    assert.equal(response.headers.get("location"), `http://app.test/billing?session=${session.id}`);

    const done = await h.stripe.checkout.sessions.retrieve(session.id, { expand: ["subscription", "line_items"] });
    assert.equal(done.status, "complete");
    assert.equal(done.payment_status, "paid");
    assert.equal(done.client_reference_id, "org_1");
    assert.equal(done.customer, customer.id);
    const subscription = done.subscription as Stripe.Subscription;
    assert.equal(subscription.status, "active");
    assert.deepEqual(subscription.metadata, { organization_id: "org_1" });
    assert.equal(done.line_items?.data[0]?.price?.id, monthly.id);

    const item = subscription.items.data[0];
    assert.ok(item);
    assert.equal(item.price.id, monthly.id);
    assert.ok(item.current_period_end > item.current_period_start, "periods live on the subscription item");
    assert.equal("current_period_end" in subscription, false, "no period on the subscription itself in this API version");

    const invoice = await h.stripe.invoices.retrieve(String(subscription.latest_invoice));
    assert.equal(invoice.status, "paid");
    assert.equal(invoice.amount_paid, 2900);
    assert.equal(invoice.billing_reason, "subscription_create");
    assert.equal(invoice.parent?.subscription_details?.subscription, subscription.id);
    assert.equal(invoice.lines.data[0]?.period.end, item.current_period_end);
    const withPayments = await h.stripe.invoices.retrieve(invoice.id!, { expand: ["payments"] });
    const payment = withPayments.payments?.data[0];
    assert.equal(payment?.status, "paid", "the invoice's payments can be expanded");
    const paidBy = await h.stripe.paymentIntents.retrieve(String(payment?.payment.payment_intent));
    const paidWith = await h.stripe.charges.retrieve(String(paidBy.latest_charge));
    assert.match(paidWith.receipt_url ?? "", /\/receipts\/ch_/, "and lead to the charge's receipt");

    const invoices = await h.stripe.invoices.list({ customer: customer.id });
    assert.deepEqual(invoices.data.map((i) => i.id), [invoice.id]);
    const bySubscription = await h.stripe.invoices.list({ subscription: subscription.id });
    assert.equal(bySubscription.data.length, 1);

    const intents = await h.stripe.paymentIntents.list({ customer: customer.id });
    assert.equal(intents.data.length, 1);
    const intent = intents.data[0];
    assert.equal(intent?.status, "succeeded");
    const charge = await h.stripe.charges.retrieve(String(intent?.latest_charge));
    assert.equal(charge.paid, true);
    assert.equal(charge.amount, 2900);
    assert.equal((await h.stripe.paymentIntents.retrieve(String(intent?.id))).amount_received, 2900);

    const lines = await h.stripe.invoices.listLineItems(invoice.id);
    assert.equal(lines.data[0]?.parent?.subscription_item_details?.subscription_item, item.id);
    assert.deepEqual((await h.stripe.checkout.sessions.list({ subscription: subscription.id })).data.map((s) => s.id), [session.id]);
    assert.deepEqual((await h.stripe.charges.list({ payment_intent: intent?.id })).data.map((c) => c.id), [charge.id]);

    const subscriptions = await h.stripe.subscriptions.list({ customer: customer.id });
    assert.deepEqual(subscriptions.data.map((s) => s.id), [subscription.id]);
    const searched = await h.stripe.subscriptions.search({ query: "metadata['organization_id']:'org_1'" });
    assert.ok(searched.data.some((s) => s.id === subscription.id));
  });

  test("a checkout without a customer creates one from the email entered on the page", async () => {
    const { monthly } = await createCatalog(h.stripe);
    const session = await h.stripe.checkout.sessions.create({ mode: "subscription", line_items: [{ price: monthly.id, quantity: 1 }], success_url: "http://app.test/ok" });
    assert.equal(session.customer, null);
    assert.equal((await submitCheckout(session, "4242424242424242", "new@acme.test")).status, 303);
    const done = await h.stripe.checkout.sessions.retrieve(session.id, { expand: ["customer"] });
    const customer = done.customer as Stripe.Customer;
    assert.equal(customer.email, "new@acme.test");
    assert.equal(done.customer_details?.email, "new@acme.test");
    // As Stripe does: the card is saved to the customer and charged for the subscription, but
    // becomes the customer's own default only when asked (customers.update invoice_settings).
    const subscription = await h.stripe.subscriptions.retrieve(String(done.subscription));
    const card = await h.stripe.paymentMethods.retrieve(String(subscription.default_payment_method));
    assert.equal(card.customer, customer.id);
    assert.equal(customer.invoice_settings.default_payment_method, null);
  });

  test("a declined card answers 402 card_declined and leaves the session open", async () => {
    const { monthly } = await createCatalog(h.stripe);
    const session = await h.stripe.checkout.sessions.create({ mode: "subscription", line_items: [{ price: monthly.id, quantity: 1 }], success_url: "http://app.test/ok" });
    const page = await submitCheckout(session, "4000000000000002", "declined@acme.test");
    assert.equal(page.status, 402);
    assert.match(await page.text(), /Your card was declined/);

    const api = await fetch(`${h.emulator.url}/_emulator/checkout/${session.id}/pay`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ card_number: "4000000000000002", email: "declined@acme.test" }),
    });
    assert.equal(api.status, 402);
    const body = (await api.json()) as { error: { type: string; code: string; decline_code: string } };
    assert.deepEqual([body.error.type, body.error.code, body.error.decline_code], ["card_error", "card_declined", "generic_decline"]);
    assert.equal((await h.stripe.checkout.sessions.retrieve(session.id)).status, "open");
  });

  test("a Checkout Session can be expired once", async () => {
    const { pack } = await createCatalog(h.stripe);
    const session = await h.stripe.checkout.sessions.create({ mode: "payment", line_items: [{ price: pack.id, quantity: 1 }], success_url: "http://app.test/ok" });
    const expired = await h.stripe.checkout.sessions.expire(session.id);
    assert.equal(expired.status, "expired");
    const again = await stripeError(h.stripe.checkout.sessions.expire(session.id));
    assert.equal(again.statusCode, 400);
    const paying = await submitCheckout(session, "4242424242424242", "late@acme.test");
    assert.equal(paying.status, 410);
  });

  test("a Checkout Session expires on its own at expires_at", async () => {
    const { pack } = await createCatalog(h.stripe);
    const customer = await h.stripe.customers.create({ email: "slow@acme.test" });
    const session = await h.stripe.checkout.sessions.create({ mode: "payment", customer: customer.id, line_items: [{ price: pack.id, quantity: 1 }], success_url: "http://a.test", expires_at: Math.floor(Date.now() / 1000) + 3600 });
    const tooSoon = await stripeError(h.stripe.checkout.sessions.create({ mode: "payment", line_items: [{ price: pack.id, quantity: 1 }], success_url: "http://a.test", expires_at: Math.floor(Date.now() / 1000) + 60 }));
    assert.equal(tooSoon.param, "expires_at");
    await advance(h.emulator, customer.id, session.expires_at);
    assert.equal((await h.stripe.checkout.sessions.retrieve(session.id)).status, "expired");
    await h.emulator.webhooksIdle();
    assert.ok(h.receiver.events.some((e) => e.type === "checkout.session.expired" && e.data.object.id === session.id));
  });

  test("a double-clicked Pay button pays once", async () => {
    const { monthly } = await createCatalog(h.stripe);
    const customer = await h.stripe.customers.create({ email: "double@acme.test" });
    const session = await h.stripe.checkout.sessions.create({ mode: "subscription", customer: customer.id, line_items: [{ price: monthly.id, quantity: 1 }], success_url: "http://a.test" });
    const statuses = (await Promise.all([submitCheckout(session, "4242424242424242"), submitCheckout(session, "4242424242424242")])).map((r) => r.status).sort();
    assert.deepEqual(statuses, [303, 410]);
    assert.equal((await h.stripe.subscriptions.list({ customer: customer.id })).data.length, 1);
    assert.equal((await h.stripe.charges.list({ customer: customer.id })).data.length, 1);
  });

  test("mode and price must agree; unsupported features are refused loudly", async () => {
    const { monthly, pack } = await createCatalog(h.stripe);
    const wrongMode = await stripeError(h.stripe.checkout.sessions.create({ mode: "payment", line_items: [{ price: monthly.id, quantity: 1 }], success_url: "http://a.test" }));
    assert.equal(wrongMode.statusCode, 400);
    assert.equal(wrongMode.param, "line_items[0][price]");
    const setup = await stripeError(h.stripe.checkout.sessions.create({ mode: "setup", currency: "usd", success_url: "http://a.test" }));
    assert.equal(setup.statusCode, 400);
    const coupons = await stripeError(h.stripe.checkout.sessions.create({ mode: "payment", line_items: [{ price: pack.id, quantity: 1 }], discounts: [{ coupon: "X" }], success_url: "http://a.test" }));
    assert.equal(coupons.code, "parameter_unknown");
    assert.equal(coupons.param, "discounts");
    const missing = await stripeError(h.stripe.checkout.sessions.create({ line_items: [{ price: pack.id, quantity: 1 }], success_url: "http://a.test" } as Stripe.Checkout.SessionCreateParams));
    assert.equal(missing.code, "parameter_missing");
    assert.equal(missing.param, "mode");
  });

  test("subscriptions: change price, cancel at period end, resume, cancel now", async () => {
    const { monthly, annual, team } = await createCatalog(h.stripe);
    const customer = await h.stripe.customers.create({ email: "changer@acme.test" });
    const session = await h.stripe.checkout.sessions.create({ mode: "subscription", customer: customer.id, line_items: [{ price: monthly.id, quantity: 1 }], success_url: "http://a.test" });
    await submitCheckout(session, "4242424242424242");
    const subscriptionId = String((await h.stripe.checkout.sessions.retrieve(session.id)).subscription);
    let subscription = await h.stripe.subscriptions.retrieve(subscriptionId);
    const itemId = subscription.items.data[0]?.id ?? "";

    subscription = await h.stripe.subscriptions.update(subscriptionId, { items: [{ id: itemId, price: team.id }], proration_behavior: "none" });
    assert.equal(subscription.items.data[0]?.price.id, team.id);

    const periodEndBefore = subscription.items.data[0]?.current_period_end ?? 0;
    subscription = await h.stripe.subscriptions.update(subscriptionId, { items: [{ id: itemId, price: annual.id }] });
    const annualItem = subscription.items.data[0];
    assert.equal(annualItem?.price.id, annual.id);
    assert.ok((annualItem?.current_period_end ?? 0) > periodEndBefore, "a new interval restarts the billing cycle");
    const latest = await h.stripe.invoices.retrieve(String(subscription.latest_invoice));
    assert.equal(latest.billing_reason, "subscription_update");
    assert.equal(latest.status, "paid");
    assert.ok(latest.lines.data.some((l) => l.amount < 0), "unused time on the old price is credited");

    subscription = await h.stripe.subscriptions.update(subscriptionId, { cancel_at_period_end: true });
    assert.equal(subscription.cancel_at_period_end, true);
    assert.equal(subscription.cancel_at, annualItem?.current_period_end);
    subscription = await h.stripe.subscriptions.update(subscriptionId, { cancel_at_period_end: false });
    assert.equal(subscription.cancel_at_period_end, false);
    assert.equal(subscription.cancel_at, null);

    subscription = await h.stripe.subscriptions.cancel(subscriptionId);
    assert.equal(subscription.status, "canceled");
    assert.ok(subscription.ended_at);
    const cannot = await stripeError(h.stripe.subscriptions.update(subscriptionId, { cancel_at_period_end: true }));
    assert.equal(cannot.statusCode, 400);
    assert.equal((await h.stripe.subscriptions.list({ customer: customer.id })).data.length, 0, "canceled subscriptions are not listed by default");
    assert.equal((await h.stripe.subscriptions.list({ customer: customer.id, status: "all" })).data.length, 1);
    const resume = await stripeError(h.stripe.subscriptions.resume(subscriptionId));
    assert.equal(resume.statusCode, 400, "pause/resume is not emulated and says so");
  });

  test("billing portal sessions point at the hosted portal", async () => {
    const customer = await h.stripe.customers.create({ email: "portal@acme.test" });
    const portal = await h.stripe.billingPortal.sessions.create({ customer: customer.id, return_url: "http://app.test/billing" });
    assert.match(portal.id, /^bps_/);
    assert.equal(portal.return_url, "http://app.test/billing");
    const page = await fetch(portal.url);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /portal@acme\.test/);
    const missing = await stripeError(h.stripe.billingPortal.sessions.create({ customer: "cus_nobody" }));
    assert.equal(missing.statusCode, 404);
    assert.equal(missing.param, "customer");
  });
});

describe("packs and refunds", () => {
  test("a credit pack checkout pays once; a refund emits charge.refunded", async () => {
    const { pack } = await createCatalog(h.stripe);
    const customer = await h.stripe.customers.create({ email: "packs@acme.test" });
    const session = await h.stripe.checkout.sessions.create({
      mode: "payment",
      customer: customer.id,
      line_items: [{ price: pack.id, quantity: 2 }],
      metadata: { organization_id: "org_p", credits: "10000" },
      payment_intent_data: { metadata: { organization_id: "org_p" } },
      success_url: "http://app.test/ok?cs={CHECKOUT_SESSION_ID}",
    });
    await h.emulator.webhooksIdle();
    const from = h.receiver.events.length;
    assert.equal((await submitCheckout(session, "4242424242424242")).status, 303);
    const done = await h.stripe.checkout.sessions.retrieve(session.id, { expand: ["payment_intent"] });
    assert.equal(done.payment_status, "paid");
    assert.equal(done.amount_total, 2000);
    const intent = done.payment_intent as Stripe.PaymentIntent;
    assert.equal(intent.status, "succeeded");
    assert.deepEqual(intent.metadata, { organization_id: "org_p" });
    await h.emulator.webhooksIdle();
    assert.deepEqual(
      h.receiver.events.slice(from).map((e) => e.type).filter((t) => t.startsWith("checkout") || t.startsWith("payment_intent") || t.startsWith("charge")),
      ["checkout.session.completed", "payment_intent.succeeded", "charge.succeeded"],
    );

    const partial = await h.stripe.refunds.create({ payment_intent: intent.id, amount: 500, reason: "requested_by_customer" });
    assert.equal(partial.status, "succeeded");
    assert.equal(partial.amount, 500);
    let charge = await h.stripe.charges.retrieve(String(intent.latest_charge));
    assert.equal(charge.amount_refunded, 500);
    assert.equal(charge.refunded, false);
    const rest = await h.stripe.refunds.create({ charge: charge.id });
    assert.equal(rest.amount, 1500);
    charge = await h.stripe.charges.retrieve(charge.id, { expand: ["refunds"] });
    assert.equal(charge.refunded, true);
    assert.deepEqual(charge.refunds?.data.map((r) => r.id), [rest.id, partial.id], "the webhook re-reads refunds this way");
    assert.deepEqual((await h.stripe.refunds.list({ charge: charge.id })).data.map((r) => r.id), [rest.id, partial.id]);
    assert.equal((await h.stripe.refunds.retrieve(rest.id)).charge, charge.id);
    const tooMuch = await stripeError(h.stripe.refunds.create({ charge: charge.id, amount: 1 }));
    assert.equal(tooMuch.statusCode, 400);

    await h.emulator.webhooksIdle();
    const refunded = h.receiver.events.filter((e) => e.type === "charge.refunded");
    assert.equal(refunded.length >= 2, true);
    const last = refunded.at(-1);
    assert.equal(last?.type === "charge.refunded" ? last.data.object.amount_refunded : -1, 2000);
  });
});

describe("packs without a customer", () => {
  test("a payment-mode checkout with no customer pays without creating one (customer_creation if_required)", async () => {
    const { pack } = await createCatalog(h.stripe);
    const session = await h.stripe.checkout.sessions.create({ mode: "payment", line_items: [{ price: pack.id, quantity: 1 }], customer_email: "guest@acme.test", success_url: "http://a.test" });
    assert.equal(session.customer_creation, "if_required");
    assert.equal((await submitCheckout(session, "4242424242424242")).status, 303);
    const done = await h.stripe.checkout.sessions.retrieve(session.id);
    assert.equal(done.customer, null);
    assert.equal(done.customer_details?.email, "guest@acme.test");
    assert.equal(done.payment_status, "paid");
    const intent = await h.stripe.paymentIntents.retrieve(String(done.payment_intent));
    assert.equal(intent.status, "succeeded");
    assert.equal(intent.amount, 1000);
  });

  test("an unknown portal or checkout page is a 404", async () => {
    assert.equal((await fetch(`${h.emulator.url}/portal/bps_nope`)).status, 404);
    assert.equal((await fetch(`${h.emulator.url}/checkout/cs_test_nope`)).status, 404);
  });
});

describe("events", () => {
  test("retrieve and list by type, with delivery attempts visible", async () => {
    await h.stripe.customers.create({ email: "events@acme.test" });
    await h.emulator.webhooksIdle();
    const list = await h.stripe.events.list({ type: "customer.created", limit: 1 });
    const event = list.data[0];
    assert.ok(event);
    assert.equal(event.type, "customer.created");
    assert.equal(event.api_version, Stripe.API_VERSION);
    assert.equal(event.pending_webhooks, 0, "delivered");
    const fetched = await h.stripe.events.retrieve(event.id);
    assert.equal(fetched.id, event.id);
    const attempts = (fetched as unknown as { emulator_delivery_attempts: Array<{ status: number }> }).emulator_delivery_attempts;
    assert.equal(attempts[0]?.status, 200);
    const keyed = await h.stripe.customers.create({ email: "keyed@acme.test" }, { idempotencyKey: "evt-request-1" });
    const [keyedEvent] = (await h.stripe.events.list({ type: "customer.created", limit: 1 })).data;
    assert.equal((keyedEvent?.data.object as Stripe.Customer).id, keyed.id);
    assert.equal(keyedEvent?.request?.idempotency_key, "evt-request-1", "events name the API request that caused them");
    assert.equal(keyedEvent?.request?.id, keyed.lastResponse.requestId);
    const wildcard = await h.stripe.events.list({ types: ["customer.*"], limit: 100 });
    assert.ok(wildcard.data.every((e) => e.type.startsWith("customer.")));
    const missing = await stripeError(h.stripe.events.retrieve("evt_missing"));
    assert.equal(missing.code, "resource_missing");
  });
});

describe("idempotency", () => {
  test("the same key and parameters return the first response; different parameters are an idempotency_error", async () => {
    const key = "create-customer-org_idem";
    const first = await h.stripe.customers.create({ email: "idem@acme.test" }, { idempotencyKey: key });
    const second = await h.stripe.customers.create({ email: "idem@acme.test" }, { idempotencyKey: key });
    assert.equal(second.id, first.id);
    assert.equal(second.lastResponse.headers["idempotent-replayed"], "true");
    assert.equal((await h.stripe.customers.list({ email: "idem@acme.test" })).data.length, 1, "one customer despite the double click");

    const conflict = await stripeError(h.stripe.customers.create({ email: "other@acme.test" }, { idempotencyKey: key }));
    assert.equal(conflict.statusCode, 400);
    assert.equal(conflict.type, "StripeIdempotencyError");
    assert.match(conflict.message, /same parameters/);
  });

  test("a replayed checkout session creation returns the same session", async () => {
    const { monthly } = await createCatalog(h.stripe);
    const params: Stripe.Checkout.SessionCreateParams = { mode: "subscription", line_items: [{ price: monthly.id, quantity: 1 }], success_url: "http://a.test" };
    const a = await h.stripe.checkout.sessions.create(params, { idempotencyKey: "checkout-org_x-1" });
    const b = await h.stripe.checkout.sessions.create(params, { idempotencyKey: "checkout-org_x-1" });
    assert.equal(a.id, b.id);
  });

  test("a failed request's result is replayed too; a validation failure is not stored", async () => {
    const notFound = await stripeError(h.stripe.customers.update("cus_gone", { name: "x" }, { idempotencyKey: "upd-1" }));
    const replay = await stripeError(h.stripe.customers.update("cus_gone", { name: "x" }, { idempotencyKey: "upd-1" }));
    assert.equal(notFound.statusCode, 404);
    assert.equal(replay.statusCode, 404);
    const invalid = await stripeError(h.stripe.customers.create({ bogus: "1" } as Stripe.CustomerCreateParams, { idempotencyKey: "bad-1" }));
    assert.equal(invalid.code, "parameter_unknown");
    const ok = await h.stripe.customers.create({ bogus: "1" } as Stripe.CustomerCreateParams, { idempotencyKey: "bad-1" }).catch((e: unknown) => e);
    assert.ok(ok instanceof Stripe.errors.StripeError && ok.code === "parameter_unknown");
  });
});

describe("authentication and routing", () => {
  test("a missing or live key is a 401; an unknown endpoint is a 404 that says it is not emulated", async () => {
    const noKey = await fetch(`${h.emulator.url}/v1/customers`);
    assert.equal(noKey.status, 401);
    const live = new Stripe("sk_live_nope", { host: "127.0.0.1", port: h.emulator.port, protocol: "http" });
    const error = await stripeError(live.customers.list());
    assert.equal(error.statusCode, 401);
    const unknown = await stripeError(h.stripe.coupons.create({ percent_off: 10 }));
    assert.equal(unknown.statusCode, 404);
    assert.match(unknown.message, /does not implement/);
  });

  test("a client pinned to another API version is refused, not answered in the wrong shape", async () => {
    const other = new Stripe("sk_test_x", { host: "127.0.0.1", port: h.emulator.port, protocol: "http", apiVersion: "2024-06-20" as typeof Stripe.API_VERSION });
    const error = await stripeError(other.customers.list());
    assert.equal(error.statusCode, 400);
    assert.match(error.message, new RegExp(Stripe.API_VERSION));
  });

  test("a test clock advance of an unknown customer is a 404", async () => {
    const response = await fetch(`${h.emulator.url}/_emulator/advance`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ customer: "cus_nobody" }) });
    assert.equal(response.status, 404);
  });
  test("the fault switch makes the API unreachable, failing or slow, and ok again", async () => {
    const setFault = (body: Record<string, unknown>) =>
      fetch(`${h.emulator.url}/_emulator/faults`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body) }).then((r) => r.json());
    try {
      assert.deepEqual(await setFault({ api: "down" }), { api: "down", delay_ms: 30_000 });
      await assert.rejects(h.stripe.customers.create({ email: "down@acme.test" }), (error: Error) => error instanceof Stripe.errors.StripeConnectionError);

      await setFault({ api: "error" });
      await assert.rejects(h.stripe.customers.create({ email: "error@acme.test" }), (error: Error) => error instanceof Stripe.errors.StripeAPIError);

      // Slow: the client gives up, but the emulator still does the work, as Stripe would;
      // a retry with the same idempotency key gets that customer instead of a second one.
      await setFault({ api: "slow", delay_ms: 300 });
      const impatient = new Stripe("sk_test_emulator", { host: "127.0.0.1", port: h.emulator.port, protocol: "http", maxNetworkRetries: 0, timeout: 50 });
      const params = { email: "timed-out@acme.test" };
      await assert.rejects(impatient.customers.create(params, { idempotencyKey: "slow-customer" }), (error: Error) => error instanceof Stripe.errors.StripeConnectionError);
      await new Promise((resolve) => setTimeout(resolve, 400));
      await setFault({ api: "ok" });
      const retried = await h.stripe.customers.create(params, { idempotencyKey: "slow-customer" });
      const all = await h.stripe.customers.list({ email: "timed-out@acme.test" });
      assert.deepEqual(all.data.map((c) => c.id), [retried.id], "one customer, the one the slow request made");
    } finally {
      await setFault({ api: "ok" });
    }
  });
});
