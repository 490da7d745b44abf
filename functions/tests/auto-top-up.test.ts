/**
 * Auto top-up end to end, through the running stack and the Stripe emulator: a credit pack
 * bought with a card saves it; with auto top-up set, consumption below the threshold makes the
 * job charge the pack off-session and the credits arrive once, with a history row and the
 * `auto_top_up.succeeded` notification. Stripe's off-session test cards: 0341 (declined: three
 * failed top-ups, alerts, auto top-up off) and 3184 (needs authentication: the owners get an
 * email with the link). Races: concurrent crossings and concurrent job runs make one top-up,
 * a webhook history replayed shuffled grants once, and the monthly limit holds.
 *
 * The test stack runs no scheduler, so each test runs the job (`POST /auto-top-up/run`) as the
 * schedule would.
 */
import assert from "node:assert/strict";
import pg from "pg";
import {
  api,
  appliedAll,
  balance,
  db,
  deliveredAll,
  deliverEvent,
  eventsOfCustomer,
  eventually,
  type Member,
  ownerWithOrganization,
  payCheckout,
  required,
  serviceKey,
  setDelivery,
  stripe,
  supabaseUrl,
  sweepInbox,
} from "./support.ts";

const mailCatcherUrl = required("TEST_MAIL_CATCHER_URL");

const VISA = "4242424242424242";
/** Stripe's test card 4000 0000 0000 0341: attaches to a customer, then every off-session charge is declined. */
const DECLINES_OFF_SESSION = { method: "pm_card_chargeCustomerFail", last4: "0341" };
/** Stripe's test card 4000 0027 6000 3184: every off-session charge needs 3-D Secure authentication. */
const NEEDS_AUTHENTICATION = { method: "pm_card_authenticationRequired", last4: "3184" };

/** One run of the job, as the schedule calls it (service role key). */
async function runJob(): Promise<Record<string, number>> {
  const response = await fetch(`${supabaseUrl}/functions/v1/auto-top-up/run`, {
    method: "POST",
    headers: { Authorization: `Bearer ${serviceKey}`, "Content-Type": "application/json" },
    body: JSON.stringify({ job: "auto_top_up" }),
  });
  const body = await response.json();
  assert.equal(response.status, 200, `the job answered ${response.status}: ${JSON.stringify(body)}`);
  return body;
}

/** An organization whose owner bought the 1,000-credit pack with `card`, which Checkout saved. */
async function organizationWithPack(name: string, card = VISA) {
  const { owner, organizationId } = await ownerWithOrganization(name);
  const checkout = await api(owner, "POST", "/credit-products/checkout", {
    organization_id: organizationId,
    product_code: "credits_1000",
  });
  assert.equal(checkout.status, 200, JSON.stringify(checkout.body));
  await payCheckout(checkout.body.url, card);
  await eventually(
    "the pack's credits",
    async () => ((await balance(owner, organizationId)).total === 1000 ? true : undefined),
  );
  const last4 = card.slice(-4);
  await eventually(
    "the card on file",
    async () => ((await cardOnFile(organizationId))?.last4 === last4 ? true : undefined),
  );
  const { data } = await db.from("organizations").select("stripe_customer_id").eq("id", organizationId).single();
  return { owner, organizationId, customerId: data!.stripe_customer_id as string };
}

async function cardOnFile(organizationId: string) {
  const { data, error } = await db.from("cards_on_file").select(
    "stripe_payment_method_id, brand, last4, exp_month, exp_year",
  )
    .eq("organization_id", organizationId).maybeSingle();
  if (error) throw new Error(error.message);
  return data?.stripe_payment_method_id ? data : null;
}

async function setAutoTopUp(owner: Member, organizationId: string, threshold: number, monthlyLimit = 3) {
  const { error } = await owner.client.rpc("set_auto_top_up", {
    p_organization_id: organizationId,
    p_product_code: "credits_1000",
    p_threshold: threshold,
    p_monthly_limit: monthlyLimit,
  });
  if (error) throw new Error(error.message);
}

/** Spends `credits` (a multiple of 25) through the billing API, as the SaaS's backend would. */
async function spend(owner: Member, organizationId: string, credits: number, key = crypto.randomUUID()) {
  const response = await api(owner, "POST", "/credits/consume", {
    organization_id: organizationId,
    event_key: "ai_inference",
    quantity: credits / 25,
    idempotency_key: key,
  });
  assert.equal(response.status, 200, JSON.stringify(response.body));
}

