/**
 * The operator console in a real browser (Debian's Chromium through playwright-core) against
 * the stack `npm test` starts: an operator signs in at /operator, reads the overview, finds an
 * organization, adjusts its credits with a reason (and its member sees the ledger row),
 * re-drives a parked webhook event, and finds and repairs a credit pack paid at Stripe while
 * webhooks were off; a member who opens /operator sees none of it.
 *
 * Screenshots go to SCREENSHOTS_DIR as operator-*.png (see support.ts).
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { before, describe, it } from "node:test";
import type { Page } from "playwright-core";
import { browserSuite, callRpc, DESKTOP, serviceRoleKeyUnderTest, shows } from "./support";

const PASSWORD = "a-long-e2e-password-1";

const suite = browserSuite();
let serviceKey: string;

before(() => {
  serviceKey = serviceRoleKeyUnderTest();
});

// Reads `suite.stack` when a test calls it, after browserSuite()'s before() has run.
const rpc = (token: string, fn: string, args: Record<string, unknown>) => callRpc(suite.stack, token, fn, args);

/** A user signed up through Auth; returns the id and access token. */
async function signUpUser(email: string): Promise<{ id: string; token: string }> {
  const response = await fetch(`${suite.stack.supabaseUrl}/auth/v1/signup`, {
    method: "POST",
    headers: { apikey: suite.stack.anonKey, "content-type": "application/json" },
    body: JSON.stringify({ email, password: PASSWORD }),
  });
  const body = (await response.json()) as { access_token?: string; user?: { id: string } };
  if (!response.ok || !body.access_token || !body.user) throw new Error(`sign-up failed: ${JSON.stringify(body)}`);
  return { id: body.user.id, token: body.access_token };
}

async function newPage(): Promise<Page> {
  const context = await suite.browser.newContext({ viewport: DESKTOP, locale: "en-US", timezoneId: "UTC" });
  context.setDefaultTimeout(15_000);
  return context.newPage();
}

async function signIn(page: Page, url: string, email: string): Promise<void> {
  await page.goto(url);
  await shows(page.getByRole("heading", { name: "Sign in" }), 60_000);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
}

