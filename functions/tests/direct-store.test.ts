/**
 * The webhook's store over a direct Postgres connection (SUPABASE_DB_URL, functions/_shared/
 * direct-sql.ts): it stores as the service role whichever login the URL carries (the local
 * superuser, or a login that may only take the service_role role, as `postgres` on hosted
 * Supabase), keeps once-per-event, and a database it cannot reach is a 503 with Retry-After
 * that stores nothing.
 */
import assert from "node:assert/strict";
import pg from "pg";
import Stripe from "stripe";
import { directSql } from "../_shared/direct-sql.ts";
import { cryptoProvider } from "../_shared/stripe.ts";
import { createWebhookHandler } from "../stripe-webhook/handler.ts";
import { eventPayload, required } from "./support.ts";

const test = (name: string, fn: () => Promise<void>) => Deno.test({ name, sanitizeOps: false, sanitizeResources: false, fn });
const databaseUrl = required("TEST_DATABASE_URL");

let sequence = 0;
const eventArgs = () => ({
  p_event_id: `evt_direct_${Date.now()}_${++sequence}`,
  p_type: "customer.updated",
  p_created_at: new Date().toISOString(),
  p_livemode: false,
  p_payload: { id: "evt_direct", object: "event", type: "customer.updated", data: { object: { id: "cus_direct" } } },
  p_handled: false,
});

/** What the webhook reads from record_stripe_event's answer. */
function recorded(result: unknown): { status: unknown; duplicate: unknown } {
  const { status, duplicate } = result as { status: unknown; duplicate: unknown };
  return { status, duplicate };
}

async function storedStatus(eventId: string): Promise<string | undefined> {
  const client = new pg.Client(databaseUrl);
  await client.connect();
  try {
    return (await client.query<{ status: string }>("select status from public.stripe_events where id = $1", [eventId])).rows[0]?.status;
  } finally {
    await client.end();
  }
}

test("direct store: the local superuser login stores an event once (a redelivery is a duplicate)", async () => {
  const sql = directSql(databaseUrl);
  try {
    const args = eventArgs();
    assert.deepEqual(recorded(await sql.call("record_stripe_event", args)), { status: "ignored", duplicate: false });
    assert.deepEqual(recorded(await sql.call("record_stripe_event", args)), { status: "ignored", duplicate: true });
    assert.equal(await storedStatus(args.p_event_id), "ignored");
  } finally {
    await sql.end();
  }
});

test("direct store: a login that is no superuser but may take service_role (postgres on hosted Supabase) stores as the service role", async () => {
  const admin = new pg.Client(databaseUrl);
  await admin.connect();
  const login = `direct_store_${Date.now()}`;
  await admin.query(`create role ${login} login password 'direct-store' nosuperuser nobypassrls`);
  await admin.query(`grant service_role to ${login}`);
  const url = new URL(databaseUrl);
  url.username = login;
  url.password = "direct-store";
  const sql = directSql(url.toString());
  try {
    const args = eventArgs();
    assert.deepEqual(recorded(await sql.call("record_stripe_event", args)), { status: "ignored", duplicate: false });
    assert.equal(await storedStatus(args.p_event_id), "ignored");
  } finally {
    await sql.end();
    await admin.query(`drop owned by ${login}`);
    await admin.query(`drop role ${login}`);
    await admin.end();
  }
});

test("direct store: the database unreachable is a 503 with Retry-After, so Stripe delivers the event again", async () => {
  // A port nothing listens on: the connection is refused.
  const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (probe.addr as Deno.NetAddr).port;
  probe.close();
  const unreachable = new URL(databaseUrl);
  unreachable.port = String(port);
  const sql = directSql(unreachable.toString());
  const secret = "whsec_direct_store";
  const stripe = new Stripe("sk_test_unused", { httpClient: Stripe.createFetchHttpClient() });
  const handle = createWebhookHandler({
    stripe,
    webhookSecret: secret,
    serviceRoleKey: "unused",
    cryptoProvider,
    toleranceSeconds: 300,
    gracePeriodDays: 7,
    now: () => new Date(),
    waitUntil: () => assert.fail("nothing stored, so nothing runs in the background"),
    rpc: () => assert.fail("the store goes through the direct connection"),
    store: (fn, args) => sql.call(fn, args),
    organizationOfCustomer: () => Promise.resolve(null),
    log: () => {},
  });
  try {
    const eventId = `evt_direct_down_${Date.now()}`;
    const payload = eventPayload(eventId, "customer.updated", { id: "cus_direct", object: "customer" });
    const signature = await stripe.webhooks.generateTestHeaderStringAsync({ payload, secret });
    const response = await handle(new Request("http://functions/stripe-webhook", {
      method: "POST",
      headers: { "content-type": "application/json", "stripe-signature": signature },
      body: payload,
    }));
    assert.equal(response.status, 503);
    assert.ok(response.headers.get("retry-after"));
    assert.equal(((await response.json()) as { error: { code: string } }).error.code, "service_unavailable");
    assert.equal(await storedStatus(eventId), undefined);
  } finally {
    await sql.end();
  }
});
