/**
 * The dashboard's foundations in a real browser, against the stack `npm test` starts: every tab
 * fits 390 px and 1280 px with a 120-character organization name and 60 ledger rows, the dark
 * theme follows the system, Back and Forward move between tabs, a low balance is a banner with
 * its action, and the API failing mid-session keeps the figures under one banner.
 *
 * Screenshots (overview-dark, credits-phone, history-phone, outage) go to SCREENSHOTS_DIR.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { describe, it } from "node:test";
import type { Page } from "playwright-core";
import { browserSuite, callRpc, DESKTOP, PHONE, serviceRoleKeyUnderTest, shows, sidewaysOverflow } from "./support";

const TABS = ["Overview", "Plans", "Credits", "History"] as const;
// 120 characters, no spaces to break at: the worst case for a top bar.
const LONG_NAME = `Extremely-Long-Organization-Name-${"x".repeat(120)}`.slice(0, 120);
const LEDGER_ROWS = 60;

const suite = browserSuite();
let page: Page;

// The tests share one page, so the file's screenshots are of it.
const screenshot = (name: string) => suite.screenshot(page, name);

// Reads `suite.stack` when a test calls it, after browserSuite()'s before() has run.
const rpc = (token: string, fn: string, args: Record<string, unknown>) => callRpc(suite.stack, token, fn, args);

async function openTab(name: (typeof TABS)[number]): Promise<void> {
  await page.getByRole("tab", { name }).click();
  await shows(page.getByRole("tab", { name, selected: true }));
}


describe("the dashboard's layout, themes, tabs and outages", () => {
  let organizationId = "";

  it("sets up an organization with a 120-character name, 60 ledger rows and a balance below its threshold", async () => {
    const context = await suite.browser.newContext({ viewport: DESKTOP, locale: "en-US", timezoneId: "UTC", colorScheme: "light" });
    context.setDefaultTimeout(15_000);
    page = await context.newPage();
    await page.goto(suite.stack.appUrl);
    await shows(page.getByRole("heading", { name: "Sign in" }), 60_000);
    await page.getByRole("button", { name: "Create one" }).click();
    await page.getByLabel("Email").fill(`layout-${randomUUID().slice(0, 8)}@example.test`);
    await page.getByLabel("Password").fill("a-long-e2e-password-1");
    await page.getByRole("button", { name: "Create an account" }).click();
    await page.getByLabel("New organization name").fill(LONG_NAME);
    await page.getByRole("button", { name: "Create organization" }).click();
    await shows(page.getByRole("heading", { name: "Billing" }));
    organizationId = (await page.getByText(/^[0-9a-f]{8}-[0-9a-f-]{27}$/).textContent()) ?? "";

    const serviceKey = serviceRoleKeyUnderTest();
    for (let i = 0; i < LEDGER_ROWS; i += 1) {
      await rpc(serviceKey, "grant_credits", { p_organization_id: organizationId, p_amount: 5, p_source: "purchased", p_reference: `layout-${i}` });
    }
    const token = await page.evaluate(() => {
      const key = Object.keys(window.localStorage).find((k) => k.startsWith("sb-") && k.endsWith("-auth-token"))!;
      return (JSON.parse(window.localStorage.getItem(key)!) as { access_token: string }).access_token;
    });
    await rpc(token, "set_low_balance_threshold", { p_organization_id: organizationId, p_threshold: 500 });
    await page.reload();
    await shows(page.getByText("Balance: 300 credits"));
  });

  it("the long name is cut to fit the top bar, with the full name as the organization picker's title", async () => {
    const picker = page.getByRole("combobox", { name: "Organization" });
    assert.equal(await picker.getAttribute("title"), LONG_NAME);
    const bar = await page.locator(".topbar").boundingBox();
    assert.ok(bar && bar.height < 100, `the top bar stays one row at ${DESKTOP.width}px (${bar?.height}px tall)`);
  });

  it("a low balance is a banner at the top that says the balance now and leads to buying credits", async () => {
    const banners = page.getByRole("list", { name: "Needs action" });
    await shows(banners.getByText("The balance is 300 credits, below your alert threshold of 500 credits."));
    await banners.getByRole("button", { name: "Buy credits" }).click();
    await shows(page.getByRole("tab", { name: "Credits", selected: true }));
    await shows(page.getByRole("heading", { name: "Buy credits" }));
  });

  for (const viewport of [PHONE, DESKTOP]) {
    it(`every tab fits ${viewport.width} px without scrolling sideways`, async () => {
      await page.setViewportSize(viewport);
      for (const tab of TABS) {
        await openTab(tab);
        if (tab === "Credits") await shows(page.getByRole("navigation", { name: "Transaction pages" }).getByText("Page 1 of 3"));
        if (tab === "History") await shows(page.getByText(/No payments yet/));
        if (tab === "Plans") await shows(page.getByRole("heading", { name: "Starter" }));
        const overflow = await sidewaysOverflow(page);
        assert.ok(overflow <= 0, `${tab} does not scroll sideways at ${viewport.width}px (overflow ${overflow}px)`);
        if (viewport === PHONE && tab === "Credits") await screenshot("credits-phone");
      }
      await page.setViewportSize(DESKTOP);
    });
  }

  it("Back and Forward move between the tabs, and the address names the tab", async () => {
    await openTab("Overview");
    await openTab("Credits");
    assert.equal(new URL(page.url()).searchParams.get("tab"), "credits");
    await openTab("History");
    await page.goBack();
    await shows(page.getByRole("tab", { name: "Credits", selected: true }));
    await page.goBack();
    await shows(page.getByRole("tab", { name: "Overview", selected: true }));
    await page.goForward();
    await shows(page.getByRole("tab", { name: "Credits", selected: true }));
    // A reload opens the tab the address names.
    await page.reload();
    await shows(page.getByRole("tab", { name: "Credits", selected: true }));
  });

  it("follows the system's dark preference: the colour tokens change", async () => {
    await openTab("Overview");
    const background = () => page.evaluate(() => getComputedStyle(document.documentElement).getPropertyValue("--color-bg").trim());
    const light = await background();
    await page.emulateMedia({ colorScheme: "dark" });
    const dark = await background();
    assert.notEqual(dark, light, "the background token has another value in the dark theme");
    const bodyColour = await page.evaluate(() => getComputedStyle(document.documentElement).backgroundColor);
    assert.equal(bodyColour, "rgb(3, 7, 18)", "and the page is painted with it");
    await shows(page.getByText("Balance: 300 credits"));
    await screenshot("overview-dark");
    await page.emulateMedia({ colorScheme: "light" });
  });

  it("when the API stops answering mid-session, the figures stay under one banner, and come back by themselves", async () => {
    await openTab("Overview");
    await shows(page.getByText("Balance: 300 credits"));
    await page.route(`${suite.stack.supabaseUrl}/**`, (route) => route.abort("failed"));
    // The next 10 s refresh fails; supabase-js retries for about 7 s before giving up.
    const banner = page.getByRole("alert").filter({ hasText: "The billing service cannot be reached" });
    await shows(banner, 45_000);
    assert.equal(await page.getByRole("alert").count(), 1, "one banner, not one error per card");
    await shows(page.getByText("Balance: 300 credits"));
    assert.ok((await page.getByText(/^Not current: last updated/).count()) >= 1, "the kept figures are marked as not current");
    assert.equal(await page.getByText(/Failed to fetch/).count(), 0, "no raw network error on the page");
    await screenshot("outage");

    await page.unroute(`${suite.stack.supabaseUrl}/**`);
    await banner.waitFor({ state: "detached", timeout: 45_000 });
    assert.equal(await page.getByText(/^Not current/).count(), 0);
  });
});
