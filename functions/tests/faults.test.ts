/**
 * Faults (RELIABILITY.md): Stripe down or slow during checkout gives a clear, retriable error
 * and writes nothing half-done; a retry after Stripe did the work without us hearing reuses
 * its customer; a double click opens one Checkout Session for one customer; and a database
 * that cannot apply a webhook right now leaves the event waiting in the inbox, after which the
 * inbox sweep (or Stripe's redelivery) applies it exactly once.
 */
import assert from "node:assert/strict";
import pg from "pg";
import {
  api,
  appliedAll,
  customersOf,
  db,
  deliverEvent,
  eventsOfCustomer,
  eventually,
  latestSubscription,
  inboxRow,
  ownerWithOrganization,
  payCheckout,
  required,
  setDelivery,
  setStripeFault,
  sweepInbox,
} from "./support.ts";

const checkoutBody = (organizationId: string) => ({ organization_id: organizationId, plan_code: "starter", interval: "month" });

/** What our database holds about an organization's billing account and subscriptions. */
async function billingRows(organizationId: string) {
  const organization = await db.from("organizations").select("stripe_customer_id").eq("id", organizationId).single();
  const subscriptions = await db.from("organization_subscriptions").select("id").eq("organization_id", organizationId);
  return { customer: organization.data?.stripe_customer_id ?? null, subscriptions: subscriptions.data?.length ?? -1 };
}

const test = (name: string, fn: () => Promise<void>) => Deno.test({ name, sanitizeOps: false, sanitizeResources: false, fn });

test("Stripe down during checkout: a retriable 503 with the envelope, nothing written, and a retry works", async () => {
  const { owner, organizationId } = await ownerWithOrganization("Down Inc");
  await setStripeFault("down");
  try {
    const refused = await api(owner, "POST", "/subscription/checkout", checkoutBody(organizationId));
    assert.equal(refused.status, 503, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, "payment_provider_unavailable");
    assert.deepEqual(await billingRows(organizationId), { customer: null, subscriptions: 0 }, "nothing half-written");

    await setStripeFault("error");
    const failing = await api(owner, "POST", "/credit-products/checkout", { organization_id: organizationId, product_code: "credits_1000" });
    assert.equal(failing.status, 503, "Stripe answering 500 is also a retriable 503");
  } finally {
    await setStripeFault("ok");
  }
  const retried = await api(owner, "POST", "/subscription/checkout", checkoutBody(organizationId));
  assert.equal(retried.status, 200, JSON.stringify(retried.body));
  assert.equal((await customersOf(organizationId)).length, 1, "one Stripe customer");
});

test("Stripe slow: the call gives up with a 503; the retry reuses the customer Stripe made meanwhile", async () => {
  const { owner, organizationId } = await ownerWithOrganization("Slow Inc");
  // Longer than the functions' Stripe timeout (2 s under `npm test`): every attempt times
  // out, yet the emulator, like Stripe, still creates the customer once the delay is over.
  await setStripeFault("slow", 3_000);
  try {
    const slow = await api(owner, "POST", "/subscription/checkout", checkoutBody(organizationId));
    assert.equal(slow.status, 503, JSON.stringify(slow.body));
    assert.equal(slow.body.error.code, "payment_provider_unavailable");
    assert.equal((await billingRows(organizationId)).customer, null, "we never heard of the customer, so we stored none");
  } finally {
    await setStripeFault("ok");
  }
  await eventually("Stripe to finish the slow requests", async () => ((await customersOf(organizationId)).length > 0 ? true : undefined));
  const retried = await api(owner, "POST", "/subscription/checkout", checkoutBody(organizationId));
  assert.equal(retried.status, 200, JSON.stringify(retried.body));
  const customers = await customersOf(organizationId);
  assert.equal(customers.length, 1, "the retry reused Stripe's customer (same idempotency key), no duplicate");
  assert.equal((await billingRows(organizationId)).customer, customers[0], "and that is the customer we linked");
});

test("a double click (five requests at once) opens one Checkout Session for one customer", async () => {
  const { owner, organizationId } = await ownerWithOrganization("Clicky Inc");
  const responses = await Promise.all(
    Array.from({ length: 5 }, () => api(owner, "POST", "/subscription/checkout", checkoutBody(organizationId))),
  );
  assert.deepEqual(responses.map((r) => r.status), [200, 200, 200, 200, 200], JSON.stringify(responses.map((r) => r.body)));
  assert.equal(new Set(responses.map((r) => r.body.url)).size, 1, "every click gets the same Checkout Session");
  const customers = await customersOf(organizationId);
  assert.equal(customers.length, 1, "one Stripe customer");
  assert.equal((await billingRows(organizationId)).customer, customers[0]);

  const packs = await Promise.all(Array.from({ length: 3 }, () =>
    api(owner, "POST", "/credit-products/checkout", { organization_id: organizationId, product_code: "credits_1000" })));
  assert.equal(new Set(packs.map((r) => r.body.url)).size, 1, "a double click on a credit pack opens one session too");
});

