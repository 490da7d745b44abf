/**
 * The billing API for each role and each class of bad input (RELIABILITY.md): owners and
 * admins manage billing, members read and spend, strangers get 403 for everything about the
 * organization; bad input is a 4xx with the error envelope, never a 5xx, and writes nothing.
 */
import assert from "node:assert/strict";
import { anonKey, api, db, type Member, ownerWithOrganization, payCheckout, signUp, supabaseUrl } from "./support.ts";

const test = (name: string, fn: () => Promise<void>) => Deno.test({ name, sanitizeOps: false, sanitizeResources: false, fn });

/** An organization with an owner, an admin, a member, a stranger, and 1,000 purchased credits. */
async function organizationWithEveryRole() {
  const { owner, organizationId } = await ownerWithOrganization("Roles Inc");
  const [admin, member, stranger] = await Promise.all([signUp(), signUp(), signUp()]);
  for (const [who, role] of [[admin, "admin"], [member, "member"]] as const) {
    const { error } = await owner.client.rpc("add_organization_member", { p_organization_id: organizationId, p_user_id: who.userId, p_role: role });
    if (error) throw new Error(error.message);
  }
  const { error } = await db.rpc("grant_credits", { p_organization_id: organizationId, p_amount: 1000, p_source: "purchased" });
  if (error) throw new Error(error.message);
  return { organizationId, roles: { owner, admin, member, stranger } as Record<string, Member> };
}

async function ledgerRows(organizationId: string): Promise<number> {
  const { count, error } = await db.from("credit_transactions").select("id", { count: "exact", head: true }).eq("organization_id", organizationId);
  if (error) throw new Error(error.message);
  return count ?? -1;
}

test("each role gets what its role allows on every endpoint", async () => {
  const { organizationId, roles } = await organizationWithEveryRole();
  const org = organizationId;
  // [method, path, body, status for owner, admin, member, stranger]
  const cases: Array<[string, string, unknown, number, number, number, number]> = [
    ["GET", "/plans", undefined, 200, 200, 200, 200],
    ["GET", "/credit-products", undefined, 200, 200, 200, 200],
    ["GET", `/subscription/${org}`, undefined, 200, 200, 200, 403],
    ["GET", `/credits/${org}`, undefined, 200, 200, 200, 403],
    ["GET", `/summary/${org}`, undefined, 200, 200, 200, 403],
    ["GET", `/history/${org}`, undefined, 200, 200, 200, 403],
    ["POST", "/credits/consume", { organization_id: org, event_key: "api_call_basic" }, 200, 200, 200, 403],
    ["POST", "/subscription/checkout", { organization_id: org, plan_code: "starter", interval: "month" }, 200, 200, 403, 403],
    ["POST", "/credit-products/checkout", { organization_id: org, product_code: "credits_1000" }, 200, 200, 403, 403],
    // The checkout above made the organization's Stripe customer, so the portal can open.
    ["POST", "/subscription/portal", { organization_id: org }, 200, 200, 403, 403],
  ];
  for (const [method, path, body, ...expected] of cases) {
    for (const [index, role] of ["owner", "admin", "member", "stranger"].entries()) {
      const response = await api(roles[role]!, method, path, body);
      assert.equal(response.status, expected[index], `${role}: ${method} ${path} -> ${JSON.stringify(response.body)}`);
      if (response.status >= 400) assert.equal(response.body.error?.code, "forbidden", `${role}: ${method} ${path} has the envelope`);
    }
  }
  const summary = await api(roles.member!, "GET", `/summary/${org}`);
  assert.equal(summary.body.balance.total, 1000 - 3, "three members' calls each spent one credit; the stranger's spent nothing");
});

test("without a signed-in user's token the billing API is a 401", async () => {
  // The platform (verify_jwt) refuses these before the function runs, in its own format.
  for (const path of ["/plans", "/credits/00000000-0000-4000-8000-000000000000"]) {
    const response = await fetch(`${supabaseUrl}/functions/v1/billing${path}`, { headers: { apikey: anonKey } });
    assert.equal(response.status, 401, path);
    await response.body?.cancel();
  }
  // With the anon key as the bearer (a valid JWT, but nobody's), the database refuses it.
  const anonymous = await fetch(`${supabaseUrl}/functions/v1/billing/credits/00000000-0000-4000-8000-000000000000`, {
    headers: { apikey: anonKey, Authorization: `Bearer ${anonKey}` },
  });
  assert.equal(anonymous.status, 403, "the anon key is nobody's token: no organization's credits");
  assert.equal(typeof (await anonymous.json()).error?.code, "string", "with the envelope");
});

