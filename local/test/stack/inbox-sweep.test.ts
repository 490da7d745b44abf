/**
 * The webhook inbox sweep as it runs by itself, against the running test stack (`npm test`
 * passes its URLs and keys): a real subscription is bought in the Stripe emulator with webhook
 * delivery off, and its events are stored in the inbox and nothing more, as if the function
 * had died right after storing them. With no request made, the local scheduler's
 * stripe_inbox_sweep job applies them once they are a minute old, and a later run of the same
 * job changes nothing.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import Stripe from "stripe";
import { startScheduler } from "../../stack/scheduler.ts";
import { signUp } from "../gateway/support.ts";
import { eventually } from "./processes.ts";

function required(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run the suites through \`npm test\`.`);
  return value;
}

let pool: pg.Pool;
before(() => {
  pool = new pg.Pool({ connectionString: required("TEST_DATABASE_URL"), max: 2 });
});
after(async () => {
  await pool.end();
});

/** POSTs to one of the emulator's controls; fails on a non-2xx. */
async function emulator(path: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const response = await fetch(`${required("TEST_STRIPE_API_BASE")}${path}`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: "Bearer sk_test_local_emulator" },
    body: JSON.stringify(body),
  });
  const json = (await response.json()) as Record<string, unknown>;
  if (!response.ok) throw new Error(`emulator ${path} answered ${response.status}: ${JSON.stringify(json)}`);
  return json;
}

/**
 * A new owner buys the starter plan through the billing API and pays the Checkout page with
 * webhook delivery off; returns the organization and every Stripe event about its customer,
 * none of them delivered.
 */
async function subscribedWithoutDelivery(): Promise<{ organizationId: string; events: Stripe.Event[] }> {
  const url = required("TEST_SUPABASE_URL");
  const anonKey = required("TEST_SUPABASE_ANON_KEY");
  const owner = await signUp(
    { url, anonKey, serviceRoleKey: required("TEST_SUPABASE_SERVICE_ROLE_KEY"), jwtSecret: "", close: async () => {} },
    "swept",
  );
  const token = owner.accessToken;
  const created = await owner.db.rpc("create_organization", { p_name: "Swept By Itself Inc" });
  assert.equal(created.error, null);
  const organizationId = created.data as string;

  const checkout = await fetch(`${url}/functions/v1/billing/subscription/checkout`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, apikey: anonKey, "Content-Type": "application/json" },
    body: JSON.stringify({ organization_id: organizationId, plan_code: "starter", interval: "month" }),
  });
  const session = (await checkout.json()) as { url: string };
  assert.equal(checkout.status, 200, JSON.stringify(session));

  await emulator("/_emulator/webhooks", { enabled: false });
  try {
    const sessionId = new URL(session.url).pathname.split("/").pop()!;
    const paid = (await emulator(`/_emulator/checkout/${sessionId}/pay`, { card_number: "4242424242424242" })) as { customer: string };
    const base = new URL(required("TEST_STRIPE_API_BASE"));
    const stripe = new Stripe("sk_test_local_emulator", { host: base.hostname, port: Number(base.port), protocol: "http", maxNetworkRetries: 0 });
    const all = await stripe.events.list({ limit: 100 }).autoPagingToArray({ limit: 10_000 });
    const events = all.filter((event) => JSON.stringify(event.data.object).includes(paid.customer)).reverse();
    return { organizationId, events };
  } finally {
    await emulator("/_emulator/webhooks", { enabled: true });
  }
}

async function lotsOf(organizationId: string): Promise<{ reference: string; granted: number }[]> {
  const { rows } = await pool.query<{ reference: string; granted: number }>(
    "select reference, granted from public.credit_lots where organization_id = $1 order by reference",
    [organizationId],
  );
  return rows;
}

async function ledgerRows(organizationId: string): Promise<number> {
  const { rows } = await pool.query<{ n: number }>("select count(*)::int as n from public.credit_transactions where organization_id = $1", [organizationId]);
  return rows[0]!.n;
}

async function statusesOf(eventIds: string[]): Promise<Map<string, string>> {
  const { rows } = await pool.query<{ id: string; status: string }>("select id, status::text from public.stripe_events where id = any($1)", [eventIds]);
  return new Map(rows.map((row) => [row.id, row.status]));
}

