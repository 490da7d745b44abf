/**
 * Every URL the API returns can be paid, and Stripe objects the database remembers but Stripe
 * no longer has (a deleted customer, an archived price, ids from another Stripe account or an
 * emulator that lost its state) are made again instead of failing the request: a price from
 * our catalog, a customer for an organization with nothing live billed to the old one.
 */
import assert from "node:assert/strict";
import pg from "pg";
import {
  advanceClockUntil,
  api,
  customersOf,
  db,
  eventually,
  latestSubscription,
  type Member,
  ownerWithOrganization,
  payCheckout,
  required,
  stripe,
} from "./support.ts";

const test = (name: string, fn: () => Promise<void>) => Deno.test({ name, sanitizeOps: false, sanitizeResources: false, fn });

/** A well-formed Stripe id that no Stripe account has. */
const neverSeen = (prefix: "cus" | "price") => `${prefix}_NeverInThisStripe${crypto.randomUUID().replaceAll("-", "").slice(0, 12)}`;

const sessionOf = (url: string) => stripe.checkout.sessions.retrieve(new URL(url).pathname.split("/").pop()!);

async function storedCustomer(organizationId: string): Promise<string | null> {
  const { data, error } = await db.from("organizations").select("stripe_customer_id").eq("id", organizationId).single();
  if (error) throw new Error(error.message);
  return data.stripe_customer_id;
}

/** Runs one statement as the database owner (what an operator or another deployment would have left). */
async function sql(text: string, values: unknown[]) {
  const client = new pg.Client({ connectionString: required("TEST_DATABASE_URL") });
  await client.connect();
  try {
    await client.query(text, values);
  } finally {
    await client.end();
  }
}

/** Makes the database remember a customer Stripe never had (another account, a lost emulator). */
async function forgetCustomerInStripe(organizationId: string, bogus: string) {
  await sql("update public.organizations set stripe_customer_id = $2 where id = $1", [organizationId, bogus]);
}

async function planPriceId(code: string, interval: "month" | "year"): Promise<string | null> {
  const column = interval === "month" ? "stripe_monthly_price_id" : "stripe_annual_price_id";
  const { data, error } = await db.from("subscription_plans").select(column).eq("code", code).single();
  if (error) throw new Error(error.message);
  return (data as Record<string, string | null>)[column] ?? null;
}

const checkout = (owner: Member, organizationId: string, plan_code: string, interval = "month") =>
  api(owner, "POST", "/subscription/checkout", { organization_id: organizationId, plan_code, interval });

test("Starter, then Professional, then Starter again: every checkout URL is an open session that can be paid", async () => {
  const { owner, organizationId } = await ownerWithOrganization("Indecisive Inc");
  const urls: string[] = [];
  for (const plan of ["starter", "professional", "starter", "professional", "starter"]) {
    const response = await checkout(owner, organizationId, plan);
    assert.equal(response.status, 200, `${plan}: ${JSON.stringify(response.body)}`);
    assert.equal((await sessionOf(response.body.url)).status, "open", `the ${urls.length + 1}. URL (${plan}) is open`);
    urls.push(response.body.url);
  }
  assert.equal(new Set(urls).size, urls.length, "each change of plan opened a new session");
  const again = await Promise.all(Array.from({ length: 3 }, () => checkout(owner, organizationId, "starter")));
  assert.deepEqual(new Set(again.map((r) => r.body.url)), new Set([urls.at(-1)]), "a double click still gets the one open session");
  await payCheckout(urls.at(-1)!);
  await eventually("the subscription", async () => (await latestSubscription(owner, organizationId))?.status === "trialing" || undefined);
  const late = await checkout(owner, organizationId, "starter");
  assert.equal(late.status, 409, "once subscribed, another checkout is refused");
  assert.equal(late.body.error.code, "subscription_exists");
});

test("a credit pack bought and paid within the idempotency window: buying it again opens a new, payable session", async () => {
  const { owner, organizationId } = await ownerWithOrganization("Quick Buyer Inc");
  const buy = () => api(owner, "POST", "/credit-products/checkout", { organization_id: organizationId, product_code: "credits_5000" });
  const first = await buy();
  assert.equal(first.status, 200, JSON.stringify(first.body));
  await payCheckout(first.body.url);
  const second = await buy();
  assert.equal(second.status, 200, JSON.stringify(second.body));
  assert.notEqual(second.body.url, first.body.url, "not the session already paid");
  assert.equal((await sessionOf(second.body.url)).status, "open");
  await payCheckout(second.body.url);
});

test("a deleted Stripe customer is made again, once, for checkout and the portal of an organization without a live subscription", async () => {
  const { owner, organizationId } = await ownerWithOrganization("Deleted Customer Inc");
  const pack = { organization_id: organizationId, product_code: "credits_1000" };
  assert.equal((await api(owner, "POST", "/credit-products/checkout", pack)).status, 200);
  const original = (await storedCustomer(organizationId))!;
  await stripe.customers.del(original);

  const portals = await Promise.all(Array.from({ length: 3 }, () =>
    api(owner, "POST", "/subscription/portal", { organization_id: organizationId })));
  assert.deepEqual(portals.map((r) => r.status), [200, 200, 200], JSON.stringify(portals.map((r) => r.body)));
  const replacement = await storedCustomer(organizationId);
  assert.ok(replacement && replacement !== original, "the organization has a new customer");
  assert.deepEqual(await customersOf(organizationId), [replacement], "exactly one live customer, however many clicks");

  const purchase = await api(owner, "POST", "/credit-products/checkout", pack);
  assert.equal(purchase.status, 200, JSON.stringify(purchase.body));
  const session = await sessionOf(purchase.body.url);
  assert.equal(session.customer, replacement, "checkout bills the new customer");
  await payCheckout(purchase.body.url);
  await eventually("the pack's credits", async () => {
    const { data } = await owner.client.rpc("get_credit_balance", { p_organization_id: organizationId });
    return data?.purchased === 1000 || undefined;
  });
});