describe("the operator console in the browser", () => {
  const tag = randomUUID().slice(0, 8);
  const organizationName = `Console Target ${tag}`;
  const operatorEmail = `operator-${tag}@example.test`;
  const memberEmail = `member-${tag}@example.test`;
  const eventId = `evt_e2eParked${tag}`;
  let organizationId = "";
  let memberToken = "";
  let operatorPage: Page;

  before(async () => {
    // The member's organization with some credits used, so the figures and charts have data.
    const member = await signUpUser(memberEmail);
    memberToken = member.token;
    organizationId = (await rpc(member.token, "create_organization", { p_name: organizationName })) as string;
    await rpc(serviceKey, "grant_credits", { p_organization_id: organizationId, p_amount: 1000, p_source: "purchased", p_reference: `e2e-${tag}` });
    await rpc(member.token, "consume_credits", { p_organization_id: organizationId, p_event_key: "ai_inference", p_quantity: 4 });
    await rpc(member.token, "consume_credits", { p_organization_id: organizationId, p_event_key: "api_call_premium", p_quantity: 10 });
    // A paying subscription (Enterprise has no trial), so MRR and the payment rate have figures.
    const checkout = await fetch(`${suite.stack.supabaseUrl}/functions/v1/billing/subscription/checkout`, {
      method: "POST",
      headers: { apikey: suite.stack.anonKey, authorization: `Bearer ${member.token}`, "content-type": "application/json" },
      body: JSON.stringify({ organization_id: organizationId, plan_code: "enterprise", interval: "month" }),
    });
    const { url } = (await checkout.json()) as { url: string };
    assert.equal(checkout.status, 200, url);
    const paid = await fetch(`${suite.stack.stripeApiBase}/_emulator/checkout/${new URL(url).pathname.split("/").pop()}/pay`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ card_number: "4242424242424242" }),
    });
    assert.equal(paid.status, 200, await paid.text());
    const deadline = Date.now() + 30_000;
    for (;;) {
      const detail = (await rpc(serviceKey, "operator_organization", { p_organization_id: organizationId })) as {
        subscriptions: { status: string }[];
        history: unknown[];
      };
      if (detail.subscriptions[0]?.status === "active" && detail.history.length === 1) break;
      if (Date.now() > deadline) throw new Error(`the subscription was not applied: ${JSON.stringify(detail.subscriptions)}`);
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
    // A live reservation (2 storage months at 10, held for an hour) and a monthly spend limit,
    // for the organization page's spending sections.
    await rpc(member.token, "reserve_credits", { p_organization_id: organizationId, p_event_key: "storage_gb_month", p_quantity: 2, p_ttl_seconds: 3600 });
    await rpc(member.token, "set_spend_limit", { p_organization_id: organizationId, p_monthly_credits: 50000 });
    // The operator: only the platform appoints one.
    const operator = await signUpUser(operatorEmail);
    await rpc(serviceKey, "add_billing_operator", { p_user_id: operator.id });
    // A webhook event parked with its error, as one that failed on bad data would be.
    await rpc(serviceKey, "record_stripe_event", {
      p_event_id: eventId, p_type: "customer.created", p_created_at: new Date().toISOString(), p_livemode: false,
      p_payload: { id: eventId, object: "event", type: "customer.created", created: Math.floor(Date.now() / 1000), data: { object: { id: `cus_e2e${tag}`, object: "customer" } } },
    });
    await rpc(serviceKey, "finish_stripe_event", { p_event_id: eventId, p_status: "parked", p_error: "PT404: the organization named in metadata was not found" });
  });

  it("signs in at /operator and sees the overview with its charts and their figures", async () => {
    operatorPage = await newPage();
    const page = operatorPage;
    await signIn(page, `${suite.stack.appUrl}/operator`, operatorEmail);
    await shows(page.getByRole("heading", { name: "Operator console" }));
    await shows(page.getByRole("tab", { name: "Overview", selected: true }));
    await shows(page.getByRole("heading", { name: "MRR" }));
    await shows(page.getByRole("heading", { name: "Payment success" }));
    assert.notEqual(await page.getByRole("region", { name: "MRR" }).getByRole("listitem").count(), 0, "MRR has a figure");
    // Every chart is an image with a name, and its figures are a table.
    await shows(page.getByRole("img", { name: /Consumption by event, per day/ }));
    // Other suites' organizations may outspend this one: the top ten need not include it.
    const top = page.getByRole("table", { name: "Top consumers: the figures" });
    assert.ok((await top.getByRole("rowheader").count()) >= 1, "the top consumers table has rows");
    const today = new Intl.DateTimeFormat("en-US", { dateStyle: "medium", timeZone: "UTC" }).format(new Date());
    // A month of days is folded under "Figures"; the table is there all the same.
    const days = page.getByRole("table", { name: "Consumption by event, per day: the figures", includeHidden: true });
    const todayRow = days.getByRole("row", { name: new RegExp(`^${today}`), includeHidden: true });
    const total = Number(((await todayRow.getByRole("cell", { includeHidden: true }).last().textContent({ timeout: 15_000 })) ?? "0").replace(/,/g, ""));
    assert.ok(total >= 150, `today's consumption (${total}) includes the organization's 150 credits`);
    await shows(page.getByRole("table", { name: "Credits in the period: the figures" }));
    await suite.screenshot(page, "operator-overview");
  });

  it("finds the organization, opens it and adjusts its credits with a reason", async () => {
    const page = operatorPage;
    await page.getByRole("tab", { name: "Organizations" }).click();
    await page.getByRole("searchbox", { name: "Search" }).fill(organizationName);
    await page.getByRole("button", { name: "Search", exact: true }).click();
    await page.getByRole("button", { name: organizationName }).click();
    await shows(page.getByRole("heading", { name: organizationName }));
    await shows(page.getByText("25,830 credits"));
    await shows(page.getByText("Enterprise (monthly)"));
    await shows(page.getByRole("table", { name: "Live reservations" }).getByRole("row", { name: /storage_gb_month/ }));
    await shows(page.getByRole("region", { name: "Spend limit" }).getByText("50,000 credits"));
    await page.getByLabel("Amount").fill("250");
    await page.getByLabel("Reason").fill("Goodwill for the outage");
    await page.getByRole("button", { name: "Adjust", exact: true }).click();
    await shows(page.getByRole("status").filter({ hasText: "Adjusted by +250 purchased credits." }));
    await shows(page.getByText("26,080 credits"));
    await shows(page.getByRole("cell", { name: /Goodwill for the outage/ }));
    await suite.screenshot(page, "operator-organization");

    // A blank reason is refused before anything is sent.
    await page.getByLabel("Amount").fill("5");
    await page.getByRole("button", { name: "Adjust", exact: true }).click();
    await shows(page.getByRole("alert").filter({ hasText: "the reason is recorded in the ledger" }));
  });

  it("shows the member the adjustment in their ledger", async () => {
    const page = await newPage();
    await signIn(page, suite.stack.appUrl, memberEmail);
    await shows(page.getByRole("heading", { name: "Billing" }), 30_000);
    await page.getByRole("tab", { name: "Credits" }).click();
    const row = page.getByRole("row").filter({ hasText: "Goodwill for the outage" });
    await shows(row);
    assert.match((await row.textContent()) ?? "", /Adjustment by support: Goodwill for the outage.*Purchased credits.*\+250.*26,080/);
    await page.context().close();
  });

  it("re-drives the parked webhook event from the operations view", async () => {
    const page = operatorPage;
    await page.getByRole("tab", { name: "Operations" }).click();
    const parked = page.getByRole("row").filter({ hasText: eventId });
    await shows(parked);
    await shows(parked.getByText("the organization named in metadata was not found"));
    await suite.screenshot(page, "operator-operations");
    await parked.getByRole("button", { name: `Re-drive ${eventId}` }).click();
    await shows(page.getByRole("status").filter({ hasText: `Re-driven ${eventId}: ignored.` }));
    await page.getByRole("row").filter({ hasText: eventId }).waitFor({ state: "detached" });
  });

  it("finds a credit pack paid at Stripe that never reached us, and repairs it once", async () => {
    const page = operatorPage;
    // Webhook delivery off at the emulator while the pack is paid: Stripe has it, we do not.
    const setDelivery = (enabled: boolean) =>
      fetch(`${suite.stack.stripeApiBase}/_emulator/webhooks`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ enabled }) });
    let sessionId = "";
    assert.equal((await setDelivery(false)).status, 200);
    try {
      const checkout = await fetch(`${suite.stack.supabaseUrl}/functions/v1/billing/credit-products/checkout`, {
        method: "POST",
        headers: { apikey: suite.stack.anonKey, authorization: `Bearer ${memberToken}`, "content-type": "application/json" },
        body: JSON.stringify({ organization_id: organizationId, product_code: "credits_1000" }),
      });
      const { url } = (await checkout.json()) as { url: string };
      sessionId = new URL(url).pathname.split("/").pop()!;
      const paid = await fetch(`${suite.stack.stripeApiBase}/_emulator/checkout/${sessionId}/pay`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ card_number: "4242424242424242" }),
      });
      assert.equal(paid.status, 200, await paid.text());
    } finally {
      await setDelivery(true);
    }

    await page.getByRole("button", { name: "Compare with Stripe" }).click();
    const drift = page.getByRole("row").filter({ hasText: sessionId });
    await shows(drift, 30_000);
    assert.match((await drift.textContent()) ?? "", /credit pack not granted/);
    await suite.screenshot(page, "operator-reconciliation");
    await drift.getByRole("button", { name: `Repair ${sessionId}` }).click();
    await shows(page.getByRole("status").filter({ hasText: `Repaired: ${sessionId} processed.` }), 30_000);
    await page.getByRole("row").filter({ hasText: sessionId }).waitFor({ state: "detached" });

    // Granted once: the pack's 1,000 credits on top of the 26,080.
    const detail = (await rpc(serviceKey, "operator_organization", { p_organization_id: organizationId })) as { balance: { total: number } };
    assert.equal(detail.balance.total, 27_080);
  });

  it("shows a member who opens /operator nothing of the console", async () => {
    const page = await newPage();
    const seen: string[] = [];
    page.on("response", (response) => {
      if (/\/rpc\/operator_/.test(response.url()) && response.ok()) seen.push(response.url());
    });
    await signIn(page, `${suite.stack.appUrl}/operator`, memberEmail);
    await shows(page.getByText("This page is for billing operators, and you are not one."));
    assert.equal(await page.getByRole("tablist").count(), 0, "no console sections");
    assert.equal(await page.getByText(organizationName).count(), 0, "no organization data");
    assert.deepEqual(seen, [], "no operator function answered the member");
    await page.context().close();
  });
});
