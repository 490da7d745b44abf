/**
 * Plan changes in the app, through the billing API, the real stripe client against the
 * emulator, and the webhook: an upgrade charges what its preview said and adds the credits
 * its preview said, once; a declined card changes nothing; downgrades and interval changes
 * wait for the renewal, which bills the new price and allocates the new allowance; a
 * scheduled change can be dropped and a scheduled cancellation undone; no sequence of changes
 * yields credits that were not paid for; a plan switched with prorations (as the portal did)
 * still gets the full new period at the renewal.
 */
import assert from "node:assert/strict";
import type Stripe from "stripe";
import {
  api,
  appliedAll,
  db,
  deliverEvent,
  emulator,
  eventsOfCustomer,
  eventually,
  latestSubscription,
  type Member,
  ownerWithOrganization,
  payCheckout,
  portalAction,
  signUp,
  stripe,
} from "./support.ts";

const options = { sanitizeOps: false, sanitizeResources: false };

interface Lot {
  reference: string;
  granted: number;
  expires_at: string;
  period_start: string | null;
  period_end: string | null;
}

/** The organization's subscription lots, oldest first (service role: the whole row). */
async function subscriptionLots(organizationId: string): Promise<Lot[]> {
  const { data, error } = await db.from("credit_lots").select("reference, granted, expires_at, period_start, period_end")
    .eq("organization_id", organizationId).eq("source", "subscription").order("id");
  if (error) throw new Error(error.message);
  return data as Lot[];
}

/** How many grant rows the ledger holds for a reference (an invoice). */
async function grantsFor(organizationId: string, reference: string): Promise<number> {
  const { count, error } = await db.from("credit_transactions").select("id", { count: "exact", head: true })
    .eq("organization_id", organizationId).eq("kind", "grant").eq("reference", reference);
  if (error) throw new Error(error.message);
  return count ?? 0;
}

/**
 * An organization subscribed to `plan` (monthly unless said), past its trial: the first paid
 * period's allowance allocated. Returns the owner, the organization and the subscription.
 */
async function subscribed(name: string, plan: string, interval: "month" | "year" = "month") {
  const { owner, organizationId } = await ownerWithOrganization(name);
  const checkout = await api(owner, "POST", "/subscription/checkout", { organization_id: organizationId, plan_code: plan, interval });
  assert.equal(checkout.status, 200, JSON.stringify(checkout.body));
  await payCheckout(checkout.body.url);
  const row = await eventually("the subscription", async () => {
    const s = await latestSubscription(owner, organizationId);
    return s?.status === "trialing" || s?.status === "active" ? s : undefined;
  });
  const subscriptionId = row.stripe_subscription_id as string;
  const trialEnd = (await stripe.subscriptions.retrieve(subscriptionId)).trial_end;
  if (trialEnd) await emulator("/_emulator/advance", { subscription: subscriptionId, to: trialEnd });
  await eventually("the first paid period's allowance", async () => {
    const s = await latestSubscription(owner, organizationId);
    const lots = await subscriptionLots(organizationId);
    return s?.status === "active" && lots.length === (trialEnd ? 2 : 1) ? true : undefined;
  });
  return { owner, organizationId, subscriptionId };
}

/** The subscription's one item as Stripe has it now. */
async function itemOf(subscriptionId: string): Promise<Stripe.SubscriptionItem> {
  return (await stripe.subscriptions.retrieve(subscriptionId)).items.data[0]!;
}

/** Runs the subscription's clock to `fraction` of its current period. */
async function intoPeriod(subscriptionId: string, fraction: number): Promise<void> {
  const item = await itemOf(subscriptionId);
  const to = item.current_period_start + Math.floor((item.current_period_end - item.current_period_start) * fraction);
  await emulator("/_emulator/advance", { subscription: subscriptionId, to });
}

