/**
 * The webhook's guarantees (RELIABILITY.md), through the running function: a bad signature
 * stores nothing, an unhandled event or one about a customer we do not know is acknowledged
 * and ignored, and redeliveries (in sequence or ten at once) have one effect. `npm test`
 * passes the stack's URLs and webhook secret.
 */
import assert from "node:assert/strict";
import Stripe from "stripe";
import { anonKey, db, deliver, deliveredAll, eventPayload, eventsOfCustomer, eventually, payCheckout, serviceKey, sign, stripe, webhookUrl } from "./support.ts";

async function stored(eventId: string) {
  const { data, error } = await db.from("stripe_events").select("status, attempts").eq("id", eventId).maybeSingle();
  if (error) throw new Error(error.message);
  return data;
}

Deno.test("a missing, forged, re-serialized or stale signature is a 400 and stores nothing", async () => {
  const id = `evt_bad_${crypto.randomUUID().replaceAll("-", "")}`;
  const payload = eventPayload(id, "customer.created");
  const cases: Array<[string, string, string | null]> = [
    ["missing", payload, null],
    ["forged", payload, await sign(payload, { secret: "whsec_not_the_secret" })],
    ["re-serialized", JSON.stringify(JSON.parse(payload), null, 2), await sign(payload)],
    ["stale", payload, await sign(payload, { timestamp: Math.floor(Date.now() / 1000) - 3600 })],
  ];
  for (const [what, body, signature] of cases) {
    const response = await deliver(body, signature);
    assert.equal(response.status, 400, `${what} signature -> 400`);
    assert.equal(typeof response.body.error?.code, "string", `${what}: the error envelope`);
  }
  assert.equal(await stored(id), null, "nothing was stored");
});

Deno.test("an unhandled event type is acknowledged with 200 and recorded as ignored", async () => {
  const id = `evt_unhandled_${crypto.randomUUID().replaceAll("-", "")}`;
  const payload = eventPayload(id, "customer.created");
  const response = await deliver(payload, await sign(payload));
  assert.equal(response.status, 200);
  assert.deepEqual(await stored(id), { status: "ignored", attempts: 1 });
});

Deno.test("the same event delivered again, and ten times at once, is applied once", async () => {
  const id = `evt_dup_${crypto.randomUUID().replaceAll("-", "")}`;
  const payload = eventPayload(id, "product.updated");
  const first = await deliver(payload, await sign(payload));
  assert.equal(first.status, 200);
  const again = await deliver(payload, await sign(payload));
  assert.equal(again.status, 200);
  assert.equal(again.body.duplicate, true, "a redelivery is recognised");
  const parallel = await Promise.all(Array.from({ length: 10 }, async () => deliver(payload, await sign(payload))));
  assert.ok(parallel.every((r) => r.status === 200), "every delivery is acknowledged");
  assert.deepEqual(await stored(id), { status: "ignored", attempts: 12 }, "one row, every delivery counted");
});

Deno.test("methods other than POST are refused with the error envelope", async () => {
  const response = await fetch(webhookUrl, { method: "GET" });
  assert.equal(response.status, 405);
  assert.equal((await response.json()).error.code, "method_not_allowed");
});

Deno.test("an event that will fail again is parked, and the service role can re-drive it", async () => {
  const id = `evt_park_${crypto.randomUUID().replaceAll("-", "")}`;
  // A subscription Stripe does not know: re-reading it fails the same way every time.
  const payload = eventPayload(id, "customer.subscription.updated", { id: "sub_does_not_exist", object: "subscription" });
  const delivered = await deliver(payload, await sign(payload));
  assert.equal(delivered.status, 200, "a permanent failure is acknowledged, so Stripe does not retry for days");
  // Applied (and so parked) after the answer.
  await eventually("the event to be parked", async () => ((await stored(id))?.status === "parked" ? true : undefined));
  assert.equal((await stored(id))?.status, "parked");

  const redrive = (key: string | null, eventId = id) =>
    fetch(`${webhookUrl}/redrive/${eventId}`, {
      method: "POST",
      headers: key === null ? {} : { Authorization: `Bearer ${key}` },
    }).then(async (r) => ({ status: r.status, body: await r.json() }));

  assert.equal((await redrive(null)).status, 401, "re-driving needs a credential");
  assert.equal((await redrive(anonKey)).status, 401, "and the anon key is not it");
  const again = await redrive(serviceKey);
  assert.equal(again.status, 200);
  assert.equal(again.body.status, "parked", "still failing, it is parked again with its error");

  const ignoredId = `evt_done_${crypto.randomUUID().replaceAll("-", "")}`;
  const ignoredPayload = eventPayload(ignoredId, "customer.created");
  await deliver(ignoredPayload, await sign(ignoredPayload));
  assert.equal((await redrive(serviceKey, ignoredId)).status, 409, "only a parked event can be re-driven");
  assert.equal((await redrive(serviceKey, "evt_never_seen")).status, 404, "an unknown event cannot be re-driven");
});

Deno.test({
  name: "events about a customer we do not know are acknowledged, recorded as ignored, and change nothing",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    // A subscription made in Stripe directly (another app on the same account): no
    // organization in its metadata, a customer no organization is linked to.
    const price = await stripe.prices.create({ currency: "usd", unit_amount: 500, recurring: { interval: "month" }, product_data: { name: "Elsewhere" } });
    const session = await stripe.checkout.sessions.create({
      mode: "subscription",
      line_items: [{ price: price.id, quantity: 1 }],
      customer_email: `elsewhere-${crypto.randomUUID()}@example.test`,
      success_url: "https://elsewhere.example/done",
    });
    const paid = await payCheckout(session.url!) as Stripe.Checkout.Session;
    const customerId = paid.customer as string;
    await deliveredAll(customerId);
    const events = await eventsOfCustomer(customerId);
    assert.ok(events.some((event) => event.type === "customer.subscription.created"), "Stripe sent the subscription's events");
    const { data: inbox } = await db.from("stripe_events").select("type, status, organization_id").in("id", events.map((event) => event.id));
    assert.equal(inbox?.length, events.length, "every delivery was acknowledged and recorded");
    assert.deepEqual(inbox?.filter((row) => row.status !== "ignored" || row.organization_id !== null), [], "all ignored, none tied to an organization");
    const { count } = await db.from("organization_subscriptions").select("id", { count: "exact", head: true }).eq("stripe_subscription_id", paid.subscription as string);
    assert.equal(count, 0, "no subscription row was made for it");
  },
});
