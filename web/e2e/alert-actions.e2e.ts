/**
 * Alerts you can act on, in a real browser against the stack `npm test` starts: a Starter
 * trial paid with Stripe's test card 4000 0000 0000 0341 (it pays at Checkout, then every
 * off-session charge is declined), run to the trial's end on the emulator's test clock, leaves
 * the subscription past due. The banner at the top opens the customer portal; a new card there
 * pays the open invoice, and the banner goes by itself. A balance below the threshold, with a
 * card on file and auto top-up off, offers auto top-up and leads to the setting. Each at 390 px.
 *
 * Screenshots (alert-past-due, alert-past-due-phone, alert-low-balance-phone) go to SCREENSHOTS_DIR.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import type { Locator, Page } from "playwright-core";
import { accessToken, billingApi, browserSuite, DESKTOP, PHONE, shows, sidewaysOverflow } from "./support";

/** Webhooks are applied in the background after Stripe answers; give them room. */
const WEBHOOK_TIMEOUT_MS = 45_000;
const DECLINES_OFF_SESSION = "4000 0000 0000 0341";
const PAYS = "4242 4242 4242 4242";

const suite = browserSuite();
let page: Page;

// The tests share one page, so the file's screenshots are of it.
const screenshot = (name: string) => suite.screenshot(page, name);

