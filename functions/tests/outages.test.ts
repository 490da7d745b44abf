/**
 * When what the functions depend on fails, callers get an answer they can act on, never a
 * 500 `internal_error`: the database (its gateway) answering 503 makes every billing route and
 * the webhook answer 503 with Retry-After and the envelope (Stripe retries the webhook), and a
 * request Stripe refuses is a 502 `payment_provider_rejected` that wrote nothing.
 *
 * The functions' handlers run in this process with the real clients (supabase-js, stripe)
 * pointed at small stand-ins that answer the way an outage does.
 */
import assert from "node:assert/strict";
import Stripe from "stripe";
import { createClient } from "@supabase/supabase-js";
import { createBillingApp } from "../billing/app.ts";
import { createWebhookHandler } from "../stripe-webhook/handler.ts";
import { rpc } from "../_shared/supabase.ts";
import { anonKey, db, ownerWithOrganization, serviceKey, supabaseUrl } from "./support.ts";

const test = (name: string, fn: () => Promise<void>) => Deno.test({ name, sanitizeOps: false, sanitizeResources: false, fn });
const noSession = { auth: { persistSession: false, autoRefreshToken: false } };

/** An HTTP server on a free port answering every request with `answer`; closed by the caller. */
function standIn(answer: (request: Request) => Response) {
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, answer);
  return { url: `http://127.0.0.1:${server.addr.port}`, port: server.addr.port, close: () => server.shutdown() };
}

function stripeAt(port: number): Stripe {
  return new Stripe("sk_test_stand_in", {
    httpClient: Stripe.createFetchHttpClient(),
    host: "127.0.0.1",
    port,
    protocol: "http",
    maxNetworkRetries: 0,
  });
}

/** What PostgREST (and the local gateway) answer while the database cannot be reached. */
const databaseDown = [
  () => Response.json({ code: "PGRST000", message: "Could not connect with the database.", details: null, hint: null }, { status: 503, headers: { "Retry-After": "0" } }),
  () => Response.json({ code: "PGRST002", message: "Could not query the database for the schema cache.", details: null, hint: null }, { status: 503, headers: { "Retry-After": "0" } }),
  () => new Response("Service Unavailable", { status: 503, headers: { "Retry-After": "0" } }),
];

/** A token shaped like the platform's (the platform verified it before the function ran). */
const token = `Bearer h.${btoa(JSON.stringify({ sub: crypto.randomUUID(), role: "authenticated" }))}.s`;
const org = "0b9c2a3e-1d2f-4c5b-8a7e-6f5d4c3b2a10";

test("the database down: every billing route answers 503 with Retry-After and the envelope", async () => {
  for (const answer of databaseDown) {
    const gateway = standIn(answer);
    const stripe = standIn(() => Response.json({ error: { type: "api_error", message: "not expected" } }, { status: 500 }));
    try {
      const app = createBillingApp({
        stripe: stripeAt(stripe.port),
        service: createClient(gateway.url, "service-role-key", noSession),
        userClient: (authorization) => createClient(gateway.url, "anon-key", { ...noSession, global: { headers: { Authorization: authorization } } }),
        appUrl: "http://127.0.0.1:5173",
      });
      const requests: Array<[string, string, unknown?]> = [
        ["GET", "/billing/plans"],
        ["GET", "/billing/credit-products"],
        ["GET", `/billing/subscription/${org}`],
        ["GET", `/billing/credits/${org}`],
        ["GET", `/billing/summary/${org}`],
        ["GET", `/billing/history/${org}`],
        ["POST", "/billing/credits/consume", { organization_id: org, event_key: "api_call_basic" }],
        ["POST", "/billing/subscription/checkout", { organization_id: org, plan_code: "starter", interval: "month" }],
        ["POST", "/billing/subscription/portal", { organization_id: org }],
        ["POST", "/billing/credit-products/checkout", { organization_id: org, product_code: "credits_1000" }],
        ["POST", "/billing/credits/consume-batch", { organization_id: org, events: [{ event_key: "api_call_basic" }] }],
        ["POST", "/billing/credits/reserve", { organization_id: org, event_key: "ai_inference" }],
        ["POST", `/billing/credits/reservations/${org}/settle`, { quantity: 1 }],
        ["POST", `/billing/credits/reservations/${org}/release`, {}],
        ["GET", `/billing/subscription/${org}/upcoming`],
        ["POST", "/billing/subscription/change/preview", { organization_id: org, plan_code: "professional", interval: "month" }],
        ["POST", "/billing/subscription/change", { organization_id: org, plan_code: "professional", interval: "month" }],
        ["POST", "/billing/subscription/change/cancel", { organization_id: org }],
        ["POST", "/billing/subscription/resume", { organization_id: org }],
      ];
      for (const [method, path, body] of requests) {
        const response = await app.fetch(new Request(`http://functions${path}`, {
          method,
          headers: { Authorization: token, ...(body ? { "Content-Type": "application/json" } : {}) },
          body: body ? JSON.stringify(body) : undefined,
        }));
        const what = `${method} ${path} (${answer().status} ${await answer().text()})`;
        assert.equal(response.status, 503, what);
        assert.ok(Number(response.headers.get("retry-after")) > 0, `${what}: Retry-After`);
        const envelope = await response.json();
        assert.deepEqual(Object.keys(envelope.error).sort(), ["code", "message"], what);
        assert.equal(envelope.error.code, "service_unavailable", what);
      }
    } finally {
      await gateway.close();
      await stripe.close();
    }
  }
});