/** Runs the subscription's clock to its renewal and waits for the renewal's lot. */
async function renew(organizationId: string, subscriptionId: string): Promise<{ invoice: Stripe.Invoice; lot: Lot }> {
  const before = (await stripe.invoices.list({ subscription: subscriptionId, limit: 1 })).data[0]!.id;
  await emulator("/_emulator/advance", { subscription: subscriptionId });
  const invoice = (await stripe.invoices.list({ subscription: subscriptionId, limit: 1 })).data[0]!;
  assert.notEqual(invoice.id, before, "the renewal made an invoice");
  const lot = await eventually("the renewal's allowance", async () => (await subscriptionLots(organizationId)).find((l) => l.reference === invoice.id));
  return { invoice, lot };
}

/** The newest invoice of a subscription. */
async function latestInvoice(subscriptionId: string): Promise<Stripe.Invoice> {
  return (await stripe.invoices.list({ subscription: subscriptionId, limit: 1 })).data[0]!;
}

async function change(member: Member, organizationId: string, plan: string, interval: "month" | "year", prorationDate?: number) {
  return await api(member, "POST", "/subscription/change", {
    organization_id: organizationId,
    plan_code: plan,
    interval,
    ...(prorationDate === undefined ? {} : { proration_date: prorationDate }),
  });
}

async function preview(member: Member, organizationId: string, plan: string, interval: "month" | "year") {
  return await api(member, "POST", "/subscription/change/preview", { organization_id: organizationId, plan_code: plan, interval });
}

Deno.test({
  name: "an upgrade charges the previewed amount now and adds the previewed credits once, leaving the period's allowance alone",
  ...options,
  fn: async () => {
    const { owner, organizationId, subscriptionId } = await subscribed("Upgrade Co", "starter");
    await intoPeriod(subscriptionId, 1 / 3);
    const period = await itemOf(subscriptionId);
    const [, periodLot] = await subscriptionLots(organizationId);

    const shown = await preview(owner, organizationId, "professional", "month");
    assert.equal(shown.status, 200, JSON.stringify(shown.body));
    assert.equal(shown.body.kind, "upgrade");
    // Two thirds of the period left: two thirds of the price difference (4,900 - 1,900) and of
    // the allowance difference (5,000 - 1,000).
    assert.ok(Math.abs(shown.body.amount_due_now - 2000) <= 1, `charged ${shown.body.amount_due_now}`);
    assert.ok(Math.abs(shown.body.credits_now - 2666) <= 1, `credits ${shown.body.credits_now}`);
    assert.equal(shown.body.currency, "usd");
    assert.equal(shown.body.lines.length, 2);
    assert.deepEqual(shown.body.next_charge, { date: new Date(period.current_period_end * 1000).toISOString(), amount: 4900 });

    const made = await change(owner, organizationId, "professional", "month", shown.body.proration_date);
    assert.equal(made.status, 200, JSON.stringify(made.body));
    assert.equal(made.body.kind, "upgrade");
    const invoice = await latestInvoice(subscriptionId);
    assert.equal(invoice.billing_reason, "subscription_update");
    assert.equal(invoice.status, "paid");
    assert.equal(invoice.amount_paid, shown.body.amount_due_now, "the charge is the preview's");
    assert.equal((await itemOf(subscriptionId)).price.metadata.plan_code, "professional");

    const topUp = await eventually("the upgrade's credits", async () => (await subscriptionLots(organizationId)).find((l) => l.reference === invoice.id));
    assert.equal(topUp.granted, shown.body.credits_now, "the credits are the preview's");
    assert.equal(Date.parse(topUp.expires_at), period.current_period_end * 1000, "they end with the period");
    const lots = await subscriptionLots(organizationId);
    assert.equal(lots.length, 3, "one lot more, no fresh allowance");
    assert.deepEqual(lots.find((l) => l.reference === periodLot!.reference), periodLot, "the period's own allowance is untouched");

    // invoice.paid and invoice.payment_succeeded both arrived; a replay with a new event id too.
    const paid = (await eventsOfCustomer(String(invoice.customer))).find((e) => e.type === "invoice.paid" && (e.data.object as Stripe.Invoice).id === invoice.id)!;
    const replay = { ...paid, id: `evt_replay_${crypto.randomUUID().replaceAll("-", "")}` } as Stripe.Event;
    assert.equal((await deliverEvent(replay)).status, 200);
    await appliedAll([replay.id]);
    assert.equal(await grantsFor(organizationId, invoice.id), 1, "granted once");

    const again = await change(owner, organizationId, "professional", "month");
    assert.equal(again.status, 409);
    assert.equal(again.body.error.code, "same_plan");
  },
});