test("bad input of every class gets a 4xx with the error envelope and writes nothing", async () => {
  const { organizationId, roles } = await organizationWithEveryRole();
  const owner = roles.owner!;
  const consume = (extra: Record<string, unknown>) => ({ organization_id: organizationId, event_key: "api_call_basic", ...extra });
  const before = await ledgerRows(organizationId);

  const cases: Array<[string, string, unknown, number]> = [
    ["POST", "/credits/consume", { organization_id: "not-a-uuid", event_key: "api_call_basic" }, 400],
    ["POST", "/credits/consume", consume({ quantity: 0 }), 400],
    ["POST", "/credits/consume", consume({ quantity: -5 }), 400],
    ["POST", "/credits/consume", consume({ quantity: 1.5 }), 400],
    ["POST", "/credits/consume", consume({ quantity: 1e12 }), 400],
    ["POST", "/credits/consume", consume({ quantity: "3" }), 400],
    ["POST", "/credits/consume", consume({ extra: 1 }), 400],
    ["POST", "/credits/consume", consume({ event_key: "'; drop table credit_lots; --" }), 400],
    ["POST", "/credits/consume", consume({ event_key: "api_call_b\u0430sic" }), 400], // a Cyrillic "а"
    ["POST", "/credits/consume", consume({ idempotency_key: "key\u0000with-nul" }), 400],
    ["POST", "/credits/consume", consume({ idempotency_key: "" }), 400],
    ["POST", "/credits/consume", consume({ idempotency_key: "k".repeat(256) }), 400],
    ["POST", "/credits/consume", consume({ event_key: "no_such_event" }), 404],
    ["POST", "/credits/consume", consume({ quantity: 100_000 }), 402],
    ["POST", "/credits/consume", [consume({})], 400],
    ["POST", "/credits/consume", null, 400],
    ["POST", "/subscription/checkout", { organization_id: organizationId, plan_code: "starter", interval: "week" }, 400],
    ["POST", "/subscription/checkout", { organization_id: organizationId, plan_code: "no_such_plan", interval: "month" }, 404],
    ["POST", "/subscription/checkout", { organization_id: organizationId, plan_code: "starter", interval: "month", price: "price_free" }, 400],
    ["POST", "/credit-products/checkout", { organization_id: organizationId, product_code: "STARTER\u202e" }, 400],
    ["POST", "/subscription/portal", { organization_id: organizationId }, 409],
    ["GET", "/summary/not-a-uuid", undefined, 400],
    ["GET", `/history/${organizationId}?limit=0`, undefined, 400],
    ["GET", `/history/${organizationId}?limit=1000`, undefined, 400],
    ["GET", `/history/${organizationId}?offset=-1`, undefined, 400],
    ["GET", `/history/${organizationId}?sort=amount`, undefined, 400],
    ["GET", "/credits/consume", undefined, 400], // read as GET /credits/{org_id} with a bad id
    ["DELETE", "/plans", undefined, 404],
    ["GET", "/nope", undefined, 404],
  ];
  for (const [method, path, body, status] of cases) {
    const response = await api(owner, method, path, body);
    assert.equal(response.status, status, `${method} ${path} ${JSON.stringify(body)} -> ${JSON.stringify(response.body)}`);
    assert.equal(typeof response.body.error?.code, "string", `${method} ${path}: the envelope has a code`);
    assert.equal(typeof response.body.error?.message, "string", "and a message");
  }

  const raw = async (headers: Record<string, string>, body: string) => {
    const response = await fetch(`${supabaseUrl}/functions/v1/billing/credits/consume`, {
      method: "POST",
      headers: { Authorization: `Bearer ${owner.token}`, apikey: anonKey, ...headers },
      body,
    });
    return { status: response.status, body: await response.json() };
  };
  const valid = JSON.stringify(consume({}));
  const rawCases: Array<[string, Record<string, string>, string, number, string]> = [
    ["malformed JSON", { "Content-Type": "application/json" }, "{not json", 400, "invalid_json"],
    ["a form body", { "Content-Type": "application/x-www-form-urlencoded" }, "organization_id=x", 415, "unsupported_media_type"],
    ["no content type", {}, valid, 415, "unsupported_media_type"],
    ["a huge body", { "Content-Type": "application/json" }, JSON.stringify(consume({ metadata: { blob: "x".repeat(100_000) } })), 413, "payload_too_large"],
  ];
  for (const [what, headers, body, status, code] of rawCases) {
    const response = await raw(headers, body);
    assert.equal(response.status, status, `${what} -> ${JSON.stringify(response.body)}`);
    assert.equal(response.body.error?.code, code, what);
  }

  assert.equal(await ledgerRows(organizationId), before, "no bad request wrote a ledger row");
  const { data: organization } = await db.from("organizations").select("stripe_customer_id").eq("id", organizationId).single();
  assert.equal(organization?.stripe_customer_id, null, "and none reached Stripe for a customer");
});

test("a newer subscription checkout expires the older open one, so only one subscription can be paid", async () => {
  const { roles, organizationId } = await organizationWithEveryRole();
  const first = await api(roles.owner!, "POST", "/subscription/checkout", { organization_id: organizationId, plan_code: "starter", interval: "month" });
  const second = await api(roles.admin!, "POST", "/subscription/checkout", { organization_id: organizationId, plan_code: "professional", interval: "year" });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  assert.equal(second.status, 200, JSON.stringify(second.body));
  assert.notEqual(first.body.url, second.body.url);
  await assert.rejects(payCheckout(first.body.url), /expired|no longer be paid/, "the older session cannot be paid any more");
  await payCheckout(second.body.url);
});
