/**
 * The webhook answers as soon as an event is stored and applies it in the background
 * (`EdgeRuntime.waitUntil`); what the background does not finish, the inbox sweep applies:
 *
 * - the answer does not wait for the apply: with the organization's lock held, Stripe gets
 *   its 200 while the effect is not there yet, and the effect appears once the lock is free;
 * - an event stored but never applied (the function killed right after storing it) is
 *   applied once by the sweep, and a second sweep changes nothing;
 * - the sweep and Stripe's redeliveries racing over the same events apply each once.
 */
import assert from "node:assert/strict";
import pg from "pg";
import type Stripe from "stripe";
import {
  anonKey,
  api,
  appliedAll,
  db,
  deliverEvent,
  eventsOfCustomer,
  eventually,
  inboxRow,
  latestSubscription,
  type Member,
  ownerWithOrganization,
  payCheckout,
  required,
  setDelivery,
  sweepInbox,
} from "./support.ts";

const test = (name: string, fn: () => Promise<void>) => Deno.test({ name, sanitizeOps: false, sanitizeResources: false, fn });

/** Subscribes a new organization with webhook delivery off; returns its events, undelivered. */
async function subscribedWithoutDelivery(name: string): Promise<{ owner: Member; organizationId: string; events: Stripe.Event[] }> {
  const { owner, organizationId } = await ownerWithOrganization(name);
  const checkout = await api(owner, "POST", "/subscription/checkout", { organization_id: organizationId, plan_code: "starter", interval: "month" });
  assert.equal(checkout.status, 200, JSON.stringify(checkout.body));
  await setDelivery(false);
  try {
    const session = await payCheckout(checkout.body.url) as Stripe.Checkout.Session;
    return { owner, organizationId, events: await eventsOfCustomer(session.customer as string) };
  } finally {
    await setDelivery(true);
  }
}

async function lotsOf(organizationId: string) {
  const { data, error } = await db.from("credit_lots").select("reference, granted").eq("organization_id", organizationId);
  if (error) throw new Error(error.message);
  return data;
}

/** Stores an event as the webhook does, and nothing more: as if the function died right after. */
async function storeOnly(event: Stripe.Event) {
  const { error } = await db.rpc("record_stripe_event", {
    p_event_id: event.id,
    p_type: event.type,
    p_created_at: new Date(event.created * 1000).toISOString(),
    p_livemode: event.livemode,
    p_payload: event,
  });
  if (error) throw new Error(error.message);
}

test("the webhook answers before applying: with the organization locked the answer comes, the effect follows the lock", async () => {
  const { organizationId, events } = await subscribedWithoutDelivery("Answer First Inc");
  const paid = events.find((event) => event.type === "invoice.paid");
  assert.ok(paid, "the trial's invoice was paid");

  // Hold the organization's billing lock, as a long transaction would.
  const locker = new pg.Client({ connectionString: required("TEST_DATABASE_URL") });
  await locker.connect();
  try {
    await locker.query("begin");
    await locker.query("select 1 from public.organizations where id = $1 for update", [organizationId]);
    const response = await deliverEvent(paid);
    assert.equal(response.status, 200, JSON.stringify(response.body));
    assert.deepEqual(response.body, { received: true, status: "received" }, "acknowledged as stored, not as applied");
    assert.deepEqual(await lotsOf(organizationId), [], "the answer came while the effect could not have been written");
    assert.equal((await inboxRow(paid.id))?.status, "received");
    await locker.query("rollback");
  } finally {
    await locker.end();
  }

  const lots = await eventually("the background apply to grant the trial's credits", async () => {
    const rows = await lotsOf(organizationId);
    return rows.length > 0 ? rows : undefined;
  });
  assert.deepEqual(lots, [{ reference: paid.data.object.id, granted: 500 }], "applied once the lock was free");
  assert.deepEqual(await inboxRow(paid.id), { status: "processed", attempts: 1, last_error: null }, "by the delivery's own background task");
});