async function topUps(organizationId: string) {
  const { data, error } = await db.from("auto_top_ups").select(
    "id, status, stripe_payment_intent_id, failure_code, authentication_url",
  )
    .eq("organization_id", organizationId).order("created_at");
  if (error) throw new Error(error.message);
  return data;
}

async function notificationsOf(organizationId: string, type: string) {
  const { data, error } = await db.from("notifications").select("payload").eq("organization_id", organizationId).eq(
    "type",
    type,
  );
  if (error) throw new Error(error.message);
  return data;
}

async function setting(organizationId: string) {
  const { data, error } = await db.from("auto_top_up_settings").select("enabled, disabled_reason, consecutive_failures")
    .eq("organization_id", organizationId).single();
  if (error) throw new Error(error.message);
  return data;
}

/**
 * Saves Stripe's test payment method `testMethod` to the customer and makes it the default, as
 * the customer portal's "replace card" does, and waits for the card on file to follow.
 */
async function replaceCard(organizationId: string, customerId: string, testMethod: string, last4: string) {
  const method = await stripe.paymentMethods.attach(testMethod, { customer: customerId });
  await stripe.customers.update(customerId, { invoice_settings: { default_payment_method: method.id } });
  await eventually(
    "the new card on file",
    async () => ((await cardOnFile(organizationId))?.last4 === last4 ? true : undefined),
  );
}

