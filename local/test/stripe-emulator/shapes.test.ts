/**
 * Object shapes against Stripe's own published examples (`stripe-fixtures/fixtures3.json`):
 * every field the fixture's object has, ours has too, at every depth where both sides hold an
 * object (where ours is `null` the fixture's example sub-object is for a feature we leave off).
 * The values are placeholders and are never compared.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";
import type Stripe from "stripe";
import { advance, createCatalog, type Harness, startHarness, submitCheckout } from "./harness.ts";

const here = path.dirname(fileURLToPath(import.meta.url));
// A copy kept in the repository, so a clone anywhere runs this suite; STRIPE_FIXTURES points
// at another copy of stripe/openapi's fixtures3.json (a newer one, say).
const fixturesPath = process.env.STRIPE_FIXTURES ?? path.join(here, "stripe-fixtures", "fixtures3.json");

type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
type JsonObject = { [key: string]: JsonValue };

function isObject(value: JsonValue | undefined): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Fixture fields deliberately absent, each with its reason. Nothing else may be missing.
 */
const knownDifferences: Record<string, string> = {
  // Stripe's example still carries the pre-2025 top-level field (as null); the pinned API
  // version's `Stripe.Invoice` has no such field: the subscription is under
  // parent.subscription_details.subscription.
  "invoice:subscription": "removed in the pinned API version",
};

/** Subtrees whose keys are user data or another object type, so not compared. */
const notCompared = new Set(["metadata", "data.object", "previous_attributes"]);

/** Paths of fixture keys missing from ours. */
function missingKeys(fixture: JsonObject, ours: JsonObject, prefix = "", type = ""): string[] {
  const missing: string[] = [];
  for (const [key, value] of Object.entries(fixture)) {
    const here = prefix ? `${prefix}.${key}` : key;
    if (notCompared.has(key) || notCompared.has(here)) {
      if (!(key in ours)) missing.push(here);
      continue;
    }
    if (!(key in ours)) {
      if (knownDifferences[`${type}:${here}`]) continue;
      missing.push(here);
      continue;
    }
    const mine = ours[key];
    if (isObject(value) && isObject(mine)) missing.push(...missingKeys(value, mine, here, type));
    else if (Array.isArray(value) && Array.isArray(mine) && isObject(value[0]) && isObject(mine[0])) missing.push(...missingKeys(value[0], mine[0], `${here}[0]`, type));
  }
  return missing;
}

let h: Harness;
const objects: Record<string, JsonObject> = {};
let fixtures: Record<string, JsonObject>;

function json(value: unknown): JsonObject {
  return JSON.parse(JSON.stringify(value)) as JsonObject;
}

before(async () => {
  fixtures = (JSON.parse(readFileSync(fixturesPath, "utf8")) as { resources: Record<string, JsonObject> }).resources;
  h = await startHarness();
  const { monthly, pack } = await createCatalog(h.stripe);
  const customer = await h.stripe.customers.create({ email: "shapes@acme.test" });
  const session = await h.stripe.checkout.sessions.create({ mode: "subscription", customer: customer.id, line_items: [{ price: monthly.id, quantity: 1 }], success_url: "http://a.test" });
  await submitCheckout(session, "4242424242424242");
  await advance(h.emulator, customer.id);
  const done = await h.stripe.checkout.sessions.retrieve(session.id);
  const subscription = await h.stripe.subscriptions.retrieve(String(done.subscription));
  const invoice = await h.stripe.invoices.retrieve(String(subscription.latest_invoice));
  const intent = (await h.stripe.paymentIntents.list({ customer: customer.id })).data[0] as Stripe.PaymentIntent;
  const charge = await h.stripe.charges.retrieve(String(intent.latest_charge));
  const refund = await h.stripe.refunds.create({ charge: charge.id, amount: 100 });
  const portal = await h.stripe.billingPortal.sessions.create({ customer: customer.id, return_url: "http://a.test" });
  const packSession = await h.stripe.checkout.sessions.create({ mode: "payment", customer: customer.id, line_items: [{ price: pack.id, quantity: 1 }], success_url: "http://a.test" });
  const lineItems = await h.stripe.checkout.sessions.listLineItems(packSession.id);
  const event = (await h.stripe.events.list({ type: "invoice.paid", limit: 1 })).data[0];
  const paymentMethod = await h.stripe.paymentMethods.retrieve(String(subscription.default_payment_method));
  const failing = await h.stripe.paymentMethods.attach("pm_card_chargeCustomerFail", { customer: customer.id });
  const declined = await h.stripe.paymentIntents
    .create({ amount: 1000, currency: "usd", customer: customer.id, payment_method: failing.id, off_session: true, confirm: true })
    .catch((error: Stripe.errors.StripeCardError) => error.payment_intent);
  const preview = await h.stripe.invoices.createPreview({ subscription: subscription.id });

  Object.assign(objects, {
    customer: json(await h.stripe.customers.retrieve(customer.id)),
    product: json(await h.stripe.products.retrieve(String(monthly.product))),
    price: json(monthly),
    "checkout.session": json(done),
    "billing_portal.session": json(portal),
    subscription: json(subscription),
    subscription_item: json(subscription.items.data[0]),
    plan: json(subscription.items.data[0]?.plan),
    invoice: json(invoice),
    line_item: json(invoice.lines.data[0]),
    payment_intent: json(intent),
    charge: json(charge),
    refund: json(refund),
    event: json(event),
    payment_method: json(paymentMethod),
    item: json(lineItems.data[0]),
    // The same fixture, another way the object is made: "<fixture>:<how>".
    "payment_intent:off-session and declined": json(declined),
    "invoice:preview": json(preview),
    "line_item:preview": json(preview.lines.data[0]),
  });
});

after(async () => {
  await h.close();
});

describe("object shapes match Stripe's fixtures", () => {
  const types = ["customer", "product", "price", "checkout.session", "billing_portal.session", "subscription", "subscription_item", "plan", "invoice", "line_item", "payment_intent", "charge", "refund", "event", "payment_method", "item", "payment_intent:off-session and declined", "invoice:preview", "line_item:preview"];
  for (const name of types) {
    const type = name.split(":")[0] as string;
    test(`${name}: every field of Stripe's example exists on ours`, () => {
      const fixture = fixtures[type];
      const ours = objects[name];
      assert.ok(fixture, `fixture for ${type}`);
      assert.ok(ours, `emulated ${type}`);
      assert.equal(ours.object, fixture.object);
      assert.deepEqual(missingKeys(fixture, ours, "", type), []);
    });
  }

  test("current API version facts: periods on items, the invoice's subscription under parent", () => {
    const subscription = objects.subscription as JsonObject;
    assert.equal("current_period_start" in subscription, false);
    assert.equal("current_period_end" in subscription, false);
    const items = subscription.items as JsonObject;
    const item = (items.data as JsonObject[])[0] as JsonObject;
    assert.equal(typeof item.current_period_start, "number");
    assert.equal(typeof item.current_period_end, "number");
    const invoice = objects.invoice as JsonObject;
    assert.equal("subscription" in invoice, false);
    const parent = invoice.parent as JsonObject;
    assert.equal((parent.subscription_details as JsonObject).subscription, subscription.id);
    for (const stamp of [subscription.created, item.current_period_end, invoice.created]) {
      assert.ok(typeof stamp === "number" && stamp > 1_700_000_000 && stamp < 4_000_000_000, "Unix seconds, not milliseconds");
    }
  });
});
