import assert from "node:assert/strict";
import type Stripe from "stripe";
import {
  fromUnix,
  idOf,
  invoiceServicePeriod,
  invoiceSubscriptionId,
  organizationIdOf,
  subscriptionState,
} from "./stripe-mapping.ts";

// Stripe objects carry far more fields than the mapping reads; the tests build the fields
// it reads and cast, so a field the mapping starts to rely on must be added here on purpose.
function subscription(overrides: Partial<Stripe.Subscription> = {}): Stripe.Subscription {
  return {
    id: "sub_123",
    object: "subscription",
    customer: "cus_123",
    status: "active",
    cancel_at_period_end: false,
    cancel_at: null,
    canceled_at: null,
    ended_at: null,
    trial_start: null,
    trial_end: null,
    items: {
      object: "list",
      data: [{
        id: "si_1",
        price: { id: "price_monthly" },
        current_period_start: 1764547200, // 2025-12-01T00:00:00Z
        current_period_end: 1767225600, // 2026-01-01T00:00:00Z
      }],
    },
    ...overrides,
  } as unknown as Stripe.Subscription;
}

Deno.test("Unix seconds become dates in the right century, not 1970", () => {
  assert.equal(fromUnix(1764547200), "2025-12-01T00:00:00.000Z");
  assert.equal(fromUnix(null), null);
  assert.equal(fromUnix(undefined), null);
});

Deno.test("an expandable field gives its id whether expanded or not", () => {
  assert.equal(idOf("cus_1"), "cus_1");
  assert.equal(idOf({ id: "cus_2" }), "cus_2");
  assert.equal(idOf(null), null);
});

Deno.test("the billing period is read from the subscription item", () => {
  const state = subscriptionState(subscription(), new Date("2025-12-01T00:00:05Z"));
  assert.equal(state.p_current_period_start, "2025-12-01T00:00:00.000Z");
  assert.equal(state.p_current_period_end, "2026-01-01T00:00:00.000Z");
  assert.equal(state.p_stripe_price_id, "price_monthly");
  assert.equal(state.p_observed_at, "2025-12-01T00:00:05.000Z");
});

Deno.test("a subscription's customer may arrive expanded", () => {
  const state = subscriptionState(
    subscription({ customer: { id: "cus_expanded" } as Stripe.Customer }),
    new Date(),
  );
  assert.equal(state.p_stripe_customer_id, "cus_expanded");
});

Deno.test("trial and cancellation times are carried over, and stay null when absent", () => {
  const state = subscriptionState(
    subscription({ status: "trialing", trial_start: 1764547200, trial_end: 1765756800, cancel_at_period_end: true }),
    new Date(),
  );
  assert.equal(state.p_status, "trialing");
  assert.equal(state.p_trial_end, "2025-12-15T00:00:00.000Z");
  assert.equal(state.p_cancel_at_period_end, true);
  assert.equal(state.p_canceled_at, null, "no made-up cancellation date for a live subscription");
});

Deno.test("a subscription without items cannot be applied", () => {
  assert.throws(
    () => subscriptionState(subscription({ items: { data: [] } as unknown as Stripe.Subscription["items"] }), new Date()),
    /no items/,
  );
});

Deno.test("an invoice names its subscription under parent.subscription_details", () => {
  const invoice = { id: "in_1", parent: { subscription_details: { subscription: "sub_9" } } } as unknown as Stripe.Invoice;
  assert.equal(invoiceSubscriptionId(invoice), "sub_9");
  assert.equal(invoiceSubscriptionId({ id: "in_2", parent: null } as unknown as Stripe.Invoice), null);
});

Deno.test("an invoice pays for its subscription line's period", () => {
  const invoice = {
    id: "in_1",
    period_start: 1761955200,
    period_end: 1764547200,
    lines: {
      data: [
        { period: { start: 1, end: 2 }, parent: { invoice_item_details: {} } },
        { period: { start: 1764547200, end: 1767225600 }, parent: { subscription_item_details: {} } },
      ],
    },
  } as unknown as Stripe.Invoice;
  assert.deepEqual(invoiceServicePeriod(invoice), {
    start: "2025-12-01T00:00:00.000Z",
    end: "2026-01-01T00:00:00.000Z",
  });
});

Deno.test("a renewal carrying prorations of the old period pays for its period line, not the first line", () => {
  const invoice = {
    id: "in_2",
    period_start: 1764547200,
    period_end: 1764547200,
    lines: {
      data: [
        // A plan switched mid-period with create_prorations: its prorations come first.
        { period: { start: 1765000000, end: 1764547200 }, parent: { subscription_item_details: { proration: true } } },
        { period: { start: 1765000000, end: 1764547200 }, parent: { subscription_item_details: { proration: true } } },
        { period: { start: 1764547200, end: 1767225600 }, parent: { subscription_item_details: { proration: false } } },
      ],
    },
  } as unknown as Stripe.Invoice;
  assert.deepEqual(invoiceServicePeriod(invoice), { start: "2025-12-01T00:00:00.000Z", end: "2026-01-01T00:00:00.000Z" });
});

Deno.test("an invoice of prorations only (a plan change charged at once) pays for no period", () => {
  const invoice = {
    id: "in_3",
    period_start: 1765000000,
    period_end: 1765000000,
    lines: {
      data: [
        { period: { start: 1765000000, end: 1767225600 }, parent: { subscription_item_details: { proration: true } } },
        { period: { start: 1765000000, end: 1767225600 }, parent: { subscription_item_details: { proration: true } } },
      ],
    },
  } as unknown as Stripe.Invoice;
  assert.equal(invoiceServicePeriod(invoice), null);
});

Deno.test("only a well-formed organization id in metadata or the client reference counts", () => {
  const id = "0b9c2a3e-1d2f-4c5b-8a7e-6f5d4c3b2a10";
  assert.equal(organizationIdOf({ organization_id: id }), id);
  assert.equal(organizationIdOf({}, id.toUpperCase()), id);
  assert.equal(organizationIdOf({ organization_id: "'; drop table organizations; --" }), null);
  assert.equal(organizationIdOf(null, null), null);
});
