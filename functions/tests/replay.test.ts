/**
 * Stripe delivers at least once and in no guaranteed order. The same subscription history
 * (subscribe with a trial, trial ends and is paid, a credit pack, a failed renewal, past due,
 * recovery, cancel at period end, cancel now) is lived by two organizations:
 *
 * - one with the emulator delivering each event once, in order, as it happens;
 * - others with delivery off, whose whole event histories are then delivered by this test
 *   twice over, four at a time: shuffled (seeded; the seed is in the failure message and
 *   REPLAY_SEED replays it), reversed, and with the cancellation first and the failed
 *   payment last.
 *
 * Both must end in the same state: subscription, balance, credit lots, ledger, history.
 */
import assert from "node:assert/strict";
import type Stripe from "stripe";
import {
  advanceClockUntil,
  api,
  appliedAll,
  db,
  deliveredAll,
  deliverEvent,
  eventsOfCustomer,
  type Member,
  ownerWithOrganization,
  payCheckout,
  portalAction,
  setDelivery,
  stripe,
} from "./support.ts";

/** Stripe's own status for the subscription, once it is `status`. */
const stripeStatus = (subscriptionId: string, status: Stripe.Subscription.Status) => async () =>
  (await stripe.subscriptions.retrieve(subscriptionId)).status === status ? true : undefined;

/** Lives the history on Stripe's side (checkout, clock, portal); returns the customer id. */
async function liveTheHistory(owner: Member, organizationId: string): Promise<string> {
  const checkout = await api(owner, "POST", "/subscription/checkout", { organization_id: organizationId, plan_code: "starter", interval: "month" });
  assert.equal(checkout.status, 200, JSON.stringify(checkout.body));
  const session = await payCheckout(checkout.body.url) as Stripe.Checkout.Session;
  const subscriptionId = session.subscription as string;
  const customerId = session.customer as string;

  await advanceClockUntil(subscriptionId, "Stripe to activate the subscription", stripeStatus(subscriptionId, "active"), 200);

  const pack = await api(owner, "POST", "/credit-products/checkout", { organization_id: organizationId, product_code: "credits_1000" });
  assert.equal(pack.status, 200, JSON.stringify(pack.body));
  await payCheckout(pack.body.url);

  const portal = await api(owner, "POST", "/subscription/portal", { organization_id: organizationId });
  assert.equal(portal.status, 200, JSON.stringify(portal.body));
  await portalAction(portal.body.url, { action: "card", card_number: "4000000000000341" });
  await advanceClockUntil(subscriptionId, "Stripe to mark the subscription past due", stripeStatus(subscriptionId, "past_due"), 200);
  await portalAction(portal.body.url, { action: "card", card_number: "4242424242424242" });
  assert.equal((await stripe.subscriptions.retrieve(subscriptionId)).status, "active", "the new card paid the open invoice");
  await portalAction(portal.body.url, { action: "cancel_at_period_end", subscription: subscriptionId });
  await portalAction(portal.body.url, { action: "cancel_now", subscription: subscriptionId });
  return customerId;
}

/** A small seeded generator (mulberry32), so a failing order can be replayed exactly. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function shuffle<T>(items: T[], random: () => number): T[] {
  const result = [...items];
  for (let i = result.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [result[i], result[j]] = [result[j]!, result[i]!];
  }
  return result;
}

/** Delivers like Stripe: until acknowledged, with a short pause between retries. */
async function deliverUntilAcknowledged(event: Stripe.Event) {
  for (let attempt = 1; ; attempt++) {
    const response = await deliverEvent(event);
    if (response.status >= 200 && response.status < 300) return response.body;
    if (attempt === 5) throw new Error(`${event.type} ${event.id} refused ${attempt} times: ${JSON.stringify(response.body)}`);
    await new Promise((resolve) => setTimeout(resolve, 200 * attempt));
  }
}

