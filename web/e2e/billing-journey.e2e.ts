/**
 * A member's whole billing journey in a real browser (Debian's Chromium through
 * playwright-core) against the stack `npm test` starts: the dashboard (Vite), the gateway,
 * the Edge Functions and the Stripe emulator's hosted pages. Each step is one test and
 * builds on the one before, as a person would click through; a failed step makes the later
 * ones fail too, with their own reason.
 *
 * Screenshots of each tab (and one at phone width) go to SCREENSHOTS_DIR (see support.ts).
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import type { BrowserContext, Page } from "playwright-core";
import { accessToken, billingApi, browserSuite, DESKTOP, PHONE, shows, sidewaysOverflow } from "./support";

/** Webhooks are applied asynchronously after Stripe redirects back; give them room. */
const WEBHOOK_TIMEOUT_MS = 30_000;
/** Balance and usage refresh every 10 s while visible (LIVE_REFRESH_MS). */
const LIVE_REFRESH_TIMEOUT_MS = 30_000;
const PASSWORD = "a-long-e2e-password-1";
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

// This suite's screenshots are the README's, so it says where they went.
const suite = browserSuite({ announceScreenshots: true });

/** A fresh, isolated browser profile (its own localStorage) with a page at desktop width. */
async function newPage(): Promise<{ context: BrowserContext; page: Page }> {
  const context = await suite.browser.newContext({ viewport: DESKTOP, locale: "en-US", timezoneId: "UTC" });
  context.setDefaultTimeout(15_000);
  return { context, page: await context.newPage() };
}

/** Signs up through the dashboard's own form; the Vite server may still be warming up on the first visit. */
async function signUp(page: Page, email: string): Promise<void> {
  await page.goto(suite.stack.appUrl);
  await shows(page.getByRole("heading", { name: "Sign in" }), 60_000);
  await page.getByRole("button", { name: "Create one" }).click();
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Create an account" }).click();
  await shows(page.getByText("You are not in any organization yet."));
}

async function createOrganization(page: Page, name: string): Promise<string> {
  await page.getByLabel("New organization name").fill(name);
  await page.getByRole("button", { name: "Create organization" }).click();
  await shows(page.getByRole("heading", { name: "Billing" }));
  const select = page.getByRole("combobox", { name: "Organization" });
  assert.equal(await select.locator("option:checked").textContent(), name, "the new organization is selected");
  const id = await page.getByText(UUID).textContent();
  assert.match(id ?? "", UUID, "the page shows the organization's id");
  return id!;
}

async function openTab(page: Page, name: "Overview" | "Plans" | "Credits" | "History"): Promise<void> {
  await page.getByRole("tab", { name }).click();
  await shows(page.getByRole("tab", { name, selected: true }));
}

/** Pays on the emulator's hosted Checkout page with Stripe's always-succeeding test card. */
async function payOnCheckoutPage(page: Page, submitLabel: string): Promise<void> {
  await page.waitForURL((url) => url.href.startsWith(`${suite.stack.stripeApiBase}/checkout/`));
  await page.getByLabel("Card number").fill("4242 4242 4242 4242");
  await page.getByRole("button", { name: submitLabel }).click();
  await page.waitForURL((url) => url.href.startsWith(suite.stack.appUrl));
}