describe("the inbox sweep, run by the local scheduler", () => {
  test("an event stored but never applied (the background task killed) is applied by the scheduled sweep, once", async () => {
    const startedAt = new Date();
    const { organizationId, events } = await subscribedWithoutDelivery();
    const paid = events.find((event) => event.type === "invoice.paid");
    assert.ok(paid, `the first invoice was paid (events: ${events.map((event) => event.type).join(", ")})`);
    assert.ok(events.some((event) => event.type === "customer.subscription.created"));
    const ids = events.map((event) => event.id);

    // Stored as the webhook stores them, and nothing more: the process died right after.
    for (const event of events) {
      await pool.query("select public.record_stripe_event($1, $2, $3, $4, $5)", [
        event.id, event.type, new Date(event.created * 1000), event.livemode, JSON.stringify(event),
      ]);
    }
    // Received two minutes ago and never taken up since: past the sweep's one-minute threshold.
    await pool.query(
      "update public.stripe_events set received_at = now() - interval '2 minutes', last_attempted_at = null where id = any($1)",
      [ids],
    );
    // The types the webhook acts on wait in the inbox; any other was stored as ignored at once.
    const stored = await statusesOf(ids);
    const pending = ids.filter((id) => stored.get(id) === "received");
    const created = events.find((event) => event.type === "customer.subscription.created")!;
    assert.ok(pending.includes(paid.id) && pending.includes(created.id), "stored, not applied");
    assert.deepEqual([...stored.values()].filter((status) => status !== "received" && status !== "ignored"), [], "none applied");
    assert.deepEqual(await lotsOf(organizationId), [], "and no credits granted");

    const running = await startScheduler({
      databaseUrl: required("TEST_DATABASE_URL"),
      functionsUrl: `${required("TEST_SUPABASE_URL")}/functions/v1`,
      serviceRoleKey: required("TEST_SUPABASE_SERVICE_ROLE_KEY"),
      only: ["stripe_inbox_sweep"],
      scheduleOverrides: { stripe_inbox_sweep: "1 seconds" },
      log: () => {},
    });
    try {
      await eventually("every stored event to be applied by the scheduled sweep", async () => {
        const statuses = await statusesOf(pending);
        return pending.every((id) => statuses.get(id) !== "received") ? true : undefined;
      });
      const applied = await statusesOf([paid.id, created.id]);
      assert.deepEqual([applied.get(paid.id), applied.get(created.id)], ["processed", "processed"]);
      const lots = await lotsOf(organizationId);
      assert.equal(lots.length, 1, JSON.stringify(lots));
      assert.equal(lots[0]!.reference, (paid.data.object as Stripe.Invoice).id, "the paid invoice's credits");
      assert.ok(lots[0]!.granted > 0);
      const { rows: subscriptions } = await pool.query<{ status: string }>(
        "select status::text from public.organization_subscriptions where organization_id = $1",
        [organizationId],
      );
      assert.deepEqual(subscriptions.map((row) => row.status), ["trialing"], "the subscription as Stripe has it");
      // The run is recorded when the sweep's request returns, a moment after its events are
      // applied: wait for the record rather than read it once.
      await eventually("a recorded run of the scheduled job that applied them", async () => {
        const { rows: applying } = await pool.query<{ n: number }>(
          `select count(*)::int as n from public.job_runs
            where job_name = 'stripe_inbox_sweep' and started_at >= $1 and (result ->> 'applied')::int >= 1`,
          [startedAt],
        );
        return applying[0]!.n >= 1 ? true : undefined;
      }, 30_000);

      // A later run of the same job finds nothing left to do.
      const ledger = await ledgerRows(organizationId);
      const settledAt = new Date();
      await eventually("another run of the sweep", async () => {
        const { rows } = await pool.query<{ outcome: string }>(
          "select outcome from public.job_runs where job_name = 'stripe_inbox_sweep' and started_at > $1 order by started_at limit 1",
          [settledAt],
        );
        return rows[0];
      });
      assert.deepEqual(await lotsOf(organizationId), lots, "a second run grants nothing");
      assert.equal(await ledgerRows(organizationId), ledger, "and writes nothing to the ledger");
      assert.equal((await statusesOf([paid.id])).get(paid.id), "processed");
    } finally {
      await running.stop();
      await pool.query("delete from public.job_runs where job_name = 'stripe_inbox_sweep' and started_at >= $1", [startedAt]);
    }
  });
});