test("a webhook blocked by a held organization lock is acknowledged, stays received, then the sweep applies it exactly once", async () => {
  const { owner, organizationId } = await ownerWithOrganization("Locked Inc");
  const checkout = await api(owner, "POST", "/subscription/checkout", checkoutBody(organizationId));
  assert.equal(checkout.status, 200, JSON.stringify(checkout.body));
  const customerId = (await billingRows(organizationId)).customer!;
  let locker: pg.Client | undefined;
  await setDelivery(false);
  try {
    // Subscribe with delivery off, so the test delivers the events itself.
    await payCheckout(checkout.body.url);
    const events = await eventsOfCustomer(customerId);
    const paid = events.find((event) => event.type === "invoice.paid");
    assert.ok(paid, "the trial's invoice was paid");

    // Hold the organization's billing lock, as a long transaction would.
    locker = new pg.Client({ connectionString: required("TEST_DATABASE_URL") });
    await locker.connect();
    await locker.query("begin");
    await locker.query("select 1 from public.organizations where id = $1 for update", [organizationId]);
    const blocked = await deliverEvent(paid);
    assert.equal(blocked.status, 200, "stored, so acknowledged at once: Stripe has nothing to retry");
    assert.equal(blocked.body.status, "received");
    // The background apply waits for the lock (lock_timeout), gives up, and notes why.
    const failed = await eventually("the background apply to give up on the lock", async () => {
      const row = await inboxRow(paid.id);
      return row?.last_error ? row : undefined;
    });
    assert.equal(failed.status, "received", "a lock that does not come is a transient failure: the event stays received");
    const before = await db.from("credit_lots").select("id").eq("organization_id", organizationId);
    assert.equal(before.data?.length, 0, "and nothing of it was written");
    await locker.query("rollback");

    // The sweep (a scheduled job, every minute) applies what is left received.
    const swept = await sweepInbox({ older_than_seconds: 0 });
    assert.equal(swept.status, 200, JSON.stringify(swept.body));
    assert.ok(swept.body.applied >= 1, `the sweep applied the event: ${JSON.stringify(swept.body)}`);
    assert.deepEqual(await inboxRow(paid.id), { status: "processed", attempts: 1, last_error: null });

    // Stripe's own deliveries of everything, the blocked one included, twice over.
    for (const event of [paid, ...events, ...events]) {
      const response = await deliverEvent(event);
      assert.equal(response.status, 200, `${event.type}: ${JSON.stringify(response.body)}`);
    }
    await appliedAll(events.map((event) => event.id));
    const lots = await db.from("credit_lots").select("reference, granted").eq("organization_id", organizationId);
    assert.deepEqual(lots.data, [{ reference: paid.data.object.id, granted: 500 }], "the trial invoice granted (Starter's trial allowance) once");
    assert.equal((await latestSubscription(owner, organizationId))?.status, "trialing");
  } finally {
    await locker?.end().catch(() => {});
    await setDelivery(true);
  }
});

test("a consumption that cannot take the organization's lock (a long transaction holds it) is a retriable 503 and consumes nothing", async () => {
  const { owner, organizationId } = await ownerWithOrganization("Busy Inc");
  const granted = await db.rpc("grant_credits", { p_organization_id: organizationId, p_amount: 100, p_source: "purchased" });
  assert.equal(granted.error, null, JSON.stringify(granted.error));
  const locker = new pg.Client({ connectionString: required("TEST_DATABASE_URL") });
  await locker.connect();
  try {
    await locker.query("begin");
    await locker.query("select 1 from public.organizations where id = $1 for update", [organizationId]);
    const response = await fetch(`${required("TEST_SUPABASE_URL")}/functions/v1/billing/credits/consume`, {
      method: "POST",
      headers: { Authorization: `Bearer ${owner.token}`, apikey: required("TEST_SUPABASE_ANON_KEY"), "Content-Type": "application/json" },
      body: JSON.stringify({ organization_id: organizationId, event_key: "api_call_basic", quantity: 1 }),
    });
    const body = await response.json();
    assert.equal(response.status, 503, JSON.stringify(body));
    assert.equal(body.error.code, "service_unavailable");
    assert.ok(Number(response.headers.get("retry-after")) > 0, "the caller is told when to retry");
  } finally {
    await locker.query("rollback").catch(() => {});
    await locker.end().catch(() => {});
  }
  const consumptions = await db.from("credit_consumptions").select("id").eq("organization_id", organizationId);
  assert.equal(consumptions.data?.length, 0, "nothing was consumed");
  const after = await api(owner, "POST", "/credits/consume", { organization_id: organizationId, event_key: "api_call_basic", quantity: 1 });
  assert.equal(after.status, 200, "once the lock is free the same call succeeds");
});
