/**
 * Notifications end to end, through the running stack: the outbox written with a change is
 * POSTed to the SaaS's receiver signed as Standard Webhooks specifies (the receiver verifies
 * with the same library), retried until the receiver accepts it, never sent for a change that
 * rolled back; and a low-balance alert reaches every owner and admin, and no member, in the
 * stack's mail catcher. `npm test` points BILLING_WEBHOOK_URL at TEST_NOTIFICATION_RECEIVER_PORT,
 * where these tests start their receiver.
 */
import assert from "node:assert/strict";
import pg from "pg";
import { Webhook } from "standardwebhooks";
import { db, eventually, type Member, ownerWithOrganization, required, serviceKey, signUp, supabaseUrl } from "./support.ts";

const receiverPort = Number(required("TEST_NOTIFICATION_RECEIVER_PORT"));
const receiverSecret = required("TEST_BILLING_WEBHOOK_SECRET");
const mailCatcherUrl = required("TEST_MAIL_CATCHER_URL");

interface Received {
  id: string;
  verified: boolean;
  body: { type: string; timestamp: string; data: { organization_id: string; [key: string]: unknown } };
  answered: number;
}

/**
 * The SaaS's endpoint: verifies every request with the standardwebhooks library, and answers
 * 500 to the first `failures` attempts of each notification of the organizations in `flaky`.
 */
function startReceiver(options: { flaky?: Set<string>; failures?: number } = {}) {
  const webhook = new Webhook(receiverSecret);
  const received: Received[] = [];
  const server = Deno.serve({ port: receiverPort, hostname: "127.0.0.1", onListen: () => {} }, async (request) => {
    const payload = await request.text();
    const headers = Object.fromEntries(request.headers);
    let verified = true;
    try {
      webhook.verify(payload, headers);
    } catch {
      verified = false;
    }
    const body = JSON.parse(payload) as Received["body"];
    const id = request.headers.get("webhook-id") ?? "";
    const earlier = received.filter((r) => r.id === id).length;
    const answered = !verified
      ? 400
      : options.flaky?.has(body.data.organization_id) && earlier < (options.failures ?? 0)
      ? 500
      : 200;
    received.push({ id, verified, body, answered });
    return new Response(null, { status: answered });
  });
  return { received, close: () => server.shutdown() };
}

/** Runs one delivery round as the scheduler does, with the service role key. */
async function deliver(): Promise<{ delivered: number; failed: number; retried: number; emailed: number }> {
  const response = await fetch(`${supabaseUrl}/functions/v1/notifications/deliver`, {
    method: "POST",
    headers: { Authorization: `Bearer ${serviceKey}` },
  });
  const body = await response.json();
  assert.equal(response.status, 200, JSON.stringify(body));
  return body;
}

/**
 * Makes the organization's pending retries due now, as if their backoff had passed (only rows
 * with no attempt under way: every claimed attempt has been recorded).
 */
async function skipBackoff(client: pg.Client, organizationId: string): Promise<void> {
  await client.query(
    `update public.notifications n set next_attempt_at = now()
      where n.organization_id = $1 and n.status = 'pending'
        and n.attempts = (select count(*) from public.notification_attempts a where a.notification_id = n.id)`,
    [organizationId],
  );
}

async function withDatabase<T>(run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: required("TEST_DATABASE_URL") });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

async function raiseAlert(organizationId: string, title: string, severity = "warning") {
  const { error } = await db.rpc("raise_billing_alert", {
    p_organization_id: organizationId,
    p_kind: "unusual_usage",
    p_severity: severity,
    p_title: title,
  });
  if (error) throw new Error(error.message);
}

Deno.test("deliver needs the service role key", async () => {
  const { owner } = await ownerWithOrganization("Notifications auth");
  const response = await fetch(`${supabaseUrl}/functions/v1/notifications/deliver`, {
    method: "POST",
    headers: { Authorization: `Bearer ${owner.token}` },
  });
  const body = await response.json();
  assert.equal(response.status, 401);
  assert.equal(body.error.code, "unauthorized");
});

Deno.test("a receiver that answers 500 three times gets the signed notification on the fourth attempt", async () => {
  const { organizationId } = await ownerWithOrganization("Flaky receiver");
  const receiver = startReceiver({ flaky: new Set([organizationId]), failures: 3 });
  try {
    await raiseAlert(organizationId, "Usage spike");
    await withDatabase(async (client) => {
      const ours = () => receiver.received.filter((r) => r.body.data.organization_id === organizationId);
      await eventually("the fourth attempt", async () => {
        await deliver();
        if (ours().some((r) => r.answered === 200)) return true;
        await skipBackoff(client, organizationId);
        return undefined;
      }, 60_000);

      const attempts = ours();
      assert.deepEqual(attempts.map((r) => r.answered), [500, 500, 500, 200], "three failures, then accepted");
      assert.ok(attempts.every((r) => r.verified), "every attempt verifies with the standardwebhooks library");
      assert.equal(new Set(attempts.map((r) => r.id)).size, 1, "every attempt carries the same webhook-id");
      const body = attempts[3]!.body;
      assert.equal(body.type, "alert.raised");
      assert.equal(body.data.organization_id, organizationId);
      assert.equal(body.data.title, "Usage spike");
      assert.ok(!Number.isNaN(Date.parse(body.timestamp)), "the body carries an ISO timestamp");

      const stored = await client.query(
        `select n.status, n.attempts, array_agg(a.response_status order by a.attempt) as statuses
           from public.notifications n join public.notification_attempts a on a.notification_id = n.id
          where n.id = $1 group by n.id, n.organization_id`,
        [attempts[0]!.id],
      );
      assert.deepEqual(stored.rows[0], { status: "delivered", attempts: 4, statuses: [500, 500, 500, 200] });
    });
  } finally {
    await receiver.close();
  }
});