Deno.test("a pack bought with a card saves it; below the threshold the job charges it once: credits, history, notification", async () => {
  const { owner, organizationId, customerId } = await organizationWithPack("Topped up by the job");
  const card = await cardOnFile(organizationId);
  assert.equal(card?.brand, "visa");
  assert.equal(card?.last4, "4242");
  assert.ok(card?.exp_month && card.exp_year, "the card's expiry is on file");

  await setAutoTopUp(owner, organizationId, 500);
  await runJob();
  assert.equal((await topUps(organizationId)).length, 0, "at 1,000 credits, above the threshold, nothing happens");

  await spend(owner, organizationId, 525);
  assert.equal((await balance(owner, organizationId)).total, 475);
  await runJob();
  await eventually(
    "the top-up's credits",
    async () => ((await balance(owner, organizationId)).total === 1475 ? true : undefined),
  );

  const [topUp, ...more] = await topUps(organizationId);
  assert.equal(more.length, 0, "one top-up");
  assert.equal(topUp!.status, "succeeded");
  const intent = await stripe.paymentIntents.retrieve(topUp!.stripe_payment_intent_id!);
  assert.equal(intent.amount, 1000, "the pack's price");
  assert.equal(intent.customer, customerId, "on the organization's customer");
  assert.equal(intent.payment_method, card!.stripe_payment_method_id, "with the card on file");

  const { data: history } = await db.from("billing_history").select("kind, status, amount, receipt_url")
    .eq("stripe_reference", intent.id).single();
  assert.equal(history!.status, "paid");
  assert.equal(history!.amount, 1000);
  assert.match(history!.receipt_url ?? "", /^https?:\/\//, "the history row links the receipt");
  const succeeded = await notificationsOf(organizationId, "auto_top_up.succeeded");
  assert.equal(succeeded.length, 1, "one auto_top_up.succeeded notification");
  assert.equal(succeeded[0]!.payload.data.credits, 1000);

  // Stripe's events arrive too (the job already applied the outcome): nothing more happens,
  // and nor does running the job again, or the whole webhook history replayed shuffled.
  await deliveredAll(customerId);
  await runJob();
  const history1 = await eventsOfCustomer(customerId);
  const shuffled = [...history1, ...history1].sort(() => Math.random() - 0.5);
  for (const event of shuffled) await deliverEvent(event);
  await appliedAll(history1.map((event) => event.id));
  await sweepInbox({ older_than_seconds: 0 });
  assert.equal((await balance(owner, organizationId)).total, 1475, "the credits arrived once");
  assert.equal((await topUps(organizationId)).length, 1, "still one top-up");
  assert.equal((await notificationsOf(organizationId, "auto_top_up.succeeded")).length, 1, "still one notification");
});

Deno.test("twenty consumptions crossing the threshold at once, with jobs running meanwhile, make one top-up", async () => {
  const { owner, organizationId } = await organizationWithPack("Crossed at once");
  await setAutoTopUp(owner, organizationId, 900);
  // Twenty concurrent 25-credit consumptions (1,000 -> 500), five job runs racing them.
  await Promise.all([
    ...Array.from({ length: 20 }, () => spend(owner, organizationId, 25)),
    ...Array.from({ length: 5 }, () => runJob()),
  ]);
  await Promise.all(Array.from({ length: 5 }, () => runJob()));
  await eventually(
    "the top-up's credits",
    async () => ((await balance(owner, organizationId)).total === 1500 ? true : undefined),
  );
  await Promise.all(Array.from({ length: 3 }, () => runJob()));
  const made = await topUps(organizationId);
  assert.equal(made.length, 1, "one top-up however the runs and consumptions crossed");
  assert.equal((await balance(owner, organizationId)).total, 1500, "and its credits once");
});

Deno.test("the monthly limit holds: no more top-ups this month than the limit, even below the threshold", async () => {
  const { owner, organizationId } = await organizationWithPack("Limited");
  // A threshold no single pack can reach: every run would top up again without the limit.
  await setAutoTopUp(owner, organizationId, 100_000, 2);
  for (let run = 0; run < 5; run++) {
    await runJob();
    await eventually(
      "the run's top-up to finish",
      async () => (await topUps(organizationId)).every((t) => t.status === "succeeded") ? true : undefined,
    );
  }
  assert.equal((await topUps(organizationId)).length, 2, "two top-ups, the monthly limit");
  assert.equal((await balance(owner, organizationId)).total, 3000);
});

Deno.test("a card declined off-session: three failed top-ups, alerts and emails, then auto top-up is off", async () => {
  const { owner, organizationId, customerId } = await organizationWithPack("Declined");
  await replaceCard(organizationId, customerId, DECLINES_OFF_SESSION.method, DECLINES_OFF_SESSION.last4);
  await setAutoTopUp(owner, organizationId, 2000, 10);
  for (let run = 0; run < 3; run++) {
    await runJob();
    await eventually(
      `failure ${run + 1}`,
      async () => ((await topUps(organizationId)).filter((t) => t.status === "failed").length === run + 1
        ? true
        : undefined),
    );
  }
  await deliveredAll(customerId);
  await runJob();
  const made = await topUps(organizationId);
  assert.equal(made.length, 3, "no fourth attempt: auto top-up is off");
  assert.ok(made.every((t) => t.status === "failed" && t.failure_code === "card_declined"));
  assert.deepEqual(await setting(organizationId), {
    enabled: false,
    disabled_reason: "three top-up payments failed in a row",
    consecutive_failures: 3,
  });
  assert.equal((await balance(owner, organizationId)).total, 1000, "no credits without a payment");
  const { data: alerts } = await db.from("billing_alerts").select("title, severity").eq(
    "organization_id",
    organizationId,
  )
    .eq("kind", "auto_top_up_failed");
  assert.equal(alerts!.filter((a) => a.title === "Auto top-up payment failed").length, 3, "an alert per failed top-up");
  assert.equal(alerts!.filter((a) => a.title === "Auto top-up turned off").length, 1, "and one saying it is off");
  assert.equal(
    (await notificationsOf(organizationId, "auto_top_up.failed")).length,
    3,
    "an auto_top_up.failed notification each",
  );
  const { count } = await db.from("notification_emails").select("id", { count: "exact", head: true }).eq(
    "organization_id",
    organizationId,
  );
  assert.equal(count, 4, "every alert emails the owner");
});

Deno.test("a card that needs authentication: the owners get an email with the link to complete the payment", async () => {
  const { owner, organizationId, customerId } = await organizationWithPack("Authenticate");
  await replaceCard(organizationId, customerId, NEEDS_AUTHENTICATION.method, NEEDS_AUTHENTICATION.last4);
  await setAutoTopUp(owner, organizationId, 2000);
  await runJob();
  const waiting = await eventually("the top-up to wait for authentication", async () => {
    const [topUp] = await topUps(organizationId);
    return topUp?.status === "requires_action" ? topUp : undefined;
  });
  assert.equal(waiting.failure_code, "authentication_required");
  await runJob();
  assert.equal((await topUps(organizationId)).length, 1, "no second top-up while one waits for the customer");

  const { data: user } = await owner.client.auth.getUser();
  const address = user.user!.email!;
  const email = await eventually("the email to the owner", async () => {
    await fetch(`${supabaseUrl}/functions/v1/notifications/deliver`, {
      method: "POST",
      headers: { Authorization: `Bearer ${serviceKey}` },
    })
      .then((r) => r.body?.cancel());
    const all = (await (await fetch(`${mailCatcherUrl}/api/email`)).json()) as Array<
      { to: Array<{ address: string }>; subject: string; text: string }
    >;
    return all.find((e) => e.to.some((t) => t.address === address) && /authentication/.test(e.subject));
  }, 30_000);
  const link = /Complete the payment: (\S+)/.exec(email.text)?.[1];
  assert.ok(link, `the email carries the link: ${email.text}`);
  assert.equal(link, waiting.authentication_url, "the link is the page Stripe gave for authenticating this payment");
  assert.match(link, new RegExp(`/payment_intents/${waiting.stripe_payment_intent_id}/authenticate$`));
  assert.equal((await balance(owner, organizationId)).total, 1000, "no credits before the payment is completed");

  // The owner follows the link and completes the authentication: the payment goes through and
  // the top-up's credits arrive, once.
  const page = await fetch(link, {
    method: "POST",
    body: new URLSearchParams({ outcome: "complete" }),
    redirect: "manual",
  });
  await page.body?.cancel();
  assert.ok(page.status < 400, `the authentication page answered ${page.status}`);
  await eventually(
    "the authenticated top-up's credits",
    async () => ((await balance(owner, organizationId)).total === 2000 ? true : undefined),
  );
  await deliveredAll(customerId);
  assert.equal((await topUps(organizationId))[0]!.status, "succeeded");
  assert.equal((await balance(owner, organizationId)).total, 2000);
});

Deno.test("a run that stopped after Stripe charged, with no webhook coming, is finished by a later run", async () => {
  const { owner, organizationId, customerId } = await organizationWithPack("Stopped halfway");
  await setAutoTopUp(owner, organizationId, 2000);
  const database = new pg.Client({ connectionString: required("TEST_DATABASE_URL") });
  await database.connect();
  await setDelivery(false);
  try {
    // What a run does before it stops: claims the top-up, charges it at Stripe, records the
    // PaymentIntent; then it dies before applying the outcome, and Stripe's events do not come.
    const { rows: [claimed] } = await database.query(
      "select * from public.claim_auto_top_ups() where organization_id = $1",
      [organizationId],
    );
    const intent = await stripe.paymentIntents.create({
      amount: claimed.amount,
      currency: claimed.currency,
      customer: claimed.stripe_customer_id,
      payment_method: claimed.stripe_payment_method_id,
      off_session: true,
      confirm: true,
      metadata: { organization_id: organizationId, auto_top_up_id: claimed.top_up_id },
    }, { idempotencyKey: claimed.idempotency_key });
    await database.query("select public.record_auto_top_up_payment_intent($1, $2, $3)", [
      organizationId,
      claimed.top_up_id,
      intent.id,
    ]);
    await runJob();
    assert.equal(
      (await topUps(organizationId))[0]!.status,
      "processing",
      "within its lease, the top-up is the stopped run's",
    );

    // Two minutes on, a run takes it up and reads the PaymentIntent back.
    await database.query(
      "update public.auto_top_ups set attempted_at = now() - interval '3 minutes' where organization_id = $1",
      [organizationId],
    );
    await runJob();
    assert.equal((await topUps(organizationId))[0]!.status, "succeeded");
    assert.equal((await balance(owner, organizationId)).total, 2000, "the credits arrived");
  } finally {
    await setDelivery(true);
    await database.end();
  }
  // Stripe's events, held back until now, arrive after all: nothing more happens.
  const events = await eventsOfCustomer(customerId);
  for (const event of events) await deliverEvent(event);
  await appliedAll(events.map((event) => event.id));
  assert.equal((await balance(owner, organizationId)).total, 2000, "and once, when Stripe's events arrive after all");
  assert.equal((await topUps(organizationId)).length, 1);
});
