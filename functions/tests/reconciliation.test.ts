/**
 * Reconciliation with Stripe, through the real webhook function and the emulator: with
 * webhook delivery switched off, a renewal and a credit pack are paid at Stripe and never
 * reach us; reconciliation reports both; a repair grants each once (through the webhook's own
 * apply path); a second repair finds nothing and changes nothing. Only operators and the
 * service role may reconcile, and the daily job raises an operator alert on drift.
 */
import assert from "node:assert/strict";
import {
  advanceClockUntil,
  anonKey,
  api,
  db,
  eventually,
  latestSubscription,
  type Member,
  ownerWithOrganization,
  payCheckout,
  serviceKey,
  setDelivery,
  signUp,
  stripe,
  webhookUrl,
} from "./support.ts";

interface Difference {
  kind: string;
  stripe_id: string;
  organization_id: string | null;
  repairable: boolean;
}

interface Reconciled {
  differences: Difference[];
  repairs: Array<{ stripe_id: string; kind: string; outcome: string; detail?: string }>;
}

/** Calls the reconciliation route with a bearer token; returns the status and the body. */
async function reconcile(token: string, body: Record<string, unknown>) {
  const response = await fetch(`${webhookUrl}/reconcile`, {
    method: "POST",
    headers: { Authorization: `Bearer ${token}`, "Content-Type": "application/json" },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

/** The emulator's clock runs ahead of ours (renewals happen in simulated time): a wide period. */
const period = () => ({
  from: new Date(Date.now() - 86_400_000).toISOString(),
  to: new Date(Date.now() + 200 * 86_400_000).toISOString(),
});

/** Our grants and payment rows for the given Stripe references (service role's view). */
async function recorded(organizationId: string, references: string[]) {
  const lots = await db.from("credit_lots").select("reference, granted").eq("organization_id", organizationId).in("reference", references);
  const history = await db.from("billing_history").select("stripe_reference, status").eq("organization_id", organizationId)
    .in("stripe_reference", references);
  const ledger = await db.from("credit_transactions").select("id", { count: "exact", head: true }).eq("organization_id", organizationId);
  if (lots.error || history.error || ledger.error) throw new Error("could not read our records");
  return { lots: lots.data, history: history.data, ledgerRows: ledger.count };
}

const ours = (body: Reconciled, organizationId: string) =>
  body.differences.filter((d) => d.organization_id === organizationId).map((d) => `${d.kind} ${d.stripe_id}`).sort();

Deno.test({
  name: "a renewal and a credit pack paid while webhooks were off are reported, repaired once, and a second repair changes nothing",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const { owner, organizationId } = await ownerWithOrganization("Reconciled Inc");
    // Enterprise has no trial: the first invoice is paid at checkout.
    const checkout = await api(owner, "POST", "/subscription/checkout", { organization_id: organizationId, plan_code: "enterprise", interval: "month" });
    assert.equal(checkout.status, 200, JSON.stringify(checkout.body));
    await payCheckout(checkout.body.url);
    const subscription = await eventually("the subscription to be active with its first allowance", async () => {
      const s = await latestSubscription(owner, organizationId);
      const { count } = await db.from("credit_lots").select("id", { count: "exact", head: true }).eq("organization_id", organizationId);
      return s?.status === "active" && count === 1 ? s : undefined;
    });
    const subscriptionId = subscription.stripe_subscription_id;

    let renewalId: string;
    let packId: string;
    await setDelivery(false);
    try {
      // The renewal is paid at Stripe; nothing tells us.
      renewalId = await advanceClockUntil(subscriptionId, "the renewal invoice to be paid at Stripe", async () => {
        const paid = await stripe.invoices.list({ subscription: subscriptionId, status: "paid", limit: 10 });
        return paid.data.length === 2 ? paid.data[0]!.id : undefined;
      }, 1_000);
      const pack = await api(owner, "POST", "/credit-products/checkout", { organization_id: organizationId, product_code: "credits_1000" });
      assert.equal(pack.status, 200, JSON.stringify(pack.body));
      packId = new URL(pack.body.url).pathname.split("/").pop()!;
      await payCheckout(pack.body.url);
    } finally {
      await setDelivery(true);
    }
    // Nothing was delivered: neither payment is in our records.
    const before = await recorded(organizationId, [renewalId, packId]);
    assert.deepEqual([before.lots, before.history], [[], []], "the renewal and the pack never reached us");

    // Reported: the renewal's invoice, the pack, and the subscription's new period.
    const found = await reconcile(serviceKey, period());
    assert.equal(found.status, 200, JSON.stringify(found.body));
    assert.deepEqual(ours(found.body, organizationId), [
      `credit_pack_not_granted ${packId}`,
      `invoice_not_applied ${renewalId}`,
      `subscription_differs ${subscriptionId}`,
    ].sort(), "reconciliation reports the unpaid renewal, the ungranted pack and the stale period");
    assert.ok((found.body as Reconciled).differences.filter((d) => d.organization_id === organizationId).every((d) => d.repairable));
    const unchanged = await recorded(organizationId, [renewalId, packId]);
    assert.equal(unchanged.ledgerRows, before.ledgerRows, "reporting changes nothing");

    // Repaired through the webhook's own apply path: each granted once.
    const ids = [renewalId, packId, subscriptionId];
    const repaired = await reconcile(serviceKey, { ...period(), repair: true, stripe_ids: ids });
    assert.equal(repaired.status, 200, JSON.stringify(repaired.body));
    assert.deepEqual((repaired.body as Reconciled).repairs.map((r) => `${r.outcome} ${r.stripe_id}`).sort(),
      ids.map((id) => `processed ${id}`).sort(), JSON.stringify(repaired.body));
    assert.deepEqual(ours(repaired.body, organizationId), [], "nothing of ours differs after the repair");
    const after = await recorded(organizationId, [renewalId, packId]);
    assert.deepEqual(after.lots.map((l) => `${l.reference} ${l.granted}`).sort(),
      [`${packId} 1000`, `${renewalId} 25000`].sort(), "the renewal's allowance and the pack's credits are granted once each");
    assert.deepEqual(after.history.map((h) => `${h.stripe_reference} ${h.status}`).sort(),
      [`${packId} paid`, `${renewalId} paid`].sort(), "both payments are in the billing history");

    // A second repair finds nothing to do and changes nothing.
    const again = await reconcile(serviceKey, { ...period(), repair: true, stripe_ids: ids });
    assert.equal(again.status, 200, JSON.stringify(again.body));
    assert.deepEqual((again.body as Reconciled).repairs, [], "a second repair has nothing to repair");
    const final = await recorded(organizationId, [renewalId, packId]);
    assert.deepEqual(final, after, "and the ledger and history are unchanged");
  },
});

Deno.test({
  name: "only operators and the service role reconcile or re-drive; the daily job raises an operator alert on drift",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const member: Member = (await ownerWithOrganization("Not An Operator Inc")).owner;
    assert.equal((await reconcile(member.token, period())).status, 403, "a signed-in member is refused");
    assert.equal((await reconcile(anonKey, period())).status, 401, "the anon key is not a credential");
    const redrive = await fetch(`${webhookUrl}/redrive/evt_not_a_real_one`, { method: "POST", headers: { Authorization: `Bearer ${member.token}` } });
    await redrive.body?.cancel();
    assert.equal(redrive.status, 403, "a member cannot re-drive events");

    const operator = await signUp();
    const { error } = await db.rpc("add_billing_operator", { p_user_id: operator.userId });
    assert.equal(error, null);
    const asOperator = await reconcile(operator.token, period());
    assert.equal(asOperator.status, 200, "an operator reconciles");
    const operatorRedrive = await fetch(`${webhookUrl}/redrive/evt_not_a_real_one`, { method: "POST", headers: { Authorization: `Bearer ${operator.token}` } });
    assert.equal(operatorRedrive.status, 404, "an operator may re-drive (this event was never received)");
    await operatorRedrive.body?.cancel();

    assert.equal((await reconcile(serviceKey, { ...period(), from: "yesterday" })).status, 400, "a malformed period is a 400");
    assert.equal((await reconcile(serviceKey, { to: "2020-01-01T00:00:00Z", from: "2021-01-01T00:00:00Z" })).status, 400,
      "a period that ends before it starts is a 400");
    assert.equal((await reconcile(serviceKey, { stripe_ids: ["'; drop table x"] })).status, 400, "a malformed Stripe id is a 400");

    // Drift the job will find: a customer created at Stripe that belongs to no organization.
    await stripe.customers.create({ email: "orphan@reconciliation.test" });
    const job = await reconcile(serviceKey, { job: "reconcile_stripe" });
    assert.equal(job.status, 200, JSON.stringify(job.body));
    assert.ok((job.body as Reconciled).differences.some((d) => d.kind === "customer_without_organization"));
    const alerts = await db.from("billing_operator_alerts").select("kind, dismissed_at").eq("dedupe_key", "reconciliation_drift")
      .is("dismissed_at", null);
    assert.equal(alerts.error, null);
    assert.equal(alerts.data?.length, 1, "the daily run raised one open operator alert for the drift");
  },
});