test("a customer id Stripe never had (another account, an emulator that lost its state) is replaced at checkout", async () => {
  const { owner, organizationId } = await ownerWithOrganization("Other Account Inc");
  const bogus = neverSeen("cus");
  await forgetCustomerInStripe(organizationId, bogus);
  const response = await checkout(owner, organizationId, "starter");
  assert.equal(response.status, 200, JSON.stringify(response.body));
  const customer = await storedCustomer(organizationId);
  assert.notEqual(customer, bogus);
  assert.equal((await sessionOf(response.body.url)).customer, customer);
});

test("a live subscription on a customer Stripe no longer has is a 409 with the envelope; no second customer is made", async () => {
  const { owner, organizationId } = await ownerWithOrganization("Orphaned Subscription Inc");
  const subscribe = await checkout(owner, organizationId, "starter");
  await payCheckout(subscribe.body.url);
  await eventually("the subscription", async () => (await latestSubscription(owner, organizationId))?.status === "trialing" || undefined);
  const original = (await storedCustomer(organizationId))!;
  const bogus = neverSeen("cus");
  await forgetCustomerInStripe(organizationId, bogus);

  for (const [path, body] of [
    ["/subscription/portal", { organization_id: organizationId }],
    ["/credit-products/checkout", { organization_id: organizationId, product_code: "credits_1000" }],
  ] as const) {
    const response = await api(owner, "POST", path, body);
    assert.equal(response.status, 409, `${path}: ${JSON.stringify(response.body)}`);
    assert.equal(response.body.error.code, "customer_missing", path);
    assert.equal(typeof response.body.error.message, "string");
  }
  assert.equal(await storedCustomer(organizationId), bogus, "the stored customer is left for a person to sort out");
  assert.deepEqual(await customersOf(organizationId), [original], "no second customer in Stripe");
});

test("an archived price is made again from our catalog; subscriptions on the old price still renew with credits", async () => {
  // Enterprise has no trial: its first invoice is paid at checkout, so a renewal is the second.
  const { owner: early, organizationId: earlyOrg } = await ownerWithOrganization("Early Enterprise Inc");
  const first = await checkout(early, earlyOrg, "enterprise");
  assert.equal(first.status, 200, JSON.stringify(first.body));
  await payCheckout(first.body.url);
  const subscription = await eventually("the first subscription", async () => {
    const s = await latestSubscription(early, earlyOrg);
    return s?.status === "active" ? s : undefined;
  });
  const oldPrice = (await planPriceId("enterprise", "month"))!;
  await stripe.prices.update(oldPrice, { active: false });

  const { owner: late, organizationId: lateOrg } = await ownerWithOrganization("Late Enterprise Inc");
  const second = await checkout(late, lateOrg, "enterprise");
  assert.equal(second.status, 200, JSON.stringify(second.body));
  const newPrice = await planPriceId("enterprise", "month");
  assert.ok(newPrice && newPrice !== oldPrice, "the catalog remembers a new price");
  const price = await stripe.prices.retrieve(newPrice);
  assert.deepEqual([price.active, price.unit_amount, price.currency, price.recurring?.interval], [true, 19900, "usd", "month"]);
  const line = await stripe.checkout.sessions.listLineItems((await sessionOf(second.body.url)).id);
  assert.equal(line.data[0]?.price?.id, newPrice, "checkout sells the new price");

  // The early customer still pays the archived price; its renewal must still grant credits.
  await advanceClockUntil(subscription.stripe_subscription_id, "the renewal's credits", async () => {
    const { data } = await db.from("credit_lots").select("id").eq("organization_id", earlyOrg);
    return (data?.length ?? 0) >= 2 ? true : undefined;
  });
  const { data: parked } = await db.from("stripe_events").select("id").eq("organization_id", earlyOrg).eq("status", "parked");
  assert.deepEqual(parked, [], "no event about the old price was parked");
});

test("a price id Stripe never had is replaced from our catalog for a credit pack", async () => {
  const { owner, organizationId } = await ownerWithOrganization("Lost Price Inc");
  const bogus = neverSeen("price");
  await sql("update public.credit_products set stripe_price_id = $1 where code = 'credits_20000'", [bogus]);
  const responses = await Promise.all(Array.from({ length: 3 }, () =>
    api(owner, "POST", "/credit-products/checkout", { organization_id: organizationId, product_code: "credits_20000" })));
  assert.deepEqual(responses.map((r) => r.status), [200, 200, 200], JSON.stringify(responses.map((r) => r.body)));
  assert.equal(new Set(responses.map((r) => r.body.url)).size, 1, "three clicks repair once and open one session");
  const response = responses[0]!;
  const { data } = await db.from("credit_products").select("stripe_price_id").eq("code", "credits_20000").single();
  const active = await stripe.prices.list({ lookup_keys: ["credits:credits_20000"], active: true });
  assert.deepEqual(active.data.map((p) => p.id), [data?.stripe_price_id], "one active price under the lookup key, the one remembered");
  assert.notEqual(data?.stripe_price_id, bogus);
  const line = await stripe.checkout.sessions.listLineItems((await sessionOf(response.body.url)).id);
  assert.equal(line.data[0]?.price?.id, data?.stripe_price_id);
  assert.equal(line.data[0]?.price?.unit_amount, 16000, "at our catalog's amount");
});