/** The organization's billing state without ids and timestamps, in a stable order. */
async function finalState(organizationId: string) {
  const rows = async (table: string, columns: string) => {
    const { data, error } = await db.from(table).select(columns).eq("organization_id", organizationId);
    if (error) throw new Error(`${table}: ${error.message}`);
    return (data as unknown as Record<string, unknown>[]).map((row) => JSON.stringify(row)).sort();
  };
  const { data: balance } = await db.rpc("get_credit_balance", { p_organization_id: organizationId });
  const { total, purchased, subscription } = balance as Record<string, number>;
  return {
    subscription: await rows("organization_subscriptions", "status, billing_interval, cancel_at_period_end, grace_period_end, stripe_price_id"),
    balance: { total, purchased, subscription },
    lots: await rows("credit_lots", "source, granted, remaining"),
    ledger: await rows("credit_transactions", "kind, source, amount"),
    history: await rows("billing_history", "kind, status, amount, currency"),
  };
}

/** Orders a history could arrive in, each delivered twice over, four at a time. */
const orders: Record<string, (history: Stripe.Event[], random: () => number) => Stripe.Event[]> = {
  "shuffled": (history, random) => shuffle([...history, ...history], random),
  "reversed": (history) => [...history].reverse().flatMap((event) => [event, event]),
  // The crossings that bit other billing code: the end first, a stale failure last.
  "deleted first, failure last": (history) => {
    const isFirst = (event: Stripe.Event) => event.type === "customer.subscription.deleted";
    const isLast = (event: Stripe.Event) => event.type === "invoice.payment_failed";
    const first = history.filter(isFirst);
    const last = history.filter(isLast);
    const middle = history.filter((event) => !isFirst(event) && !isLast(event));
    return [...first, ...middle, ...last, ...first, ...middle, ...last];
  },
};

Deno.test({
  name: "a subscription's whole history delivered twice, shuffled, reversed or crossed, ends as in-order delivery does",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const seed = Number(Deno.env.get("REPLAY_SEED") ?? Date.now() % 1_000_000);
    const random = seededRandom(seed);

    // Out of order: live each history with delivery off; it is replayed below.
    const replays: Array<{ order: string; organizationId: string; customerId: string }> = [];
    await setDelivery(false);
    try {
      for (const order of Object.keys(orders)) {
        const { owner, organizationId } = await ownerWithOrganization(`Replayed ${order}`);
        replays.push({ order, organizationId, customerId: await liveTheHistory(owner, organizationId) });
      }
    } finally {
      await setDelivery(true);
    }

    // In order: the same history, delivered as it happens.
    const inOrder = await ownerWithOrganization("In Order Inc");
    const inOrderCustomer = await liveTheHistory(inOrder.owner, inOrder.organizationId);
    await deliveredAll(inOrderCustomer);
    const expected = await finalState(inOrder.organizationId);
    assert.equal(JSON.parse(expected.subscription[0]!).status, "canceled", "in order, the history ends canceled");

    for (const { order, organizationId, customerId } of replays) {
      const history = await eventsOfCustomer(customerId);
      assert.ok(history.length > 20, `a whole history (${history.length} events)`);
      const deliveries = orders[order]!(history, random);
      for (let i = 0; i < deliveries.length; i += 4) {
        await Promise.all(deliveries.slice(i, i + 4).map(deliverUntilAcknowledged));
      }
      // Acknowledged means stored; each is applied in the background.
      await appliedAll(history.map((event) => event.id));

      const { data: inbox } = await db.from("stripe_events").select("id, status").in("id", history.map((event) => event.id));
      assert.equal(inbox?.length, history.length, `${order}: every event is in the inbox once`);
      assert.deepEqual(inbox?.filter((row) => !["processed", "ignored"].includes(row.status)), [], `${order}: none failed or parked`);
      assert.deepEqual(await finalState(organizationId), expected,
        `${order} delivery (REPLAY_SEED=${seed}) ends where in-order delivery does`);
    }
  },
});