/** A call to the Stripe emulator's test hooks (`/_emulator/...`), as a test clock or a card would. */
async function emulator(route: string, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const response = await fetch(`${suite.stack.stripeApiBase}/_emulator/${route}`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  assert.ok(response.ok, `/_emulator/${route}: ${response.status} ${text}`);
  return JSON.parse(text) as Record<string, unknown>;
}

/** A PostgREST call as the signed-in owner (RLS applies, as for the dashboard). */
async function rest(method: "GET" | "POST", route: string, body?: unknown): Promise<unknown> {
  const response = await fetch(`${suite.stack.supabaseUrl}/rest/v1/${route}`, {
    method,
    headers: {
      apikey: suite.stack.anonKey,
      authorization: `Bearer ${await accessToken(page)}`,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  assert.ok(response.ok, `${route}: ${response.status} ${text}`);
  return text === "" ? null : JSON.parse(text);
}

/** Polls `read` until `done` holds (a webhook applied in the background), or fails saying what it last saw. */
async function eventually<T>(what: string, read: () => Promise<T>, done: (value: T) => boolean): Promise<T> {
  const deadline = Date.now() + WEBHOOK_TIMEOUT_MS;
  let last: T = await read();
  while (!done(last)) {
    assert.ok(Date.now() < deadline, `${what}: still ${JSON.stringify(last)}`);
    await new Promise((resolve) => setTimeout(resolve, 500));
    last = await read();
  }
  return last;
}

type SubscriptionRow = { status: string; stripe_subscription_id: string | null; trial_end: string | null };
async function subscriptionRow(organizationId: string): Promise<SubscriptionRow | undefined> {
  const rows = (await rest("GET", `organization_subscriptions?organization_id=eq.${organizationId}&select=status,stripe_subscription_id,trial_end`)) as SubscriptionRow[];
  return rows[0];
}

/** At 390 px the banner and each of its buttons lie inside the viewport, and nothing scrolls sideways. */
async function fitsPhone(banner: Locator): Promise<void> {
  await page.setViewportSize(PHONE);
  const overflow = await sidewaysOverflow(page);
  assert.ok(overflow <= 0, `the page does not scroll sideways at ${PHONE.width}px (overflow ${overflow}px)`);
  for (const element of [banner, ...(await banner.getByRole("button").all())]) {
    const box = await element.boundingBox();
    assert.ok(box && box.x >= 0 && box.x + box.width <= PHONE.width, `inside ${PHONE.width}px: ${JSON.stringify(box)}`);
  }
}

describe("alerts you can act on", () => {
  let organizationId = "";

  it("sets up an owner on a Starter trial paid with a card that declines every later charge", async () => {
    const context = await suite.browser.newContext({ viewport: DESKTOP, locale: "en-US", timezoneId: "UTC" });
    context.setDefaultTimeout(15_000);
    page = await context.newPage();
    await page.goto(suite.stack.appUrl);
    await shows(page.getByRole("heading", { name: "Sign in" }), 60_000);
    await page.getByRole("button", { name: "Create one" }).click();
    await page.getByLabel("Email").fill(`alerts-${randomUUID().slice(0, 8)}@example.test`);
    await page.getByLabel("Password").fill("a-long-e2e-password-1");
    await page.getByRole("button", { name: "Create an account" }).click();
    await page.getByLabel("New organization name").fill("Past Due Inc");
    await page.getByRole("button", { name: "Create organization" }).click();
    await shows(page.getByRole("heading", { name: "Billing" }));
    organizationId = (await page.getByText(/^[0-9a-f]{8}-[0-9a-f-]{27}$/).textContent()) ?? "";

    const checkout = await billingApi(suite.stack, await accessToken(page), "POST", "/subscription/checkout", {
      organization_id: organizationId,
      plan_code: "starter",
      interval: "month",
    });
    assert.equal(checkout.status, 200, JSON.stringify(checkout.body));
    const sessionId = new URL(String(checkout.body.url)).pathname.split("/").pop()!;
    await emulator(`checkout/${sessionId}/pay`, { card_number: DECLINES_OFF_SESSION.replaceAll(" ", "") });
    await eventually("the trial", () => subscriptionRow(organizationId), (row) => row?.status === "trialing");
  });

  it("a renewal that fails while the page is open puts a banner at the top whose button opens the portal", async () => {
    const row = (await subscriptionRow(organizationId))!;
    assert.ok(row.trial_end && row.stripe_subscription_id, JSON.stringify(row));
    // The test clock to just past the trial's end: its first invoice is charged off-session and declined.
    await emulator("advance", { subscription: row.stripe_subscription_id, to: Math.floor(Date.parse(row.trial_end) / 1000) + 60 });
    await eventually("past due", () => subscriptionRow(organizationId), (r) => r?.status === "past_due");

    const banners = page.getByRole("list", { name: "Needs action" });
    const pastDue = banners.getByRole("listitem").filter({ hasText: "Your last payment failed." });
    // Without a reload: the banners re-read the subscription while the page is open.
    await shows(pastDue, 30_000);
    await shows(pastDue.getByText(/Update the payment method by .+ to keep the subscription\./));
    // At the top: above the tabs and above everything in them.
    const bannerBox = (await banners.boundingBox())!;
    const tabsBox = (await page.getByRole("tablist", { name: "Billing sections" }).boundingBox())!;
    assert.ok(bannerBox.y + bannerBox.height <= tabsBox.y, "the banner comes before the tabs");
    await screenshot("alert-past-due");
    await fitsPhone(pastDue);
    await screenshot("alert-past-due-phone");
    await page.setViewportSize(DESKTOP);

    await pastDue.getByRole("button", { name: "Update payment method" }).click();
    await page.waitForURL((url) => url.href.startsWith(`${suite.stack.stripeApiBase}/portal/`));
    await shows(page.getByText("past_due"));
  });

  it("a new card in the portal pays the open invoice, and the banner goes by itself", async () => {
    await page.getByLabel("New card number").fill(PAYS);
    await page.getByRole("button", { name: "Replace card" }).click();
    await shows(page.getByText("Card replaced."));
    await page.getByRole("link", { name: "Return" }).click();
    await page.waitForURL((url) => url.href.startsWith(suite.stack.appUrl));
    await shows(page.getByText("Back from the customer portal."));

    // The retried invoice's webhooks make the subscription active; the page notices without a reload.
    await page.getByText("Your last payment failed.").waitFor({ state: "detached", timeout: WEBHOOK_TIMEOUT_MS });
    assert.equal((await subscriptionRow(organizationId))?.status, "active");
    assert.equal(await page.getByRole("list", { name: "Needs action" }).count(), 0, "no banner is left");
  });

  it("a low balance with a card on file offers auto top-up, which leads to the setting", async () => {
    const balance = (await rest("POST", "rpc/get_credit_balance", { p_organization_id: organizationId })) as { total: number };
    await rest("POST", "rpc/set_low_balance_threshold", { p_organization_id: organizationId, p_threshold: balance.total + 1000 });
    await page.reload();

    const lowBalance = page.getByRole("list", { name: "Needs action" }).getByRole("listitem").filter({ hasText: "Your credit balance is low." });
    await shows(lowBalance);
    // The figure in the banner is the balance now, the one the balance card shows.
    const now = new Intl.NumberFormat("en-US").format(balance.total);
    await shows(lowBalance.getByText(`The balance is ${now} credits, below your alert threshold of`, { exact: false }));
    await shows(page.getByText(`Balance: ${now} credits`));
    await fitsPhone(lowBalance);
    await screenshot("alert-low-balance-phone");

    await lowBalance.getByRole("button", { name: "Turn on auto top-up" }).click();
    await shows(page.getByRole("tab", { name: "Credits", selected: true }));
    const heading = page.getByRole("heading", { name: "Auto top-up" });
    await page.waitForFunction(() => document.activeElement?.id === "cr-auto-top-up");
    assert.ok(await heading.isVisible());
    await shows(page.getByRole("form", { name: "Auto top-up" }));
    const box = (await heading.boundingBox())!;
    // Scrolled to the top of the viewport (to within a fraction of a pixel) or at least onto it.
    assert.ok(box.y > -1 && box.y + box.height < PHONE.height, `the setting is scrolled into view (heading at ${box.y}px)`);
    await page.setViewportSize(DESKTOP);
  });
});
