/**
 * Crashes: the emulator's CLI (main.ts) in a child process with STRIPE_EMULATOR_STATE_FILE,
 * killed with SIGKILL (no chance to save anything more) and started again on the same file.
 * Every answered request must survive, and every event not yet delivered must arrive after
 * the restart, signed, once.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, afterEach, describe, test } from "node:test";
import Stripe from "stripe";
import { payCheckout, type Receiver, startReceiver, startSilentEndpoint, until, unusedPort, webhookSecret } from "./harness.ts";

const repoRoot = path.resolve(import.meta.dirname, "..", "..", "..");
const mainFile = path.join(repoRoot, "local", "stripe-emulator", "main.ts");
const directory = mkdtempSync(path.join(tmpdir(), "stripe-emulator-crash-"));
let fileCount = 0;
const freshFile = () => path.join(directory, `run-${++fileCount}`, "state.jsonl");
after(() => rmSync(directory, { recursive: true, force: true }));

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface ChildEmulator {
  url: string;
  stripe: Stripe;
  process: ChildProcess;
  /** SIGKILL: the process gets no chance to run anything. */
  crash(): Promise<void>;
}

interface Settings {
  stateFile: string;
  webhookUrl?: string;
  retryDelaysMs?: number[];
}

function childEnv(settings: Settings): NodeJS.ProcessEnv {
  return {
    ...process.env,
    PORT: "0",
    STRIPE_WEBHOOK_URL: settings.webhookUrl ?? "",
    STRIPE_WEBHOOK_SECRET: settings.webhookUrl ? webhookSecret : "",
    STRIPE_EMULATOR_STATE_FILE: settings.stateFile,
    STRIPE_EMULATOR_RETRY_DELAYS_MS: settings.retryDelaysMs?.join(",") ?? "",
    STRIPE_EMULATOR_PUBLIC_URL: "",
  };
}

function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once("exit", (code) => resolve(code)));
}