Deno.test({
  name: "an upgrade with a declined card answers 402 card_declined and changes nothing",
  ...options,
  fn: async () => {
    const { owner, organizationId, subscriptionId } = await subscribed("Declined Co", "starter");
    const portal = await api(owner, "POST", "/subscription/portal", { organization_id: organizationId });
    // Stripe's test card that attaches, then declines every off-session charge.
    await portalAction(portal.body.url, { action: "card", card_number: "4000000000000341" });
    const invoicesBefore = (await stripe.invoices.list({ subscription: subscriptionId })).data.length;
    const lotsBefore = await subscriptionLots(organizationId);
    // A change held for the renewal stays held when the upgrade is refused.
    assert.equal((await change(owner, organizationId, "starter", "year")).status, 200);

    const refused = await change(owner, organizationId, "professional", "month");
    assert.equal(refused.status, 402, JSON.stringify(refused.body));
    assert.equal(refused.body.error.code, "card_declined");
    assert.equal((await itemOf(subscriptionId)).price.metadata.plan_code, "starter");
    assert.equal((await stripe.subscriptions.retrieve(subscriptionId)).status, "active");
    assert.equal((await stripe.invoices.list({ subscription: subscriptionId, status: "open" })).data.length, 0, "no invoice left open");
    assert.equal((await stripe.invoices.list({ subscription: subscriptionId })).data.length, invoicesBefore + 1, "the attempt is void");
    await new Promise((resolve) => setTimeout(resolve, 1000));
    assert.deepEqual(await subscriptionLots(organizationId), lotsBefore);
    const row = await latestSubscription(owner, organizationId);
    assert.equal(row?.status, "active");
    assert.equal(row?.grace_period_end, null, "no grace period started");
    const upcoming = await api(owner, "GET", `/subscription/${organizationId}/upcoming`);
    assert.equal(upcoming.body.upcoming.scheduled_change?.interval, "year", "the scheduled change is still there");
  },
});

Deno.test({
  name: "a downgrade waits for the renewal: nothing charged, credits kept, the renewal bills the new price and allocates its allowance",
  ...options,
  fn: async () => {
    const { owner, organizationId, subscriptionId } = await subscribed("Downgrade Co", "professional");
    const period = await itemOf(subscriptionId);
    const invoicesBefore = (await stripe.invoices.list({ subscription: subscriptionId })).data.length;
    const lotsBefore = await subscriptionLots(organizationId);

    const shown = await preview(owner, organizationId, "starter", "month");
    assert.equal(shown.status, 200, JSON.stringify(shown.body));
    assert.equal(shown.body.kind, "scheduled");
    assert.equal(shown.body.amount_due_now, 0);
    assert.equal(shown.body.credits_now, 0);
    assert.equal(shown.body.effective_at, new Date(period.current_period_end * 1000).toISOString());
    assert.deepEqual(shown.body.next_charge, { date: shown.body.effective_at, amount: 1900 });

    const made = await change(owner, organizationId, "starter", "month");
    assert.equal(made.status, 200, JSON.stringify(made.body));
    assert.deepEqual(made.body, { kind: "scheduled", effective_at: shown.body.effective_at });
    assert.equal((await stripe.invoices.list({ subscription: subscriptionId })).data.length, invoicesBefore, "nothing charged or refunded");
    assert.equal((await itemOf(subscriptionId)).price.metadata.plan_code, "professional", "paid features stay until the period ends");

    const upcoming = await api(owner, "GET", `/subscription/${organizationId}/upcoming`);
    assert.equal(upcoming.status, 200, JSON.stringify(upcoming.body));
    assert.equal(upcoming.body.upcoming.amount_due, 1900);
    assert.equal(upcoming.body.upcoming.date, shown.body.effective_at);
    assert.deepEqual(upcoming.body.upcoming.scheduled_change, { plan_code: "starter", plan_name: "Starter", interval: "month", effective_at: shown.body.effective_at });
    assert.deepEqual(await subscriptionLots(organizationId), lotsBefore, "the period's credits are kept");

    const { invoice, lot } = await renew(organizationId, subscriptionId);
    assert.equal(invoice.amount_paid, 1900);
    assert.equal(lot.granted, 1000, "Starter's allowance");
    assert.equal(Date.parse(lot.period_start!), period.current_period_end * 1000);
    const { data: starter } = await db.from("subscription_plans").select("id").eq("code", "starter").single();
    await eventually("the row on Starter", async () => {
      const { data } = await db.from("organization_subscriptions").select("plan_id").eq("stripe_subscription_id", subscriptionId).single();
      return data?.plan_id === starter!.id ? true : undefined;
    });
    const after = await api(owner, "GET", `/subscription/${organizationId}/upcoming`);
    assert.equal(after.body.upcoming.scheduled_change, null, "the schedule let go after the change");
  },
});