describe("a member's billing journey in the browser", () => {
  const owner = { email: `owner-${randomUUID().slice(0, 8)}@example.test`, page: undefined as unknown as Page };
  let organizationId = "";

  it("signs up, creates an organization and sees its billing as the owner, across a reload", async () => {
    owner.page = (await newPage()).page;
    const { page } = owner;
    await signUp(page, owner.email);
    organizationId = await createOrganization(page, "Acme Robotics");
    await shows(page.getByText("Your role: owner"));
    await shows(page.getByText(/^No subscription yet/));
    await shows(page.getByRole("link", { name: "Choose a plan" }));
    await shows(page.getByText("Balance: 0 credits"));

    // The session is kept across a reload, and so is the selected organization.
    await page.reload();
    await shows(page.getByRole("heading", { name: "Billing" }));
    await shows(page.getByText(organizationId));
    await shows(page.getByText(owner.email));
  });

  it("subscribes to Starter on the emulator's Checkout page and sees the trial and its credits", async () => {
    const { page } = owner;
    await openTab(page, "Plans");
    await page.getByRole("button", { name: "Choose Starter" }).click();
    await shows(page.getByRole("heading", { name: "Subscribe" }));
    await shows(page.getByText("Includes a 14-day free trial"));
    await payOnCheckoutPage(page, "Start trial");

    // Back on the dashboard: the return is announced, then confirmed once the webhook has run.
    await shows(page.getByRole("status").filter({ hasText: /Payment (received, credits arriving|applied)\./ }));
    await shows(page.getByText("Payment applied."), WEBHOOK_TIMEOUT_MS);
    assert.equal(new URL(page.url()).search, "", "the return parameters leave the address bar");

    // Starter has a 14-day trial, so trialing is its true status; the trial grants the plan's trial credits.
    await shows(page.getByText("Starter (monthly)"));
    await shows(page.getByRole("definition").filter({ hasText: /^trialing$/ }));
    await shows(page.getByText("Trial ends"));
    await shows(page.getByText("Current period ends"));
    await shows(page.getByText("Balance: 500 credits"));
    const balance = page.getByRole("region", { name: "Credit balance" });
    await shows(balance.getByRole("definition").filter({ hasText: /^500 credits on / }));
    await page.getByRole("button", { name: "Close" }).click();
    await page.getByText("Payment applied.").waitFor({ state: "hidden" });
  });

  it("shows credits consumed through the API in the balance and the usage chart without a reload", async () => {
    const { page } = owner;
    await shows(page.getByText("No credits used in the last 30 days."));
    const consumed = await billingApi(suite.stack, await accessToken(page), "POST", "/credits/consume", {
      organization_id: organizationId,
      event_key: "ai_inference",
      quantity: 4,
      idempotency_key: `e2e-${randomUUID()}`,
    });
    assert.equal(consumed.status, 200, JSON.stringify(consumed.body));
    assert.deepEqual(consumed.body.credits_consumed, 100);

    await shows(page.getByText("Balance: 400 credits"), LIVE_REFRESH_TIMEOUT_MS);
    await shows(page.getByRole("img", { name: "Credits used per day, 100 in total" }), LIVE_REFRESH_TIMEOUT_MS);
    await shows(page.getByRole("list", { name: "Credits by event, last 30 days" }).getByRole("listitem").filter({ hasText: /^AI inference 100$/ }));
    await suite.screenshot(page, "overview");

    // Alerts (here the trial's start) can be dismissed; focus stays in the Alerts section.
    const dismiss = page.getByRole("button", { name: /^Dismiss alert: / }).first();
    const label = await dismiss.getAttribute("aria-label");
    await dismiss.click();
    await page.getByRole("button", { name: label! }).waitFor({ state: "detached" });
    assert.equal(await page.evaluate(() => document.activeElement?.textContent), "Alerts", "focus moves to the Alerts heading");
  });

  it("buys a credit pack through Checkout and sees the purchased credits and the ledger", async () => {
    const { page } = owner;
    await openTab(page, "Credits");
    await page.getByRole("button", { name: "Buy 1,000 credits" }).click();
    await shows(page.getByRole("heading", { name: "Pay" }));
    await payOnCheckoutPage(page, "Pay");
    await shows(page.getByText("Payment applied."), WEBHOOK_TIMEOUT_MS);
    await shows(page.getByText("Balance: 1,400 credits"));
    await page.getByRole("button", { name: "Close" }).click();

    await openTab(page, "Credits");
    const balance = page.getByRole("region", { name: "Balance" });
    await shows(balance.getByRole("definition").filter({ hasText: /^1,000 credits$/ }));
    const ledger = page.getByRole("table", { name: "Credit transactions, newest first" });
    await shows(ledger.getByRole("cell", { name: "+1,000" }).first());
    await shows(ledger.getByRole("cell", { name: "-100" }));

    // Filtered by type, only the consumption is left.
    await page.getByLabel("Type").selectOption("consumption");
    await ledger.getByRole("cell", { name: "+1,000" }).first().waitFor({ state: "hidden" });
    await shows(ledger.getByRole("cell", { name: "-100" }));
    assert.equal(await ledger.getByRole("row").count(), 3, "a header row, the day's heading and the one consumption");
    await page.getByLabel("Type").selectOption("");
    await shows(ledger.getByRole("cell", { name: "+1,000" }).first());

    // Owners set the low-balance threshold.
    await page.getByLabel("Alert me when the balance falls below (credits)").fill("500");
    await page.getByRole("button", { name: "Save threshold" }).click();
    await shows(page.getByRole("status").filter({ hasText: /^Saved\.$/ }));
    await suite.screenshot(page, "credits");
  });

  it("sets a monthly spend limit, sees a reservation held and counted against it, and a consumption past it refused", async () => {
    const { page } = owner;
    const limit = page.getByRole("region", { name: "Monthly spend limit" });
    // The 100 credits consumed above are this month's consumption so far; no limit yet.
    await shows(limit.getByText("No monthly limit. 100 credits used this month."));
    await limit.getByLabel("Monthly spend limit (credits)").fill("300");
    await limit.getByRole("button", { name: "Save limit" }).click();
    await shows(limit.getByRole("status").filter({ hasText: /^Saved\.$/ }));
    const meter = limit.getByRole("meter", { name: "Used this month" });
    await shows(meter);
    assert.deepEqual([await meter.getAttribute("value"), await meter.getAttribute("max")], ["100", "300"]);

    // A service reserves 100 credits for a request still running: held, and counted against the limit.
    const token = await accessToken(page);
    const reserved = await billingApi(suite.stack, token, "POST", "/credits/reserve", {
      organization_id: organizationId,
      event_key: "ai_inference",
      quantity: 4,
    });
    assert.equal(reserved.status, 200, JSON.stringify(reserved.body));
    await shows(limit.getByText(/^200 credits of 300 credits used this month \(100 credits of it reserved\); 100 credits left/), LIVE_REFRESH_TIMEOUT_MS);
    const balance = page.getByRole("region", { name: "Balance" });
    await shows(balance.getByText("Balance: 1,300 credits"), LIVE_REFRESH_TIMEOUT_MS);
    await shows(balance.locator("dt", { hasText: /^Reserved$/ }).locator("xpath=following-sibling::dd[1]").filter({ hasText: /^100 credits$/ }));
    await suite.screenshot(page, "credits-spend-limit");

    // Past the limit, consumption is refused with 429 and nothing is spent.
    const refused = await billingApi(suite.stack, token, "POST", "/credits/consume", {
      organization_id: organizationId,
      event_key: "ai_inference",
      quantity: 5,
    });
    assert.equal(refused.status, 429, JSON.stringify(refused.body));
    assert.equal((refused.body.error as { code?: string } | undefined)?.code, "spend_limit_reached");

    // The service's request failed after all: it releases the reservation, and the credits are spendable again.
    const released = await billingApi(suite.stack, token, "POST", `/credits/reservations/${String(reserved.body.reservation_id)}/release`, {});
    assert.equal(released.status, 200, JSON.stringify(released.body));
    await shows(balance.getByText("Balance: 1,400 credits"), LIVE_REFRESH_TIMEOUT_MS);
    await limit.getByRole("button", { name: "Remove limit" }).click();
    await shows(limit.getByText("No monthly limit. 100 credits used this month."));
  });

  it("shows the card Checkout saved and turns auto top-up on", async () => {
    const { page } = owner;
    await openTab(page, "Credits");
    const card = page.getByRole("region", { name: "Card on file" });
    await shows(card.getByText(/^Visa ending in 4242, expires \d{2}\/\d{4}$/));
    await shows(card.getByRole("button", { name: "Change card" }));

    const autoTopUp = page.getByRole("region", { name: "Auto top-up" });
    await shows(autoTopUp.getByText("Auto top-up is off."));
    await autoTopUp.getByLabel("Pack to buy").selectOption("credits_1000");
    await autoTopUp.getByLabel("When the balance falls below (credits)").fill("300");
    await autoTopUp.getByLabel("At most this many top-ups a month").fill("2");
    await autoTopUp.getByRole("button", { name: "Turn on auto top-up" }).click();
    await shows(autoTopUp.getByText("Buys 1,000 credits ($10.00) when the balance falls below 300 credits, at most 2 times a month."));
    await shows(autoTopUp.getByRole("button", { name: "Turn off" }));
    await suite.screenshot(page, "auto-top-up");
  });

  it("lists both payments in History, the subscription's with its invoice link", async () => {
    const { page } = owner;
    await openTab(page, "History");
    const table = page.getByRole("table", { name: "Payments and invoices, newest first" });
    await shows(table.getByRole("cell", { name: "$10.00" }));
    await shows(table.getByRole("cell", { name: "$0.00" }));
    assert.equal(await table.getByRole("row").count(), 3, "a header row and the two payments");
    // The subscription's invoice links to Stripe's hosted invoice. (The webhook stores no
    // receipt link for either payment yet, so none is asserted.)
    const invoice = table.getByRole("link", { name: /^Invoice for / });
    assert.match((await invoice.getAttribute("href")) ?? "", new RegExp(`^${suite.stack.stripeApiBase}/invoices/in_`));
    await suite.screenshot(page, "history");
  });

  it("cancels at period end in the customer portal and sees the cancellation scheduled", async () => {
    const { page } = owner;
    await openTab(page, "Plans");
    await shows(page.getByText("Current plan"));
    await page.getByRole("radio", { name: "Annual" }).check();
    await shows(page.getByText("$190.00"));
    await page.getByRole("radio", { name: "Monthly" }).check();
    await shows(page.getByText("$19.00"));
    await suite.screenshot(page, "plans");
    await page.getByRole("button", { name: "Manage subscription" }).click();
    await page.waitForURL((url) => url.href.startsWith(`${suite.stack.stripeApiBase}/portal/`));
    await page.getByRole("button", { name: "Cancel at period end" }).click();
    await shows(page.getByText("Subscription will cancel at the end of the period."));
    await page.getByRole("link", { name: "Return" }).click();
    await page.waitForURL((url) => url.href.startsWith(suite.stack.appUrl));

    await shows(page.getByText("Back from the customer portal."));
    await shows(page.getByRole("definition").filter({ hasText: /^trialing · cancels / }), WEBHOOK_TIMEOUT_MS);
  });

  it("fits a phone's width", async () => {
    const { page } = owner;
    await page.setViewportSize(PHONE);
    await page.getByRole("button", { name: "Close" }).click();
    await openTab(page, "Overview");
    await shows(page.getByText("Balance: 1,400 credits"));
    const overflow = await sidewaysOverflow(page);
    assert.ok(overflow <= 0, `the page does not scroll sideways at ${PHONE.width}px (overflow ${overflow}px)`);
    await suite.screenshot(page, "overview-phone");
    await page.setViewportSize(DESKTOP);
  });

  it("shows a member of another organization none of it", async () => {
    const { page } = await newPage();
    await signUp(page, `stranger-${randomUUID().slice(0, 8)}@example.test`);
    const strangerOrganization = await createOrganization(page, "Other Org");
    const options = await page.getByRole("combobox", { name: "Organization" }).locator("option").allTextContents();
    assert.deepEqual(options, ["Other Org"], "only their own organization is offered");
    await shows(page.getByText(/^No subscription yet/));
    await shows(page.getByRole("link", { name: "Choose a plan" }));
    await shows(page.getByText("Balance: 0 credits"));
    await openTab(page, "History");
    await shows(page.getByText("No payments yet."));

    // Pointing the dashboard at Acme's id falls back to their own organization.
    await page.evaluate((id) => window.localStorage.setItem("billing.selectedOrganization", id), organizationId);
    await page.reload();
    await shows(page.getByText(strangerOrganization));
    assert.equal(await page.getByText(organizationId).count(), 0, "Acme's id is nowhere on the page");

    // And the API refuses them Acme's credits and its history.
    const token = await accessToken(page);
    const consumed = await billingApi(suite.stack, token, "POST", "/credits/consume", {
      organization_id: organizationId,
      event_key: "api_call_basic",
    });
    assert.equal(consumed.status, 403, JSON.stringify(consumed.body));
    const history = await billingApi(suite.stack, token, "GET", `/history/${organizationId}`);
    assert.equal(history.status, 403, JSON.stringify(history.body));
    assert.equal(history.body.history, undefined, "and no rows with the refusal");
  });

  it("signs out", async () => {
    const { page } = owner;
    await page.getByRole("button", { name: "Sign out" }).click();
    await shows(page.getByRole("heading", { name: "Sign in" }));
    await page.reload();
    await shows(page.getByRole("heading", { name: "Sign in" }));
  });
});
