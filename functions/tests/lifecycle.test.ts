/**
 * The billing lifecycle through the real functions, the local gateway and the Stripe
 * emulator, as a member would drive it: subscribe (checkout -> trial credits), consume,
 * renew (new allowance, old expired), buy a pack, fail a payment (past due, grace), recover,
 * cancel. `npm test` starts the stack and passes its URLs and keys in TEST_* variables.
 */
import assert from "node:assert/strict";
import {
  advanceClockUntil,
  api,
  balance,
  eventually,
  latestSubscription as subscription,
  ownerWithOrganization,
  payCheckout,
  portalAction,
} from "./support.ts";

Deno.test({
  name: "subscribe, consume, renew, buy a pack, fail a payment, recover and cancel through the API and the emulator",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const { owner, organizationId } = await ownerWithOrganization("Lifecycle Inc");

    // Subscribe: checkout on the emulator with the test card.
    const checkout = await api(owner, "POST", "/subscription/checkout", {
      organization_id: organizationId,
      plan_code: "starter",
      interval: "month",
    });
    assert.equal(checkout.status, 200, JSON.stringify(checkout.body));
    await payCheckout(checkout.body.url);

    const trial = await eventually("the trial's credits", async () => {
      const s = await subscription(owner, organizationId);
      const b = await balance(owner, organizationId);
      // The trial grants Starter's trial allowance (500), not its monthly one.
      return s?.status === "trialing" && b.subscription === 500 ? s : undefined;
    });
    assert.match(trial.stripe_subscription_id, /^sub_/);

    const again = await api(owner, "POST", "/subscription/checkout", {
      organization_id: organizationId,
      plan_code: "professional",
      interval: "month",
    });
    assert.equal(again.status, 409, "a second subscription is refused");

    // Consume through the API.
    const consumed = await api(owner, "POST", "/credits/consume", {
      organization_id: organizationId,
      event_key: "ai_inference",
      quantity: 4,
      idempotency_key: "job-1",
    });
    assert.equal(consumed.status, 200, JSON.stringify(consumed.body));
    assert.equal(consumed.body.balance.total, 400);

    // The trial ends (the clock passes the trial reminder, then the trial's end): the first
    // paid period brings a new allowance, and the trial's leftover expires.
    const subscriptionId = trial.stripe_subscription_id;
    await advanceClockUntil(subscriptionId, "the subscription to be active", async () =>
      (await subscription(owner, organizationId))?.status === "active" ? true : undefined);
    // The emulator's clock runs ahead of the database's: the new period starts in the
    // simulated future, so the trial's leftover is cut off at that start, not before.
    const lots = await eventually("the first paid period's allowance", async () => {
      const { data } = await owner.client.from("credit_lots").select("granted, expires_at, period_start")
        .eq("organization_id", organizationId).eq("source", "subscription").order("id");
      return data?.length === 2 ? data : undefined;
    });
    assert.equal(lots[1]!.granted, 1000, "the paid period allocates the plan's allowance");
    assert.equal(Date.parse(lots[0]!.expires_at), Date.parse(lots[1]!.period_start),
      "the trial's allowance ends where the paid period starts");

    // A credit pack.
    const pack = await api(owner, "POST", "/credit-products/checkout", {
      organization_id: organizationId,
      product_code: "credits_1000",
    });
    assert.equal(pack.status, 200, JSON.stringify(pack.body));
    await payCheckout(pack.body.url);
    await eventually("the pack's credits", async () => ((await balance(owner, organizationId)).purchased === 1000 ? true : undefined));

    // History shows both payments.
    const history = await api(owner, "GET", `/history/${organizationId}`);
    assert.equal(history.status, 200);
    type HistoryRow = { kind: string; amount: number; invoice_url: string | null; receipt_url: string | null };
    const rows: HistoryRow[] = history.body.history;
    const packRow = rows.find((h) => h.kind === "credit_purchase");
    assert.ok(packRow, "the pack is in the history");
    assert.match(packRow.receipt_url ?? "", /^http.*\/receipts\//, "with the charge's receipt");
    const invoiceRow = rows.find((h) => h.kind === "subscription_invoice" && h.amount > 0);
    assert.ok(invoiceRow, "the paid invoice is in the history");
    assert.match(invoiceRow.invoice_url ?? "", /^http/, "with its hosted invoice");
    assert.match(invoiceRow.receipt_url ?? "", /^http.*\/receipts\//, "and its payment's receipt");

    // The summary has what the overview needs.
    const summary = await api(owner, "GET", `/summary/${organizationId}`);
    assert.equal(summary.status, 200);
    assert.equal(summary.body.subscription.status, "active");
    assert.equal(summary.body.subscription.plan.code, "starter");
    assert.equal(summary.body.balance.purchased, 1000);

    // The customer portal: a card that fails on the next renewal.
    const portal = await api(owner, "POST", "/subscription/portal", { organization_id: organizationId });
    assert.equal(portal.status, 200, JSON.stringify(portal.body));
    const portalPage = (form: Record<string, string>) => portalAction(portal.body.url, form);
    await portalPage({ action: "card", card_number: "4000000000000341" });

    // The renewal fails: past due, with a grace period, and members are alerted.
    await advanceClockUntil(subscriptionId, "the subscription to be past due", async () =>
      (await subscription(owner, organizationId))?.status === "past_due" ? true : undefined);
    // The failed invoice re-reads the subscription (past due) before it records the failure
    // (the grace period): two transactions, so the status can show first. No clock move here.
    const pastDue = await eventually("the grace period", async () => {
      const s = await subscription(owner, organizationId);
      return s?.status === "past_due" && s.grace_period_end ? s : undefined;
    });
    assert.ok(pastDue.grace_period_end, "a failed payment starts the grace period");
    const { data: alerts } = await owner.client.from("billing_alerts").select("kind").eq("organization_id", organizationId)
      .is("dismissed_at", null);
    assert.ok(alerts?.some((a) => a.kind === "payment_failed"), "members see a payment_failed alert");

    // A working card recovers it: the open invoice is paid and past due ends.
    await portalPage({ action: "card", card_number: "4242424242424242" });
    await eventually("the subscription to recover", async () => {
      const s = await subscription(owner, organizationId);
      return s?.status === "active" && s.grace_period_end === null ? true : undefined;
    });

    // Cancel at period end, then now: the subscription's credits expire, purchased ones stay.
    await portalPage({ action: "cancel_at_period_end", subscription: subscriptionId });
    await eventually("the cancellation to be scheduled", async () =>
      (await subscription(owner, organizationId))?.cancel_at_period_end ? true : undefined);
    await portalPage({ action: "cancel_now", subscription: subscriptionId });
    const ended = await eventually("the cancellation", async () => {
      const s = await subscription(owner, organizationId);
      const b = await balance(owner, organizationId);
      return s?.status === "canceled" && b.subscription === 0 ? b : undefined;
    });
    assert.equal(ended.purchased, 1000, "purchased credits survive the cancellation");
  },
});
