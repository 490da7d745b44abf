/**
 * Test harness: an emulator on a free port, the real `stripe` client pointed at it, and a tiny
 * webhook receiver that verifies every delivery with `constructEventAsync` and records it.
 */
import assert from "node:assert/strict";
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import Stripe from "stripe";
import { startStripeEmulator, type StripeEmulator, type StripeEmulatorOptions } from "../../stripe-emulator/server.ts";

export const webhookSecret = "whsec_test_emulator_secret";

export interface Receiver {
  url: string;
  /** Verified events in arrival order (duplicates included). */
  events: Stripe.Event[];
  /** Deliveries whose signature did not verify (must stay empty). */
  rejected: string[];
  /** Status codes to answer, consumed one per delivery before answering 200. */
  failNext: number[];
  close(): Promise<void>;
}

/** A receiver that checks each delivery's Stripe-Signature exactly as a Deno function would. */
export async function startReceiver(verifier: Stripe, port = 0): Promise<Receiver> {
  const receiver: Omit<Receiver, "url" | "close"> = { events: [], rejected: [], failNext: [] };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      const header = req.headers["stripe-signature"];
      verifier.webhooks
        .constructEventAsync(raw, typeof header === "string" ? header : "", webhookSecret, 300)
        .then((event) => {
          const status = receiver.failNext.shift() ?? 200;
          if (status === 200) receiver.events.push(event);
          res.writeHead(status).end();
        })
        .catch((error: unknown) => {
          receiver.rejected.push(error instanceof Error ? error.message : String(error));
          res.writeHead(400).end();
        });
    });
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  return {
    ...receiver,
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhook`,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export interface Harness {
  emulator: StripeEmulator;
  stripe: Stripe;
  receiver: Receiver;
  close(): Promise<void>;
}

/** Starts an emulator delivering to a fresh receiver; retries back off in milliseconds. */
export async function startHarness(options: StripeEmulatorOptions = {}): Promise<Harness> {
  const verifier = new Stripe("sk_test_verifier");
  const receiver = await startReceiver(verifier);
  const emulator = await startStripeEmulator({ port: 0, webhookUrl: receiver.url, webhookSecret, retryDelaysMs: [5, 10, 20], ...options });
  const stripe = new Stripe("sk_test_emulator", { host: "127.0.0.1", port: emulator.port, protocol: "http", maxNetworkRetries: 0 });
  return {
    emulator,
    stripe,
    receiver,
    close: async () => {
      await emulator.stop();
      await receiver.close();
    },
  };
}

/** A product with a monthly and an annual price and a one-time credit pack price. */
export async function createCatalog(stripe: Stripe) {
  const product = await stripe.products.create({ name: "Pro", metadata: { plan: "pro" } });
  const monthly = await stripe.prices.create({ product: product.id, currency: "usd", unit_amount: 2900, recurring: { interval: "month" }, lookup_key: "pro_monthly", transfer_lookup_key: true });
  const annual = await stripe.prices.create({ product: product.id, currency: "usd", unit_amount: 29000, recurring: { interval: "year" }, lookup_key: "pro_annual", transfer_lookup_key: true });
  const team = await stripe.prices.create({ product_data: { name: "Team" }, currency: "usd", unit_amount: 9900, recurring: { interval: "month" }, lookup_key: "team_monthly", transfer_lookup_key: true });
  const pack = await stripe.prices.create({ product_data: { name: "5,000 credits" }, currency: "usd", unit_amount: 1000, lookup_key: "pack_5000", transfer_lookup_key: true });
  return { product, monthly, annual, team, pack };
}

/** Submits the hosted Checkout page's form, as a browser would; returns the response. */
export async function submitCheckout(session: Stripe.Checkout.Session, cardNumber: string, email?: string): Promise<Response> {
  assert.ok(session.url, "a Checkout Session has a hosted page URL");
  const body = new URLSearchParams({ card_number: cardNumber, ...(email ? { email } : {}) });
  return fetch(session.url, { method: "POST", body, redirect: "manual", headers: { "content-type": "application/x-www-form-urlencoded" } });
}

/** Posts one of the portal page's forms. */
export async function submitPortal(session: Stripe.BillingPortal.Session, fields: Record<string, string>): Promise<Response> {
  return fetch(session.url, { method: "POST", body: new URLSearchParams(fields), redirect: "manual", headers: { "content-type": "application/x-www-form-urlencoded" } });
}

/** Runs the customer's test clock to its next billing event (or `to`). */
export async function advance(emulator: StripeEmulator, customer: string, to?: number): Promise<{ now: number }> {
  const response = await fetch(`${emulator.url}/_emulator/advance`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(to === undefined ? { customer } : { customer, to }),
  });
  assert.equal(response.status, 200, await response.clone().text());
  return (await response.json()) as { now: number };
}

/** Pays a Checkout Session through the emulator's test hook (what the hosted page's submit does). */
export async function payCheckout(emulatorUrl: string, sessionId: string, card = "4242424242424242"): Promise<Response> {
  return fetch(`${emulatorUrl}/_emulator/checkout/${sessionId}/pay`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ card_number: card }) });
}

/** A port nothing listens on (yet). */
export async function unusedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A webhook endpoint that accepts connections and never answers: deliveries stay on the wire. */
export async function startSilentEndpoint(): Promise<{ url: string; readonly requests: number; close(): Promise<void> }> {
  const state = { requests: 0 };
  const server: Server = createServer(() => {
    state.requests += 1;
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhook`,
    get requests() {
      return state.requests;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Polls until `condition` holds; fails the test with `what` after `timeoutMs`. */
export async function until(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Event types the receiver has seen since index `from`, in arrival order. */
export function typesSince(receiver: Receiver, from: number): string[] {
  return receiver.events.slice(from).map((e) => e.type);
}

/** The Stripe error a promise rejects with; fails the test when it resolves or throws anything else. */
export async function stripeError(promise: Promise<unknown>): Promise<Stripe.errors.StripeError> {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof Stripe.errors.StripeError, `expected a StripeError, got ${String(error)}`);
    return error;
  }
  assert.fail("expected the call to fail");
}