test("the database down: the webhook answers 503 with Retry-After, so Stripe delivers the event again", async () => {
  const gateway = standIn(databaseDown[0]!);
  const stripe = stripeAt(1);
  const secret = "whsec_stand_in";
  try {
    const service = createClient(gateway.url, "service-role-key", noSession);
    const handle = createWebhookHandler({
      stripe,
      webhookSecret: secret,
      serviceRoleKey: "service-role-key",
      cryptoProvider: Stripe.createSubtleCryptoProvider(),
      toleranceSeconds: 300,
      gracePeriodDays: 7,
      now: () => new Date(),
      // Nothing is stored while the database is down, so nothing runs in the background.
      waitUntil: () => {},
      rpc: (fn, args) => rpc(service, fn, args),
      organizationOfCustomer: () => Promise.resolve(null),
      log: () => {},
    });
    const payload = JSON.stringify({
      id: "evt_outage1",
      object: "event",
      type: "invoice.paid",
      created: Math.floor(Date.now() / 1000),
      livemode: false,
      data: { object: { id: "in_outage1", object: "invoice" } },
    });
    const signature = await stripe.webhooks.generateTestHeaderStringAsync({ payload, secret });
    const response = await handle(new Request("http://functions/stripe-webhook", {
      method: "POST",
      headers: { "Stripe-Signature": signature, "Content-Type": "application/json" },
      body: payload,
    }));
    assert.equal(response.status, 503);
    assert.ok(Number(response.headers.get("retry-after")) > 0, "Retry-After");
    assert.equal((await response.json()).error.code, "service_unavailable");
  } finally {
    await gateway.close();
  }
});

test("a request Stripe refuses (invalid request) is a 502 payment_provider_rejected, not a 500, and writes nothing", async () => {
  const { owner, organizationId } = await ownerWithOrganization("Refused Inc");
  const stripe = standIn(() =>
    Response.json({ error: { type: "invalid_request_error", message: "This request cannot be made on this account." } }, { status: 400 })
  );
  try {
    const app = createBillingApp({
      stripe: stripeAt(stripe.port),
      service: createClient(supabaseUrl, serviceKey, noSession),
      userClient: (authorization) => createClient(supabaseUrl, anonKey, { ...noSession, global: { headers: { Authorization: authorization } } }),
      appUrl: "http://127.0.0.1:5173",
    });
    for (const [path, body] of [
      ["/billing/subscription/checkout", { organization_id: organizationId, plan_code: "starter", interval: "month" }],
      ["/billing/credit-products/checkout", { organization_id: organizationId, product_code: "credits_1000" }],
    ] as const) {
      const response = await app.fetch(new Request(`http://functions${path}`, {
        method: "POST",
        headers: { Authorization: `Bearer ${owner.token}`, "Content-Type": "application/json" },
        body: JSON.stringify(body),
      }));
      const envelope = await response.json();
      assert.equal(response.status, 502, `${path}: ${JSON.stringify(envelope)}`);
      assert.equal(envelope.error.code, "payment_provider_rejected");
      assert.doesNotMatch(envelope.error.message, /cannot be made on this account/, "Stripe's own words stay in our logs");
    }
  } finally {
    await stripe.close();
  }
  const { data } = await db.from("organizations").select("stripe_customer_id").eq("id", organizationId).single();
  assert.equal(data?.stripe_customer_id, null, "no customer was linked");
});