Deno.test("concurrent delivery rounds send each notification once", async () => {
  const { organizationId } = await ownerWithOrganization("Concurrent deliverers");
  const receiver = startReceiver();
  try {
    const titles = Array.from({ length: 8 }, (_, i) => `Spike ${i}`);
    for (const title of titles) await raiseAlert(organizationId, title, "info");
    const ours = () => receiver.received.filter((r) => r.body.data.organization_id === organizationId);
    await eventually("every notification delivered", async () => {
      await Promise.all([deliver(), deliver(), deliver()]);
      return ours().length >= titles.length ? true : undefined;
    }, 30_000);
    assert.deepEqual(ours().map((r) => r.body.data.title).sort(), titles, "each notification arrived exactly once");
  } finally {
    await receiver.close();
  }
});

Deno.test("nothing is delivered for a change whose transaction rolled back", async () => {
  const { organizationId } = await ownerWithOrganization("Rolled back");
  const receiver = startReceiver();
  try {
    await withDatabase(async (client) => {
      await client.query("begin");
      await client.query("set local role service_role");
      await client.query(
        `select public.raise_billing_alert($1, 'unusual_usage', 'critical', 'Never happened')`,
        [organizationId],
      );
      await client.query("rollback");
    });
    await raiseAlert(organizationId, "Did happen");
    const ours = () => receiver.received.filter((r) => r.body.data.organization_id === organizationId);
    await eventually("the committed alert's notification", async () => {
      await deliver();
      return ours().some((r) => r.body.data.title === "Did happen") ? true : undefined;
    }, 30_000);
    assert.deepEqual(ours().map((r) => r.body.data.title), ["Did happen"]);
    assert.ok(ours().every((r) => r.verified));
  } finally {
    await receiver.close();
  }
});

interface CaughtEmail {
  subject: string;
  text: string;
  to: { address: string }[];
}

async function emailOf(member: Member): Promise<string> {
  const { data, error } = await member.client.auth.getUser();
  if (error || !data.user?.email) throw new Error(`no email for ${member.userId}: ${error?.message}`);
  return data.user.email;
}

Deno.test("a low-balance alert emails every owner and admin, and no member", async () => {
  const { owner, organizationId } = await ownerWithOrganization("Emailed org");
  const admin = await signUp();
  const member = await signUp();
  for (const [who, role] of [[admin, "admin"], [member, "member"]] as const) {
    const { error } = await owner.client.rpc("add_organization_member", {
      p_organization_id: organizationId,
      p_user_id: who.userId,
      p_role: role,
    });
    if (error) throw new Error(error.message);
  }
  const threshold = await owner.client.rpc("set_low_balance_threshold", { p_organization_id: organizationId, p_threshold: 100 });
  if (threshold.error) throw new Error(threshold.error.message);
  const granted = await db.rpc("grant_credits", {
    p_organization_id: organizationId,
    p_amount: 150,
    p_source: "purchased",
    p_reference: `cs_test_${crypto.randomUUID().replaceAll("-", "")}`,
  });
  if (granted.error) throw new Error(granted.error.message);
  const consumed = await owner.client.rpc("consume_credits", {
    p_organization_id: organizationId,
    p_event_key: "storage_gb_month",
    p_quantity: 6,
  });
  if (consumed.error) throw new Error(consumed.error.message);

  const [ownerEmail, adminEmail, memberEmail] = await Promise.all([emailOf(owner), emailOf(admin), emailOf(member)]);
  const caught = async () => {
    const response = await fetch(`${mailCatcherUrl}/api/email`);
    return (await response.json()) as CaughtEmail[];
  };
  const to = (emails: CaughtEmail[], address: string) => emails.filter((e) => e.to.some((t) => t.address === address));
  const emails = await eventually("the alert emails in the mail catcher", async () => {
    await deliver();
    const all = await caught();
    return to(all, ownerEmail).length && to(all, adminEmail).length ? all : undefined;
  }, 30_000);

  for (const address of [ownerEmail, adminEmail]) {
    const mine = to(emails, address);
    assert.equal(mine.length, 1, `one email to ${address}`);
    assert.match(mine[0]!.subject, /Credit balance is low/);
    assert.match(mine[0]!.subject, /Emailed org/);
    assert.match(mine[0]!.text, /Open the billing dashboard: http/);
  }
  // Every email of the alert has been sent (none left pending), and none went to the member.
  await withDatabase(async (client) => {
    const rows = await client.query(
      `select recipient, status from public.notification_emails where organization_id = $1 order by recipient`,
      [organizationId],
    );
    assert.deepEqual(rows.rows.map((r) => r.status), ["delivered", "delivered"]);
  });
  assert.equal(to(await caught(), memberEmail).length, 0, "members get no email");
});