Deno.test({
  name: "an interval change waits for the renewal, which starts a yearly period with the annual allowance",
  ...options,
  fn: async () => {
    const { owner, organizationId, subscriptionId } = await subscribed("Interval Co", "starter");
    const period = await itemOf(subscriptionId);
    const made = await change(owner, organizationId, "starter", "year");
    assert.equal(made.status, 200, JSON.stringify(made.body));
    assert.equal(made.body.kind, "scheduled");
    const { invoice, lot } = await renew(organizationId, subscriptionId);
    assert.equal(invoice.amount_paid, 19000);
    assert.equal(lot.granted, 12000, "Starter's annual allowance");
    const renewed = await itemOf(subscriptionId);
    assert.equal(renewed.price.recurring?.interval, "year");
    assert.equal(renewed.current_period_start, period.current_period_end);
    await eventually("the row on the yearly interval", async () => {
      const { data } = await db.from("organization_subscriptions").select("billing_interval").eq("stripe_subscription_id", subscriptionId).single();
      return data?.billing_interval === "year" ? true : undefined;
    });
  },
});

Deno.test({
  name: "a scheduled change can be dropped; members can read the upcoming charge but not change the plan",
  ...options,
  fn: async () => {
    const { owner, organizationId, subscriptionId } = await subscribed("Undo Co", "professional");
    const member = await signUp();
    const { error } = await owner.client.rpc("add_organization_member", { p_organization_id: organizationId, p_user_id: member.userId, p_role: "member" });
    assert.equal(error, null);

    assert.equal((await change(member, organizationId, "starter", "month")).status, 403);
    assert.equal((await preview(member, organizationId, "starter", "month")).status, 403);
    assert.equal((await change(owner, organizationId, "starter", "month")).status, 200);
    const seen = await api(member, "GET", `/subscription/${organizationId}/upcoming`);
    assert.equal(seen.status, 200);
    assert.equal(seen.body.upcoming.scheduled_change.plan_code, "starter");

    const dropped = await api(owner, "POST", "/subscription/change/cancel", { organization_id: organizationId });
    assert.equal(dropped.status, 200, JSON.stringify(dropped.body));
    assert.deepEqual(dropped.body, { scheduled_change: null });
    const upcoming = await api(owner, "GET", `/subscription/${organizationId}/upcoming`);
    assert.equal(upcoming.body.upcoming.scheduled_change, null);
    assert.equal(upcoming.body.upcoming.amount_due, 4900);
    const twice = await api(owner, "POST", "/subscription/change/cancel", { organization_id: organizationId });
    assert.equal(twice.status, 409);
    assert.equal(twice.body.error.code, "no_scheduled_change");
    assert.equal((await stripe.subscriptions.retrieve(subscriptionId)).schedule, null);

    // Changing again after dropping a change schedules anew.
    const rescheduled = await change(owner, organizationId, "starter", "year");
    assert.equal(rescheduled.status, 200, JSON.stringify(rescheduled.body));
    const later = await api(owner, "GET", `/subscription/${organizationId}/upcoming`);
    assert.deepEqual(
      { plan: later.body.upcoming.scheduled_change.plan_code, interval: later.body.upcoming.scheduled_change.interval, amount: later.body.upcoming.amount_due },
      { plan: "starter", interval: "year", amount: 19000 },
    );
  },
});

