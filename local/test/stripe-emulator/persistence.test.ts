/**
 * The state file (`stateFile`): after every request it holds exactly the live state, a
 * graceful stop keeps deliveries that were on the wire, and files it cannot trust (another
 * version, a damaged line, another emulator holding them) are refused with what to do, while
 * a save cut off by a crash is dropped. Crashes themselves (SIGKILL) are in crash.test.ts.
 */
import assert from "node:assert/strict";
import { appendFileSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, afterEach, describe, test } from "node:test";
import Stripe from "stripe";
import { readState } from "../../stripe-emulator/persistence.ts";
import { startStripeEmulator } from "../../stripe-emulator/server.ts";
import { Store } from "../../stripe-emulator/store.ts";
import { advance, createCatalog, type Harness, payCheckout, startHarness, startReceiver, startSilentEndpoint, submitCheckout, submitPortal, until, webhookSecret } from "./harness.ts";

const directory = mkdtempSync(path.join(tmpdir(), "stripe-emulator-state-"));
let fileCount = 0;
const freshFile = () => path.join(directory, `run-${++fileCount}`, "state.jsonl");
after(() => rmSync(directory, { recursive: true, force: true }));

const running: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const item of running.splice(0).reverse()) await item.close();
});

/** Everything a Store holds, as plain JSON, in its order. */
function contents(store: Store): unknown {
  const collections: Record<string, unknown> = {};
  for (const [name, map] of store.collections()) collections[name] = [...map.untrackedEntries()].map(([key, value]) => [key, JSON.parse(JSON.stringify(value)) as unknown]);
  return { collections, events: JSON.parse(JSON.stringify(store.events)) as unknown, invoiceSequence: store.invoiceSequence };
}

/** Reads the state file into a fresh store (as a restart would) and compares it with the live one. */
async function assertFileHoldsLiveState(h: Harness, file: string, step: string): Promise<Store> {
  await h.emulator.webhooksIdle();
  // Delivery outcomes are saved with the next request (or shortly): make one.
  await (await fetch(h.emulator.url)).text();
  const reloaded = new Store();
  readState(file, reloaded);
  assert.deepEqual(contents(reloaded), contents(h.emulator.store), `after ${step}, the state file holds the live state`);
  return reloaded;
}