/** Starts `main.ts` and resolves once it listens. */
async function startChild(settings: Settings): Promise<ChildEmulator> {
  const child = spawn(process.execPath, ["--import", "tsx", mainFile], { cwd: repoRoot, env: childEnv(settings), stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the emulator did not start:\n${output}`)), 60_000);
    const read = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /listening on (\S+)/.exec(output);
      if (match?.[1]) {
        clearTimeout(timer);
        resolve(match[1]);
      }
    };
    child.stdout?.on("data", read);
    child.stderr?.on("data", read);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`the emulator exited (${String(code)}) before listening:\n${output}`));
    });
  });
  const base = new URL(url);
  const running: ChildEmulator = {
    url,
    stripe: new Stripe("sk_test_emulator", { host: base.hostname, port: Number(base.port), protocol: "http", maxNetworkRetries: 0 }),
    process: child,
    crash: async () => {
      child.kill("SIGKILL");
      await exited(child);
    },
  };
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill("SIGTERM");
      await exited(child);
    }
  });
  return running;
}

interface DeliveryLog {
  deliveries: Array<{ event: string; type: string; pending_webhooks: number; attempts: Array<{ attempt: number; status: number | null; duplicate: boolean }> }>;
}

async function deliveryLog(emulator: ChildEmulator): Promise<DeliveryLog["deliveries"]> {
  const response = await fetch(`${emulator.url}/_emulator/webhooks`);
  return ((await response.json()) as DeliveryLog).deliveries;
}

async function receiverFor(): Promise<Receiver> {
  const receiver = await startReceiver(new Stripe("sk_test_verifier"));
  cleanups.push(() => receiver.close());
  return receiver;
}

/** A credit pack bought by an organization's customer, as the product's checkout does it. */
async function buyPack(emulator: ChildEmulator): Promise<Stripe.Checkout.Session> {
  const { stripe } = emulator;
  const price = await stripe.prices.create({ product_data: { name: "5,000 credits" }, currency: "usd", unit_amount: 1000 });
  const customer = await stripe.customers.create({ email: "owner@acme.test", metadata: { organization_id: "org_1" } });
  const session = await stripe.checkout.sessions.create({
    mode: "payment",
    customer: customer.id,
    client_reference_id: "org_1",
    line_items: [{ price: price.id, quantity: 1 }],
    metadata: { organization_id: "org_1", product_code: "pack_5000" },
    success_url: "http://app.test/billing",
  });
  const paid = await payCheckout(emulator.url, session.id);
  assert.equal(paid.status, 200, await paid.clone().text());
  return session;
}

/** After the restart: every event the first run emitted arrives, verified, exactly once. */
async function assertDeliveredOnce(emulator: ChildEmulator, receiver: Receiver, emitted: string[]): Promise<void> {
  await until(async () => (await deliveryLog(emulator)).every((d) => d.pending_webhooks === 0), "every pending delivery to succeed after the restart");
  assert.deepEqual(receiver.rejected, [], "every delivery carries a valid Stripe-Signature for the endpoint's secret");
  assert.deepEqual(receiver.events.map((e) => e.id).sort(), [...emitted].sort(), "each event emitted before the crash arrives once");
}

describe("a crash (SIGKILL) of the emulator", () => {
  test("a pack paid just before a crash is delivered after the restart, signed, once each, to an endpoint that starts after the emulator", async () => {
    const stateFile = freshFile();
    const silent = await startSilentEndpoint();
    cleanups.push(() => silent.close());
    const first = await startChild({ stateFile, webhookUrl: silent.url });
    const session = await buyPack(first);
    // The first delivery is on the wire and unanswered; the rest were never attempted.
    await until(() => silent.requests > 0, "a delivery on the wire");
    const emitted = (await deliveryLog(first)).map((d) => d.event);
    assert.ok(emitted.length >= 5, "product, price, customer, checkout and payment events");
    await first.crash();

    // As under npm start, the emulator is up before the webhook function it delivers to.
    const port = await unusedPort();
    const second = await startChild({ stateFile, webhookUrl: `http://127.0.0.1:${port}/webhook` });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const receiver = await startReceiver(new Stripe("sk_test_verifier"), port);
    cleanups.push(() => receiver.close());
    await assertDeliveredOnce(second, receiver, emitted);
    for (const delivery of await deliveryLog(second)) {
      assert.deepEqual(delivery.attempts.map((a) => a.status), [200], `${delivery.type}: neither the cut-off attempt nor the wait for the endpoint counts as a failure`);
    }
    const completed = receiver.events.find((e): e is Stripe.CheckoutSessionCompletedEvent => e.type === "checkout.session.completed");
    assert.equal(completed?.data.object.id, session.id);
    assert.equal(completed?.data.object.payment_status, "paid");
    assert.deepEqual(completed?.data.object.metadata, { organization_id: "org_1", product_code: "pack_5000" });
    assert.ok(receiver.events.some((e) => e.type === "payment_intent.succeeded"));
  });

  test("deliveries waiting for a retry keep their schedule across a crash", async () => {
    const stateFile = freshFile();
    const retryDelaysMs = Array.from({ length: 200 }, () => 250);
    const failing = await receiverFor();
    failing.failNext.push(...Array.from({ length: 10_000 }, () => 500));
    const first = await startChild({ stateFile, webhookUrl: failing.url, retryDelaysMs });
    await buyPack(first);
    await until(async () => (await deliveryLog(first)).every((d) => d.attempts.some((a) => a.status === 500)), "every event's first attempt to fail");
    const emitted = (await deliveryLog(first)).map((d) => d.event);
    await first.crash();

    const receiver = await receiverFor();
    const second = await startChild({ stateFile, webhookUrl: receiver.url, retryDelaysMs });
    await assertDeliveredOnce(second, receiver, emitted);
    for (const delivery of await deliveryLog(second)) {
      const statuses = delivery.attempts.map((a) => a.status);
      assert.ok(statuses.length >= 2 && statuses.slice(0, -1).every((s) => s === 500) && statuses.at(-1) === 200, `${delivery.type}: the failures before the crash, then one success (${statuses.join(", ")})`);
      assert.deepEqual(
        delivery.attempts.map((a) => a.attempt),
        statuses.map((_, index) => index + 1),
        `${delivery.type}: the attempts continue the numbering of the first run`,
      );
    }
  });

  test("objects made through the stripe client are all there after a crash and behave the same", async () => {
    const stateFile = freshFile();
    const first = await startChild({ stateFile });
    const { stripe } = first;
    const customer = await stripe.customers.create({ email: "owner@acme.test", metadata: { organization_id: "org_1" } });
    const product = await stripe.products.create({ name: "Pro", metadata: { plan: "pro" } });
    const price = await stripe.prices.create({ product: product.id, currency: "usd", unit_amount: 2900, recurring: { interval: "month" }, lookup_key: "pro_monthly" });
    const session = await stripe.checkout.sessions.create({ mode: "subscription", customer: customer.id, line_items: [{ price: price.id, quantity: 1 }], success_url: "http://app.test/billing" });
    assert.equal((await payCheckout(first.url, session.id)).status, 200);
    const subscriptionId = String((await stripe.checkout.sessions.retrieve(session.id)).subscription);
    const firstRenewal = await fetch(`${first.url}/_emulator/advance`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ customer: customer.id }) });
    assert.equal(firstRenewal.status, 200);
    const created = await stripe.customers.create({ email: "once@acme.test" }, { idempotencyKey: "org_2-customer" });
    const before = {
      customer: await stripe.customers.retrieve(customer.id),
      product: await stripe.products.retrieve(product.id),
      price: await stripe.prices.retrieve(price.id),
      session: await stripe.checkout.sessions.retrieve(session.id),
      subscription: await stripe.subscriptions.retrieve(subscriptionId),
      invoices: await stripe.invoices.list({ subscription: subscriptionId }),
      customers: await stripe.customers.list({ limit: 100 }),
    };
    await first.crash();

    const second = await startChild({ stateFile });
    const again = second.stripe;
    assert.deepEqual(await again.customers.retrieve(customer.id), before.customer);
    assert.deepEqual(await again.products.retrieve(product.id), before.product);
    assert.deepEqual(await again.prices.retrieve(price.id), before.price);
    assert.deepEqual(await again.checkout.sessions.retrieve(session.id), before.session);
    assert.deepEqual(await again.subscriptions.retrieve(subscriptionId), before.subscription);
    assert.deepEqual(await again.invoices.list({ subscription: subscriptionId }), before.invoices);
    assert.deepEqual((await again.prices.list({ lookup_keys: ["pro_monthly"] })).data.map((p) => p.id), [price.id], "lookup keys still find their price");

    const replayed = await again.customers.create({ email: "once@acme.test" }, { idempotencyKey: "org_2-customer" });
    assert.equal(replayed.id, created.id, "an idempotency key used before the crash replays its first response");
    assert.equal(replayed.lastResponse.headers["idempotent-replayed"], "true");
    assert.deepEqual((await again.customers.list({ limit: 100 })).data.map((c) => c.id), before.customers.data.map((c) => c.id), "and creates nothing");

    // The test clock goes on from where it was: the next advance is the second renewal.
    const period = before.subscription.items.data[0];
    assert.ok(period);
    const secondRenewal = await fetch(`${second.url}/_emulator/advance`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ subscription: subscriptionId }) });
    assert.equal(((await secondRenewal.json()) as { now: number }).now, period.current_period_end);
    const renewed = await again.subscriptions.retrieve(subscriptionId);
    assert.equal(renewed.items.data[0]?.current_period_start, period.current_period_end, "the subscription renews on advance");
    const invoices = await again.invoices.list({ subscription: subscriptionId });
    assert.equal(invoices.data.length, before.invoices.data.length + 1);
    assert.equal(invoices.data[0]?.status, "paid", "with the saved card");
    assert.equal(invoices.data[0]?.billing_reason, "subscription_cycle");

    // A subscription item still shows its price as it is now, as before the crash.
    await again.prices.update(price.id, { metadata: { tier: "gold" } });
    assert.deepEqual((await again.subscriptions.retrieve(subscriptionId)).items.data[0]?.price.metadata, { tier: "gold" });
  });

  test("the CLI refuses a state file from an incompatible version with one sentence saying what to do", async () => {
    const stateFile = freshFile();
    const first = await startChild({ stateFile });
    await first.stripe.customers.create({ email: "kept@acme.test" });
    await first.crash();
    writeFileSync(stateFile, `${JSON.stringify({ format: "stripe-emulator-state", version: 0, stripe_api_version: "2020-08-27" })}\n`);
    const child = spawn(process.execPath, ["--import", "tsx", mainFile], { cwd: repoRoot, env: childEnv({ stateFile }), stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    child.stderr?.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
    assert.equal(await exited(child), 1);
    assert.equal(stderr.trim().split("\n").length, 1, `one line, no stack trace: ${stderr}`);
    assert.match(stderr, /incompatible Stripe emulator .*npm run reset.* or delete the file/);
  });
});
