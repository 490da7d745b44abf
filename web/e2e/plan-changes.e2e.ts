/**
 * Plan changes in the app, in a real browser against the stack `npm test` starts: an owner
 * subscribes through the emulator's Checkout, upgrades with the proration previewed and
 * confirmed (the balance gains the previewed credits), schedules a downgrade and keeps the
 * current plan, cancels in the portal and resumes in the app, and the Overview shows the next
 * charge and the card. At 390 px the Plans tab with the confirmation open fits the screen,
 * and the plan cards' buttons line up at both widths.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import type { Locator, Page } from "playwright-core";
import { accessToken, billingApi, browserSuite, DESKTOP, PHONE, shows, sidewaysOverflow } from "./support";

/** Webhooks are applied in the background after Stripe answers; give them room. */
const WEBHOOK_TIMEOUT_MS = 30_000;
/** The balance refreshes every 10 s while visible (LIVE_REFRESH_MS). */
const LIVE_REFRESH_TIMEOUT_MS = 30_000;

const suite = browserSuite();
let page: Page;

// The tests share one page, so the file's screenshots are of it.
const screenshot = (name: string) => suite.screenshot(page, name);

async function openTab(name: "Overview" | "Plans" | "Credits" | "History"): Promise<void> {
  await page.getByRole("tab", { name }).click();
  await shows(page.getByRole("tab", { name, selected: true }));
}

/** The spendable balance the Overview shows ("Balance: 1,234 credits"). */
async function balance(): Promise<number> {
  const text = await page.getByText(/^Balance: [\d,]+ credits?$/).textContent();
  return Number((text ?? "").replace(/[^\d]/g, ""));
}

/** A figure of money as the page prints it ("$30.00") turned back into minor units. */
function cents(text: string): number {
  return Math.round(Number(text.replace(/[^\d.]/g, "")) * 100);
}

/** The organization's Stripe subscription and its trial's end, read as the member (RLS) from our table. */
async function subscriptionRow(organizationId: string): Promise<{ stripe_subscription_id: string; trial_end: string | null }> {
  const response = await fetch(
    `${suite.stack.supabaseUrl}/rest/v1/organization_subscriptions?select=stripe_subscription_id,trial_end&organization_id=eq.${organizationId}&order=created_at.desc&limit=1`,
    { headers: { apikey: suite.stack.anonKey, authorization: `Bearer ${await accessToken(page)}` } },
  );
  const rows = (await response.json()) as { stripe_subscription_id: string; trial_end: string | null }[];
  assert.ok(rows[0]?.stripe_subscription_id, "the subscription is in our table");
  return rows[0];
}

/** Each plan card's button: its box and its card's box. */
async function planButtons(): Promise<{ button: { y: number; height: number; bottom: number }; cardBottom: number }[]> {
  const cards = page.locator("ul.plans > li");
  const result = [];
  for (const card of await cards.all()) {
    const button = card.locator(".plan-action .button");
    if ((await button.count()) === 0) continue;
    const b = (await button.boundingBox())!;
    const c = (await card.boundingBox())!;
    result.push({ button: { y: b.y, height: b.height, bottom: b.y + b.height }, cardBottom: c.y + c.height });
  }
  return result;
}

/** The dialog's Confirm button, whatever the preview's kind. */
function confirmButton(dialog: Locator): Locator {
  return dialog.getByRole("button", { name: /^(Pay .* and switch|Schedule the change)$/ });
}