describe("the state file", () => {
  test("after every request it holds exactly the live state, shared objects included", async () => {
    const file = freshFile();
    const h = await startHarness({ stateFile: file });
    running.push(h);
    const { stripe, emulator } = h;
    const check = (step: string) => assertFileHoldsLiveState(h, file, step);

    const { monthly, annual, team, pack } = await createCatalog(stripe);
    await check("creating the catalog (a lookup key moved between prices)");
    const customer = await stripe.customers.create({ email: "owner@acme.test", metadata: { organization_id: "org_1" } });
    await stripe.customers.update(customer.id, { name: "Acme", metadata: { tier: "gold" } });
    await check("creating and updating a customer");

    const session = await stripe.checkout.sessions.create({ mode: "subscription", customer: customer.id, line_items: [{ price: monthly.id, quantity: 1 }], success_url: "http://app.test/ok" });
    assert.equal((await submitCheckout(session, "4242424242424242")).status, 303);
    const subscriptionId = String((await stripe.checkout.sessions.retrieve(session.id)).subscription);
    await check("a subscription Checkout paid on the hosted page");

    const packSession = await stripe.checkout.sessions.create({ mode: "payment", line_items: [{ price: pack.id }], success_url: "http://app.test/ok" });
    assert.equal((await payCheckout(emulator.url, packSession.id)).status, 200);
    await check("a pack paid by a visitor without a customer");

    const declined = await stripe.checkout.sessions.create({ mode: "subscription", customer_email: "late@acme.test", line_items: [{ price: team.id }], success_url: "http://app.test/ok" });
    assert.equal((await payCheckout(emulator.url, declined.id, "4000000000000002")).status, 402);
    await check("a declined card");

    await stripe.subscriptions.update(subscriptionId, { items: [{ id: (await stripe.subscriptions.retrieve(subscriptionId)).items.data[0]?.id, price: team.id }] });
    await check("a plan change with prorations pending for the renewal");
    await advance(emulator, customer.id);
    await check("a renewal that bills the pending prorations");
    const schedule = await stripe.subscriptionSchedules.create({ from_subscription: subscriptionId });
    const period = (await stripe.subscriptions.retrieve(subscriptionId)).items.data[0]!;
    await stripe.subscriptionSchedules.update(schedule.id, {
      end_behavior: "release",
      phases: [{ items: [{ price: team.id, quantity: 1 }], start_date: schedule.phases[0]!.start_date, end_date: period.current_period_end }, { items: [{ price: monthly.id, quantity: 1 }] }],
    });
    await check("a change scheduled for the period's end");

    const switching = await stripe.billingPortal.configurations.create({ features: { subscription_update: { enabled: true } } });
    const portal = await stripe.billingPortal.sessions.create({ customer: customer.id, configuration: switching.id, return_url: "http://app.test/billing" });
    assert.equal((await submitPortal(portal, { action: "switch", subscription: subscriptionId, price: annual.id })).status, 303);
    assert.equal((await submitPortal(portal, { action: "cancel_at_period_end", subscription: subscriptionId })).status, 303);
    await check("portal actions");

    const failing = await stripe.checkout.sessions.create({ mode: "subscription", customer_email: "dunning@acme.test", line_items: [{ price: monthly.id }], success_url: "http://app.test/ok" });
    assert.equal((await payCheckout(emulator.url, failing.id, "4000000000000341")).status, 200);
    const failingCustomer = String((await stripe.checkout.sessions.retrieve(failing.id)).customer);
    for (let i = 0; i < 5; i++) await advance(emulator, failingCustomer);
    await check("a failed renewal, its retries and the cancellation that ends them");

    const charge = (await stripe.charges.list({ payment_intent: String((await stripe.checkout.sessions.retrieve(packSession.id)).payment_intent) })).data[0];
    assert.ok(charge);
    await stripe.refunds.create({ charge: charge.id, amount: 300 });
    await check("a partial refund");

    const expiring = await stripe.checkout.sessions.create({ mode: "payment", line_items: [{ price: pack.id }], success_url: "http://app.test/ok" });
    await stripe.checkout.sessions.expire(expiring.id);
    await stripe.customers.create({ email: "once@acme.test" }, { idempotencyKey: "create-once" });
    await stripe.prices.update(monthly.id, { metadata: { plan: "pro" } });
    await check("an expired session, an idempotent request and a price update");

    const reloaded = await check("everything");
    const subscription = reloaded.subscriptions.peek(subscriptionId);
    const price = subscription?.items.data[0]?.price;
    assert.ok(price);
    assert.equal(price, reloaded.prices.peek(price.id), "a subscription item holds the stored Price itself after a reload, as it did in memory");
  });

  test("saved cards, default cards and PaymentIntents survive a restart: ids, card behaviour, idempotency keys, authentication", async () => {
    const file = freshFile();
    const first = await startHarness({ stateFile: file });
    const { pack } = await createCatalog(first.stripe);
    /** A customer whose default card (saved at a pack Checkout) is `cardNumber`. */
    const withCard = async (cardNumber: string) => {
      const customer = (await first.stripe.customers.create({ email: `restart-${cardNumber}@acme.test` })).id;
      const session = await first.stripe.checkout.sessions.create({ mode: "payment", customer, line_items: [{ price: pack.id }], payment_intent_data: { setup_future_usage: "off_session" }, success_url: "http://app.test/ok" });
      assert.equal((await payCheckout(first.emulator.url, session.id, cardNumber)).status, 200);
      const card = (await first.stripe.paymentMethods.list({ customer, type: "card" })).data[0]?.id ?? "";
      await first.stripe.customers.update(customer, { invoice_settings: { default_payment_method: card } });
      return { customer, card };
    };
    const good = await withCard("4242424242424242");
    const strict = await withCard("4000002760003184");
    const topUp = (stripe: Stripe, who: { customer: string; card: string }, key: string) =>
      stripe.paymentIntents.create({ amount: 1000, currency: "usd", customer: who.customer, payment_method: who.card, off_session: true, confirm: true }, { idempotencyKey: key });
    const paid = await topUp(first.stripe, good, "restart-good");
    const needsAuthentication = await topUp(first.stripe, strict, "restart-strict").catch((error: Stripe.errors.StripeCardError) => error.payment_intent);
    assert.equal(needsAuthentication?.status, "requires_payment_method");
    await assertFileHoldsLiveState(first, file, "saved cards and off-session PaymentIntents");
    await first.close();

    const second = await startHarness({ stateFile: file });
    running.push(second);
    const cards = await second.stripe.paymentMethods.list({ customer: good.customer, type: "card" });
    assert.deepEqual(cards.data.map((pm) => [pm.id, pm.card?.last4]), [[good.card, "4242"]]);
    assert.equal(((await second.stripe.customers.retrieve(strict.customer)) as Stripe.Customer).invoice_settings.default_payment_method, strict.card);
    assert.equal((await second.stripe.paymentIntents.retrieve(paid.id)).status, "succeeded");
    const replayed = await topUp(second.stripe, good, "restart-good");
    assert.equal(replayed.id, paid.id, "an idempotency key used before the restart replays");
    assert.equal(replayed.lastResponse.headers["idempotent-replayed"], "true");
    const again = await topUp(second.stripe, strict, "restart-strict-2").catch((error: Stripe.errors.StripeCardError) => error);
    assert.equal(again instanceof Stripe.errors.StripeCardError ? again.code : again, "authentication_required", "the card still needs authentication after the restart");
    const authenticated = await fetch(`${second.emulator.url}/_emulator/payment_intents/${needsAuthentication?.id}/authenticate`, { method: "POST", headers: { "content-type": "application/json" }, body: "{}" });
    assert.equal(authenticated.status, 200);
    assert.equal((await second.stripe.paymentIntents.retrieve(String(needsAuthentication?.id))).status, "succeeded");
  });

  test("a graceful stop cuts off deliveries on the wire without losing them", async () => {
    const file = freshFile();
    const silent = await startSilentEndpoint();
    running.push(silent);
    const first = await startStripeEmulator({ port: 0, webhookUrl: silent.url, webhookSecret, stateFile: file });
    const stripe = new Stripe("sk_test_emulator", { host: "127.0.0.1", port: first.port, protocol: "http", maxNetworkRetries: 0 });
    const { pack } = await createCatalog(stripe);
    const session = await stripe.checkout.sessions.create({ mode: "payment", customer_creation: "always", line_items: [{ price: pack.id }], success_url: "http://app.test/ok" });
    assert.equal((await payCheckout(first.url, session.id)).status, 200);
    await until(() => silent.requests > 0, "a delivery on the wire");
    const emitted = first.store.events.map((s) => s.event.id);
    await first.stop();

    const receiver = await startReceiver(new Stripe("sk_test_verifier"));
    running.push(receiver);
    const second = await startStripeEmulator({ port: 0, webhookUrl: receiver.url, webhookSecret, stateFile: file });
    running.push({ close: () => second.stop() });
    await second.webhooksIdle();
    assert.deepEqual(receiver.rejected, [], "every delivery is signed for the endpoint's secret");
    assert.deepEqual(receiver.events.map((e) => e.id).sort(), [...emitted].sort(), "every event emitted before the stop arrives after the restart, once");
    assert.ok(receiver.events.some((e) => e.type === "checkout.session.completed" && e.data.object.id === session.id));
    for (const stored of second.store.events) {
      assert.deepEqual(stored.deliveries.map((d) => d.status), [200], `${stored.event.type}: the cut-off attempt is not recorded as a failure`);
    }
  });

  test("a state file from an incompatible version is refused with what to do, and left as it was", async () => {
    const file = freshFile();
    const first = await startStripeEmulator({ port: 0, stateFile: file });
    const stripe = new Stripe("sk_test_emulator", { host: "127.0.0.1", port: first.port, protocol: "http", maxNetworkRetries: 0 });
    await stripe.customers.create({ email: "kept@acme.test" });
    await first.stop();
    const lines = readFileSync(file, "utf8").split("\n");
    lines[0] = JSON.stringify({ ...(JSON.parse(lines[0] ?? "{}") as object), version: 999 });
    writeFileSync(file, lines.join("\n"));
    const before = readFileSync(file, "utf8");

    await assert.rejects(startStripeEmulator({ port: 0, stateFile: file }), (error: Error) => {
      assert.match(error.message, /incompatible/);
      assert.match(error.message, /npm run reset/);
      assert.match(error.message, /delete the file/);
      assert.equal(error.message.split(/\.\s/).length, 1, "one sentence");
      return true;
    });
    assert.equal(readFileSync(file, "utf8"), before, "the refused file is not touched");
    assert.equal(existsSync(`${file}.lock`), false, "and not left locked");
  });

  test("a damaged line inside the file is refused; a save a crash cut off at the end is dropped", async () => {
    const file = freshFile();
    const first = await startStripeEmulator({ port: 0, stateFile: file });
    const stripe = new Stripe("sk_test_emulator", { host: "127.0.0.1", port: first.port, protocol: "http", maxNetworkRetries: 0 });
    const kept = await stripe.customers.create({ email: "kept@acme.test" });
    await first.stop();

    appendFileSync(file, '{"changes":[{"c":"customers","k":"cus_torn","v":{"id":"cus_to');
    const second = await startStripeEmulator({ port: 0, stateFile: file });
    assert.equal(second.store.customers.peek(kept.id)?.email, "kept@acme.test", "everything saved before the crash is there");
    assert.equal(second.store.customers.peek("cus_torn"), undefined, "the unfinished save is not");
    await second.stop();
    assert.ok(readFileSync(file, "utf8").endsWith("\n"), "the restart rewrote the file without the unfinished line");

    const lines = readFileSync(file, "utf8").split("\n");
    lines.splice(1, 0, "{not json");
    writeFileSync(file, lines.join("\n"));
    await assert.rejects(startStripeEmulator({ port: 0, stateFile: file }), /damaged at line 2; run `npm run reset`/);
  });

  test("a second emulator on the same state file is refused while the first runs", async () => {
    const file = freshFile();
    const first = await startStripeEmulator({ port: 0, stateFile: file });
    running.push({ close: () => first.stop() });
    await assert.rejects(startStripeEmulator({ port: 0, stateFile: file }), /in use by another Stripe emulator/);
  });
});