Deno.test({
  name: "a scheduled cancellation blocks changes until resumed; a canceled subscription cannot be resumed",
  ...options,
  fn: async () => {
    const { owner, organizationId, subscriptionId } = await subscribed("Resume Co", "starter");
    const notEnding = await api(owner, "POST", "/subscription/resume", { organization_id: organizationId });
    assert.equal(notEnding.status, 409);
    assert.equal(notEnding.body.error.code, "not_ending");

    const portal = await api(owner, "POST", "/subscription/portal", { organization_id: organizationId });
    await portalAction(portal.body.url, { action: "cancel_at_period_end", subscription: subscriptionId });
    await eventually("the cancellation", async () => (await latestSubscription(owner, organizationId))?.cancel_at_period_end ? true : undefined);
    const blocked = await change(owner, organizationId, "professional", "month");
    assert.equal(blocked.status, 409);
    assert.equal(blocked.body.error.code, "subscription_ending");
    assert.deepEqual((await api(owner, "GET", `/subscription/${organizationId}/upcoming`)).body, { upcoming: null });

    const resumed = await api(owner, "POST", "/subscription/resume", { organization_id: organizationId });
    assert.equal(resumed.status, 200, JSON.stringify(resumed.body));
    assert.deepEqual(resumed.body, { cancel_at_period_end: false });
    assert.equal((await stripe.subscriptions.retrieve(subscriptionId)).cancel_at_period_end, false);
    assert.equal((await latestSubscription(owner, organizationId))?.cancel_at_period_end, false, "the row shows it at once");
    assert.equal((await api(owner, "GET", `/subscription/${organizationId}/upcoming`)).body.upcoming.amount_due, 1900);

    await portalAction(portal.body.url, { action: "cancel_now", subscription: subscriptionId });
    await eventually("the end", async () => (await latestSubscription(owner, organizationId))?.status === "canceled" ? true : undefined);
    const ended = await api(owner, "POST", "/subscription/resume", { organization_id: organizationId });
    assert.equal(ended.status, 409);
    assert.equal(ended.body.error.code, "subscription_ended");
    const none = await change(owner, organizationId, "professional", "month");
    assert.equal(none.status, 409);
    assert.equal(none.body.error.code, "no_subscription");
  },
});

Deno.test({
  name: "upgrade, downgrade, upgrade: each upgrade is paid and granted once, and never more credits than were paid for",
  ...options,
  fn: async () => {
    const { owner, organizationId, subscriptionId } = await subscribed("Gaming Co", "starter");
    await intoPeriod(subscriptionId, 1 / 4);

    // A proration date chosen to make the upgrade cheap (the period's last minute) is refused.
    const period = await itemOf(subscriptionId);
    const cheap = await change(owner, organizationId, "professional", "month", period.current_period_end - 60);
    assert.equal(cheap.status, 409);
    assert.equal(cheap.body.error.code, "preview_expired");
    const stale = await change(owner, organizationId, "professional", "month", period.current_period_start);
    assert.equal(stale.status, 409, "a preview from long ago is refused");
    assert.equal((await itemOf(subscriptionId)).price.metadata.plan_code, "starter");

    const first = await preview(owner, organizationId, "professional", "month");
    assert.equal((await change(owner, organizationId, "professional", "month", first.body.proration_date)).status, 200);
    const firstInvoice = await latestInvoice(subscriptionId);
    assert.equal((await change(owner, organizationId, "starter", "month")).body.kind, "scheduled");
    await intoPeriod(subscriptionId, 1 / 2);
    const second = await preview(owner, organizationId, "enterprise", "month");
    assert.equal(second.body.kind, "upgrade");
    assert.equal((await change(owner, organizationId, "enterprise", "month", second.body.proration_date)).status, 200);
    const secondInvoice = await latestInvoice(subscriptionId);
    assert.notEqual(secondInvoice.id, firstInvoice.id);
    assert.equal((await stripe.subscriptions.retrieve(subscriptionId)).schedule, null, "the upgrade replaced the scheduled downgrade");

    const lots = await eventually("both upgrades' credits", async () => {
      const found = (await subscriptionLots(organizationId)).filter((l) => l.reference === firstInvoice.id || l.reference === secondInvoice.id);
      return found.length === 2 ? found : undefined;
    });
    const granted = Object.fromEntries(lots.map((l) => [l.reference, l.granted]));
    assert.equal(granted[firstInvoice.id], first.body.credits_now);
    assert.equal(granted[secondInvoice.id], second.body.credits_now);
    // Each upgrade's credits are at most its share of the allowance difference, as paid:
    // Starter -> Professional: 4,000 credits for 3,000 cents; Professional -> Enterprise:
    // 20,000 credits for 15,000 cents.
    assert.ok(granted[firstInvoice.id]! * 3000 <= (firstInvoice.amount_paid + 1) * 4000, "first upgrade within what was paid");
    assert.ok(granted[secondInvoice.id]! * 15000 <= (secondInvoice.amount_paid + 1) * 20000, "second upgrade within what was paid");
    assert.ok(firstInvoice.amount_paid > 0 && secondInvoice.amount_paid > 0, "both upgrades were paid");
    assert.equal(await grantsFor(organizationId, firstInvoice.id), 1);
    assert.equal(await grantsFor(organizationId, secondInvoice.id), 1);
  },
});