test("an event stored but never applied (the function killed after the answer) is applied once by the sweep", async () => {
  const { owner, organizationId, events } = await subscribedWithoutDelivery("Killed Inc");
  for (const event of events) await storeOnly(event);
  assert.deepEqual(await lotsOf(organizationId), [], "stored, nothing applied");
  const paid = events.find((event) => event.type === "invoice.paid")!;
  assert.equal((await inboxRow(paid.id))?.status, "received");

  const early = await sweepInbox();
  assert.equal(early.status, 200, JSON.stringify(early.body));
  assert.equal((await inboxRow(paid.id))?.status, "received",
    "the sweep leaves events received moments ago to their delivery (the default threshold is a minute)");

  const swept = await sweepInbox({ older_than_seconds: 0 });
  assert.equal(swept.status, 200, JSON.stringify(swept.body));
  assert.deepEqual(Object.keys(swept.body).sort(), ["applied", "failed", "ignored", "parked"]);
  assert.ok(swept.body.applied >= 1, JSON.stringify(swept.body));
  await appliedAll(events.map((event) => event.id));
  assert.deepEqual(await lotsOf(organizationId), [{ reference: paid.data.object.id, granted: 500 }], "the trial's credits, once");
  assert.equal((await latestSubscription(owner, organizationId))?.status, "trialing");
  const ledger = await db.from("credit_transactions").select("id").eq("organization_id", organizationId);

  await sweepInbox({ older_than_seconds: 0 });
  assert.deepEqual(await lotsOf(organizationId), [{ reference: paid.data.object.id, granted: 500 }], "a second sweep grants nothing");
  const after = await db.from("credit_transactions").select("id").eq("organization_id", organizationId);
  assert.equal(after.data?.length, ledger.data?.length, "and writes nothing to the ledger");
});

test("a sweep and Stripe's redeliveries racing over the same events apply each once", async () => {
  const { owner, organizationId, events } = await subscribedWithoutDelivery("Race Inc");
  for (const event of events) await storeOnly(event);
  const responses = await Promise.all([
    sweepInbox({ older_than_seconds: 0 }),
    ...events.map(deliverEvent),
    sweepInbox({ older_than_seconds: 0 }),
    ...events.map(deliverEvent),
  ]);
  assert.ok(responses.every((response) => response.status === 200), JSON.stringify(responses.map((r) => r.body)));
  await appliedAll(events.map((event) => event.id));
  const paid = events.find((event) => event.type === "invoice.paid")!;
  assert.deepEqual(await lotsOf(organizationId), [{ reference: paid.data.object.id, granted: 500 }], "the trial's credits, once");
  assert.equal((await latestSubscription(owner, organizationId))?.status, "trialing");
  const { data: inbox } = await db.from("stripe_events").select("status").in("id", events.map((event) => event.id));
  assert.deepEqual(inbox?.filter((row) => !["processed", "ignored"].includes(row.status)), [], "none failed or parked");
});

test("only the service role can sweep the inbox, and a sweep's options are checked", async () => {
  const unauthenticated = await fetch(`${required("TEST_SUPABASE_URL")}/functions/v1/stripe-webhook/sweep`, { method: "POST" });
  assert.equal(unauthenticated.status, 401);
  assert.equal((await unauthenticated.json()).error.code, "unauthorized");
  assert.equal((await sweepInbox({}, anonKey)).status, 401, "the anon key is not the service role's");
  for (const bad of [{ older_than_seconds: -1 }, { limit: 0 }, { limit: 1.5 }, { everything: true }]) {
    const response = await sweepInbox(bad);
    assert.equal(response.status, 400, JSON.stringify(bad));
    assert.equal(typeof response.body.error?.code, "string", "with the error envelope");
  }
  // The schedule's own call (pg_cron through pg_net, and the local scheduler) names the job.
  const scheduled = await sweepInbox({ job: "stripe_inbox_sweep" });
  assert.equal(scheduled.status, 200, JSON.stringify(scheduled.body));
});
