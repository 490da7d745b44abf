/**
 * Webhook delivery: signed with the endpoint's secret, retried with backoff while the endpoint
 * fails, attempts visible through the events API, and the duplicate / reorder switches that
 * let receiver tests see what Stripe's at-least-once, any-order delivery can do.
 */
import assert from "node:assert/strict";
import { afterEach, describe, test } from "node:test";
import Stripe from "stripe";
import { type Harness, startHarness, webhookSecret } from "./harness.ts";

let h: Harness | undefined;
afterEach(async () => {
  await h?.close();
  h = undefined;
});

interface Attempt {
  attempt: number;
  at: number;
  status: number | null;
  duplicate: boolean;
}

describe("webhook delivery", () => {
  test("every event is signed for the endpoint's secret and for no other", async () => {
    h = await startHarness();
    let raw: { body: string; header: string } | undefined;
    // Catch one raw delivery to check the signature against a wrong secret too.
    const original = h.emulator.webhooks.options.url;
    const { createServer } = await import("node:http");
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        raw = { body: Buffer.concat(chunks).toString("utf8"), header: String(req.headers["stripe-signature"]) };
        res.writeHead(200).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const address = server.address();
    assert.ok(address && typeof address === "object");
    h.emulator.webhooks.configure({ url: `http://127.0.0.1:${address.port}/hook` });
    await h.stripe.customers.create({ email: "signed@acme.test" });
    await h.emulator.webhooksIdle();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    h.emulator.webhooks.configure({ url: original });

    assert.ok(raw);
    assert.match(raw.header, /^t=\d+,v1=[0-9a-f]{64}/);
    const verifier = new Stripe("sk_test_x");
    const event = await verifier.webhooks.constructEventAsync(raw.body, raw.header, webhookSecret, 300);
    assert.equal(event.type, "customer.created");
    await assert.rejects(verifier.webhooks.constructEventAsync(raw.body, raw.header, "whsec_wrong", 300), /signature/i);
    await assert.rejects(verifier.webhooks.constructEventAsync(raw.body.replace("signed@", "forged@"), raw.header, webhookSecret, 300), /signature/i);
  });

  test("a failing endpoint is retried with backoff until it answers 2xx; attempts show on the event", async () => {
    h = await startHarness({ retryDelaysMs: [20, 40, 80] });
    h.receiver.failNext.push(500, 503);
    const customer = await h.stripe.customers.create({ email: "retry@acme.test" });
    await h.emulator.webhooksIdle();
    assert.equal(h.receiver.events.length, 1);
    assert.equal(h.receiver.events[0]?.type, "customer.created");

    const [event] = (await h.stripe.events.list({ type: "customer.created" })).data;
    assert.ok(event);
    assert.equal((event.data.object as Stripe.Customer).id, customer.id);
    assert.equal(event.pending_webhooks, 0);
    const attempts = (event as unknown as { emulator_delivery_attempts: Attempt[] }).emulator_delivery_attempts;
    assert.deepEqual(attempts.map((a) => [a.attempt, a.status]), [[1, 500], [2, 503], [3, 200]]);
    const [a1, a2, a3] = attempts;
    assert.ok(a1 && a2 && a3);
    assert.ok(a2.at - a1.at >= 15, "waited before the first retry");
    assert.ok(a3.at - a2.at >= 35, "and longer before the second");
    assert.equal((await h.stripe.events.list({ delivery_success: true })).data.length, 1);
  });

  test("an endpoint that never recovers is given up on after the last retry, still pending", async () => {
    h = await startHarness({ retryDelaysMs: [1, 1] });
    h.receiver.failNext.push(500, 500, 500);
    await h.stripe.customers.create({ email: "gone@acme.test" });
    await h.emulator.webhooksIdle();
    const [event] = (await h.stripe.events.list({ delivery_success: false })).data;
    assert.ok(event);
    assert.equal(event.pending_webhooks, 1);
    const log = (await (await fetch(`${h.emulator.url}/_emulator/webhooks`)).json()) as { deliveries: Array<{ event: string; attempts: Attempt[] }> };
    assert.equal(log.deliveries.find((d) => d.event === event.id)?.attempts.length, 3);
  });

  test("an unreachable endpoint is retried like a failing one", async () => {
    h = await startHarness({ retryDelaysMs: [1] });
    h.emulator.webhooks.configure({ url: "http://127.0.0.1:1/nothing-listens-here" });
    await h.stripe.customers.create({ email: "unreachable@acme.test" });
    await h.emulator.webhooksIdle();
    const stored = h.emulator.store.events[0];
    assert.equal(stored?.deliveries.length, 2);
    assert.equal(stored?.deliveries[0]?.status, null);
    assert.ok(stored?.deliveries[0]?.error);
  });

  test("the duplicate switch delivers every event twice", async () => {
    h = await startHarness();
    const response = await fetch(`${h.emulator.url}/_emulator/webhooks`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ duplicate: true }) });
    assert.equal(response.status, 200);
    await h.stripe.customers.create({ email: "twice@acme.test" });
    await h.emulator.webhooksIdle();
    assert.equal(h.receiver.events.length, 2);
    assert.equal(h.receiver.events[0]?.id, h.receiver.events[1]?.id);
    assert.deepEqual(h.emulator.store.events[0]?.deliveries.map((d) => d.duplicate), [false, true]);
  });

  test("the reorder switch delivers each burst of events in reverse", async () => {
    h = await startHarness({ reorder: true });
    const product = await h.stripe.products.create({ name: "Pro" });
    const price = await h.stripe.prices.create({ product: product.id, currency: "usd", unit_amount: 100, recurring: { interval: "month" } });
    const session = await h.stripe.checkout.sessions.create({ mode: "subscription", line_items: [{ price: price.id, quantity: 1 }], success_url: "http://a.test" });
    await h.emulator.webhooksIdle();
    const from = h.receiver.events.length;
    const paid = await fetch(`${h.emulator.url}/_emulator/checkout/${session.id}/pay`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ card_number: "4242424242424242", email: "r@acme.test" }) });
    assert.equal(paid.status, 200);
    await h.emulator.webhooksIdle();
    const delivered = h.receiver.events.slice(from).map((e) => e.id);
    const emitted = h.emulator.store.events.slice(-delivered.length).map((s) => s.event.id);
    assert.ok(delivered.length > 5);
    assert.deepEqual(delivered, [...emitted].reverse());
    const types = h.receiver.events.slice(from).map((e) => e.type);
    assert.ok(types.indexOf("customer.subscription.updated") < types.indexOf("customer.subscription.created"), "the activation arrives before the creation");
  });
  test("with delivery switched off, events are still created and listed but not sent", async () => {
    h = await startHarness();
    const off = await fetch(`${h.emulator.url}/_emulator/webhooks`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ enabled: false }) });
    assert.equal((await off.json()).enabled, false);
    const customer = await h.stripe.customers.create({ email: "quiet@acme.test" });
    await h.emulator.webhooksIdle();
    assert.equal(h.receiver.events.length, 0, "nothing was delivered");
    const listed = await h.stripe.events.list({ type: "customer.created" });
    assert.equal((listed.data[0]?.data.object as Stripe.Customer).id, customer.id, "the event exists for a replay");

    await fetch(`${h.emulator.url}/_emulator/webhooks`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ enabled: true }) });
    await h.stripe.customers.create({ email: "loud@acme.test" });
    await h.emulator.webhooksIdle();
    assert.equal(h.receiver.events.length, 1, "switched back on, new events are delivered");
  });
});