describe("plan changes in the browser", () => {
  let organizationId = "";

  it("subscribes to Starter through Checkout and runs past the trial to a paid period", async () => {
    const context = await suite.browser.newContext({ viewport: DESKTOP, locale: "en-US", timezoneId: "UTC" });
    context.setDefaultTimeout(15_000);
    page = await context.newPage();
    await page.goto(suite.stack.appUrl);
    await shows(page.getByRole("heading", { name: "Sign in" }), 60_000);
    await page.getByRole("button", { name: "Create one" }).click();
    await page.getByLabel("Email").fill(`plans-${randomUUID().slice(0, 8)}@example.test`);
    await page.getByLabel("Password").fill("a-long-e2e-password-1");
    await page.getByRole("button", { name: "Create an account" }).click();
    await page.getByLabel("New organization name").fill("Plan Changers");
    await page.getByRole("button", { name: "Create organization" }).click();
    await shows(page.getByRole("heading", { name: "Billing" }));
    organizationId = (await page.getByText(/^[0-9a-f]{8}-[0-9a-f-]{27}$/).textContent()) ?? "";

    // The Overview's empty subscription card leads to the Plans tab.
    await page.getByRole("link", { name: "Choose a plan" }).click();
    await shows(page.getByRole("tab", { name: "Plans", selected: true }));
    await page.getByRole("button", { name: "Choose Starter" }).click();
    await page.waitForURL((url) => url.href.startsWith(`${suite.stack.stripeApiBase}/checkout/`));
    await page.getByLabel("Card number").fill("4242 4242 4242 4242");
    await page.getByRole("button", { name: "Start trial" }).click();
    await page.waitForURL((url) => url.href.startsWith(suite.stack.appUrl));
    await shows(page.getByText("Payment applied."), WEBHOOK_TIMEOUT_MS);
    await page.getByRole("button", { name: "Close" }).click();

    // A trial changes plan without proration; the test clock runs to the first paid period.
    const row = await subscriptionRow(organizationId);
    const advanced = await fetch(`${suite.stack.stripeApiBase}/_emulator/advance`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({
        subscription: row.stripe_subscription_id,
        ...(row.trial_end ? { to: Math.floor(Date.parse(row.trial_end) / 1000) } : {}),
      }),
    });
    assert.equal(advanced.status, 200, await advanced.text());
    await page.reload();
    await shows(page.getByRole("definition").filter({ hasText: /^active$/ }), WEBHOOK_TIMEOUT_MS);
    // The trial's 500 credits (expiring with the trial in real time) and the first paid month's 1,000.
    await shows(page.getByText("Balance: 1,500 credits"), LIVE_REFRESH_TIMEOUT_MS);
  });

  it("upgrades to Professional with the proration previewed, and the balance gains the previewed credits", async () => {
    const before = await balance();
    await openTab("Plans");
    await page.getByRole("button", { name: "Switch to Professional (monthly)" }).click();
    const dialog = page.getByRole("dialog", { name: "Switch to Professional (monthly)" });
    await shows(dialog.getByText("Charged now"));
    const charged = cents((await dialog.locator("dt", { hasText: /^Charged now$/ }).locator("xpath=following-sibling::dd[1]").textContent()) ?? "");
    const credits = Number(
      ((await dialog.locator("dt", { hasText: /^Credits added now$/ }).locator("xpath=following-sibling::dd[1]").textContent()) ?? "").replace(/[^\d]/g, ""),
    );
    assert.ok(charged > 0, "an upgrade mid-period charges the difference now");
    assert.ok(credits > 0, "and adds the prorated difference of the allowances");
    await shows(dialog.getByText("Next charge"));
    await screenshot("plans-upgrade-preview");
    await confirmButton(dialog).click();
    await shows(page.getByText(/^You are now on Professional \(monthly\)\./), WEBHOOK_TIMEOUT_MS);
    await shows(page.getByRole("listitem").filter({ hasText: "Current plan" }).getByRole("heading", { name: /^Professional/ }));

    await openTab("Overview");
    await shows(page.getByText(`Balance: ${(before + credits).toLocaleString("en-US")} credits`), LIVE_REFRESH_TIMEOUT_MS);
    await shows(page.getByText("Professional (monthly)"));
  });

  it("schedules a downgrade for the period's end with nothing charged, then keeps the current plan", async () => {
    await openTab("Plans");
    await page.getByRole("button", { name: "Switch to Starter (monthly)" }).click();
    const dialog = page.getByRole("dialog", { name: "Switch to Starter (monthly)" });
    await shows(dialog.getByText(/^Changes to Starter \(monthly\) on .+, nothing charged now, this period's credits are kept\.$/));
    await confirmButton(dialog).click();
    await shows(page.getByText(/^Your plan changes to Starter \(monthly\) on .+\. Nothing was charged\.$/), WEBHOOK_TIMEOUT_MS);
    const current = page.getByRole("listitem").filter({ has: page.getByText("Current plan", { exact: true }) });
    await shows(current.getByText(/^Changes to Starter \(monthly\) on /));

    await current.getByRole("button", { name: "Keep current plan" }).click();
    await shows(page.getByText("The scheduled change is cancelled: you keep your current plan."), WEBHOOK_TIMEOUT_MS);
    await current.getByText(/^Changes to Starter/).waitFor({ state: "hidden" });
  });

  it("the plan cards' buttons sit on one row with equal heights, and at 390 px the Plans tab with the confirmation open fits", async () => {
    const buttons = await planButtons();
    assert.ok(buttons.length >= 2, "the other plans offer a switch");
    assert.equal(new Set(buttons.map((b) => Math.round(b.button.y))).size, 1, `one row at ${DESKTOP.width}px: ${JSON.stringify(buttons)}`);
    assert.equal(new Set(buttons.map((b) => Math.round(b.button.height))).size, 1, "equal heights");

    await page.setViewportSize(PHONE);
    const phone = await planButtons();
    assert.equal(new Set(phone.map((b) => Math.round(b.button.height))).size, 1, `equal heights at ${PHONE.width}px`);
    // One card per row: each button at the bottom of its card (the card's padding below it).
    const gaps = phone.map((b) => Math.round(b.cardBottom - b.button.bottom));
    assert.equal(new Set(gaps).size, 1, `each button at its card's bottom: ${JSON.stringify(gaps)}`);

    await page.getByRole("button", { name: "Switch to Enterprise (monthly)" }).click();
    const dialog = page.getByRole("dialog", { name: "Switch to Enterprise (monthly)" });
    await shows(confirmButton(dialog));
    const overflow = await sidewaysOverflow(page);
    assert.ok(overflow <= 0, `no sideways scroll at ${PHONE.width}px with the dialog open (overflow ${overflow}px)`);
    const box = (await dialog.boundingBox())!;
    assert.ok(box.x >= 0 && box.x + box.width <= PHONE.width, `the dialog fits the screen (${box.x}..${box.x + box.width})`);
    await screenshot("plans-dialog-phone");
    await dialog.getByRole("button", { name: "Cancel" }).click();
    await dialog.waitFor({ state: "hidden" });
    await page.setViewportSize(DESKTOP);
  });

  it("a cancellation made in the portal is resumed in the app", async () => {
    await page.getByRole("button", { name: "Manage subscription" }).click();
    await page.waitForURL((url) => url.href.startsWith(suite.stack.stripeApiBase));
    await page.getByRole("button", { name: "Cancel at period end" }).click();
    await shows(page.getByText("Subscription will cancel at the end of the period."));
    await page.getByRole("link", { name: "Return" }).click();
    await page.waitForURL((url) => url.href.startsWith(suite.stack.appUrl));
    await shows(page.getByRole("definition").filter({ hasText: /· cancels / }), WEBHOOK_TIMEOUT_MS);

    await openTab("Plans");
    await shows(page.getByText(/^Ends on .+: it does not renew\.$/));
    assert.equal(await page.getByRole("button", { name: /^Switch to/ }).count(), 0, "no switching while the subscription ends");
    await page.getByRole("button", { name: "Resume subscription" }).click();
    await shows(page.getByText("Your subscription is resumed: it renews as usual."), WEBHOOK_TIMEOUT_MS);
    await shows(page.getByRole("button", { name: "Switch to Starter (monthly)" }));
  });

  it("the Overview shows the next charge and the card on file, with Update card", async () => {
    await openTab("Overview");
    const subscription = page.getByRole("region", { name: "Subscription" });
    const nextCharge = subscription.locator("dt", { hasText: /^Next charge$/ }).locator("xpath=following-sibling::dd[1]");
    await shows(nextCharge.filter({ hasText: /^\$49\.00 on / }));
    await shows(subscription.getByText(/^Visa ending in 4242, expires \d{2}\/\d{4}$/));
    await shows(subscription.getByRole("button", { name: "Update card" }));

    // Credits used through the API, as a service would: the forecast reads the new rate.
    const consumed = await billingApi(suite.stack, await accessToken(page), "POST", "/credits/consume", {
      organization_id: organizationId,
      event_key: "ai_inference",
      quantity: 40,
      idempotency_key: `e2e-${randomUUID()}`,
    });
    assert.equal(consumed.status, 200, JSON.stringify(consumed.body));
    const forecast = page.getByRole("region", { name: "How long the balance lasts" });
    await shows(forecast.getByText(/^About \d+ days, until /), LIVE_REFRESH_TIMEOUT_MS);
    await shows(forecast.getByText("At the last 7 days' average of 143 credits a day."));
    // The 1,000 took the trial's 500 (soonest expiry) and 500 of this period's credits; the
    // look-ahead cards follow the consumption as the balance does, and agree with it.
    const allowance = page.getByRole("region", { name: "Subscription credits this period" });
    await shows(allowance.locator(".big-number").filter({ hasText: /^500 of / }), LIVE_REFRESH_TIMEOUT_MS);
    const balanceExpiry = await page
      .getByRole("region", { name: "Credit balance" })
      .locator("dt", { hasText: /^Expires next$/ })
      .locator("xpath=following-sibling::dd[1]")
      .textContent();
    const [, amount, date] = /^([\d,]+ credits) on (.+)$/.exec(balanceExpiry ?? "") ?? [];
    assert.ok(amount && date, `the balance names what expires next (${balanceExpiry})`);
    await shows(page.getByRole("region", { name: "What expires next" }).getByText(`${amount} expire on ${date}, at the end of their billing period.`));
    await screenshot("overview-look-ahead");
  });
});