Deno.test({
  name: "during a trial an upgrade is immediate, charges nothing and grants nothing more",
  ...options,
  fn: async () => {
    const { owner, organizationId } = await ownerWithOrganization("Trial Change Co");
    const checkout = await api(owner, "POST", "/subscription/checkout", { organization_id: organizationId, plan_code: "starter", interval: "month" });
    await payCheckout(checkout.body.url);
    const row = await eventually("the trial", async () => {
      const s = await latestSubscription(owner, organizationId);
      return s?.status === "trialing" && (await subscriptionLots(organizationId)).length === 1 ? s : undefined;
    });
    const shown = await preview(owner, organizationId, "professional", "month");
    assert.equal(shown.status, 200, JSON.stringify(shown.body));
    assert.equal(shown.body.kind, "upgrade");
    assert.equal(shown.body.amount_due_now, 0);
    assert.equal(shown.body.credits_now, 0);
    const invoices = (await stripe.invoices.list({ subscription: row.stripe_subscription_id! })).data.length;
    assert.equal((await change(owner, organizationId, "professional", "month", shown.body.proration_date)).status, 200);
    assert.equal((await itemOf(row.stripe_subscription_id!)).price.metadata.plan_code, "professional");
    assert.equal((await stripe.invoices.list({ subscription: row.stripe_subscription_id! })).data.length, invoices, "nothing invoiced");
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const lots = await subscriptionLots(organizationId);
    assert.equal(lots.length, 1);
    assert.equal(lots[0]!.granted, 500, "the one trial allowance");
  },
});

Deno.test({
  name: "a plan switched with prorations (as the portal did) still gets the full new period's allowance at the renewal",
  ...options,
  fn: async () => {
    const { owner, organizationId, subscriptionId } = await subscribed("Portal Switch Co", "starter");
    // Makes sure Professional has its Stripe price.
    assert.equal((await preview(owner, organizationId, "professional", "month")).status, 200);
    const { data: plan } = await db.from("subscription_plans").select("stripe_monthly_price_id").eq("code", "professional").single();
    await intoPeriod(subscriptionId, 1 / 2);
    const item = await itemOf(subscriptionId);
    await stripe.subscriptions.update(subscriptionId, { items: [{ id: item.id, price: plan!.stripe_monthly_price_id! }], proration_behavior: "create_prorations" });

    const { invoice, lot } = await renew(organizationId, subscriptionId);
    assert.ok(invoice.lines.data[0]!.parent?.subscription_item_details?.proration, "the renewal starts with the old period's prorations");
    assert.equal(Date.parse(lot.period_start!), item.current_period_end * 1000, "the allocation is for the new period");
    const renewed = await itemOf(subscriptionId);
    assert.equal(Date.parse(lot.expires_at), renewed.current_period_end * 1000, "and lasts until the new period ends");
    assert.equal(lot.granted, 5000, "Professional's full allowance");
  },
});
