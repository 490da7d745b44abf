/**
 * The Credits tab's ledger and spending order in a real browser (Debian's Chromium through
 * playwright-core) against the stack `npm test` starts: 60 identical calls read as one line of
 * the day, the date range filters the rows and survives a reload, the CSV of the range
 * downloads with one row per movement, an owner changes the spending order while a member
 * reads it and is told which owner to ask, and the tab fits 390 px.
 *
 * Screenshots (credits-ledger, credits-ledger-phone) go to SCREENSHOTS_DIR (see support.ts).
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { readFile } from "node:fs/promises";
import { before, describe, it } from "node:test";
import type { Page } from "playwright-core";
import { browserSuite, callRpc, DESKTOP, PHONE, serviceRoleKeyUnderTest, shows, sidewaysOverflow } from "./support";

const PASSWORD = "a-long-e2e-password-1";
const CALLS = 60;

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

async function signedInPage(email: string, url: string): Promise<Page> {
  const context = await suite.browser.newContext({ viewport: DESKTOP, locale: "en-US", timezoneId: "UTC", acceptDownloads: true });
  context.setDefaultTimeout(15_000);
  const page = await context.newPage();
  await page.goto(url);
  await shows(page.getByRole("heading", { name: "Sign in" }), 60_000);
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("Password").fill(PASSWORD);
  await page.getByRole("button", { name: "Sign in" }).click();
  await shows(page.getByRole("heading", { name: "Billing" }), 30_000);
  return page;
}

const todayUtc = () => new Date().toISOString().slice(0, 10);
const dayBefore = (day: string, days: number) => new Date(Date.parse(`${day}T00:00:00Z`) - days * 86_400_000).toISOString().slice(0, 10);

describe("the Credits tab's ledger and spending order in the browser", () => {
  const tag = randomUUID().slice(0, 8);
  const ownerEmail = `ledger-owner-${tag}@example.test`;
  const memberEmail = `ledger-member-${tag}@example.test`;
  let owner: { id: string; token: string };
  let organizationId = "";
  let page: Page;

  it(`sets up an organization with a purchased grant and ${CALLS} premium API calls`, async () => {
    owner = await signUpUser(ownerEmail);
    const member = await signUpUser(memberEmail);
    organizationId = (await rpc(owner.token, "create_organization", { p_name: `Ledger ${tag}` })) as string;
    await rpc(owner.token, "add_organization_member", { p_organization_id: organizationId, p_user_id: member.id, p_role: "member" });
    await rpc(serviceKey, "grant_credits", { p_organization_id: organizationId, p_amount: 1000, p_source: "purchased", p_reference: `ledger-${tag}` });
    for (let i = 0; i < CALLS; i += 1) {
      await rpc(owner.token, "consume_credits", { p_organization_id: organizationId, p_event_key: "api_call_premium" });
    }
    page = await signedInPage(ownerEmail, `${suite.stack.appUrl}/?tab=credits`);
    await shows(page.getByRole("tab", { name: "Credits", selected: true }));
  });

  it(`folds the ${CALLS} calls into one line of the day, in the catalog's words, with each call on expand`, async () => {
    const ledger = page.getByRole("table", { name: "Credit transactions, newest first" });
    const day = ledger.getByRole("rowheader");
    await shows(day.first());
    assert.equal(await day.count(), 1, "one day");
    assert.match((await day.textContent()) ?? "", /net \+700$/, "the day's net: +1,000 granted, -300 used");
    const folded = ledger.getByRole("row").filter({ hasText: `Premium API call × ${CALLS}` });
    await shows(folded);
    assert.match((await folded.textContent()) ?? "", /-300.*700/, "the run's total and the balance after it");
    await shows(ledger.getByRole("row").filter({ hasText: "Purchased credits added" }));
    assert.equal(await ledger.getByRole("row").count(), 4, "the header, the day, the folded calls and the grant");
    assert.equal(await ledger.getByText("api_call_premium").count(), 0, "no event keys on the page");

    await folded.getByRole("button", { name: `Show all ${CALLS}` }).click();
    assert.equal(await ledger.getByRole("row").count(), 4 + CALLS, "each call listed under the folded line");
    await suite.screenshot(page, "credits-ledger");
    await folded.getByRole("button", { name: `Hide all ${CALLS}` }).click();
  });

  it("the date range changes the rows and is kept in the address across a reload", async () => {
    const from = dayBefore(todayUtc(), 10);
    const to = dayBefore(todayUtc(), 1);
    await page.getByLabel("From", { exact: true }).fill(from);
    await page.getByLabel("To", { exact: true }).fill(to);
    await shows(page.getByText("No credit transactions in these 10 days."));
    const url = new URL(page.url());
    assert.equal(url.searchParams.get("ledger_from"), from);
    assert.equal(url.searchParams.get("ledger_to"), to);

    await page.reload();
    await shows(page.getByText("No credit transactions in these 10 days."));
    assert.equal(await page.getByLabel("From", { exact: true }).inputValue(), from);
    assert.equal(await page.getByLabel("To", { exact: true }).inputValue(), to);

    await page.getByRole("button", { name: "7 days" }).click();
    await shows(page.getByRole("row").filter({ hasText: `Premium API call × ${CALLS}` }));
    assert.equal(new URL(page.url()).searchParams.get("ledger_days"), "7");
    await page.reload();
    await shows(page.getByRole("row").filter({ hasText: `Premium API call × ${CALLS}` }));
    assert.equal(await page.getByRole("button", { name: "7 days" }).getAttribute("aria-pressed"), "true");
  });

  it("downloads the range as CSV, one row per movement", async () => {
    const [download] = await Promise.all([page.waitForEvent("download"), page.getByRole("button", { name: "Download CSV" }).click()]);
    assert.match(download.suggestedFilename(), /^credits-\d{4}-\d{2}-\d{2}-to-\d{4}-\d{2}-\d{2}\.csv$/);
    const csv = await readFile((await download.path())!, "utf8");
    const lines = csv.split("\r\n");
    assert.equal(lines[0], "date,description,amount,balance after,reference");
    assert.equal(lines.length, 1 + 1 + CALLS, "a header, the grant and each call");
    assert.match(lines[1]!, new RegExp(`^\\S+,Purchased credits added,1000,1000,ledger-${tag}$`));
    assert.match(lines.at(-1)!, /^\S+,Premium API call,-5,700,[0-9a-f-]{36}$/);
    await shows(page.getByRole("status").filter({ hasText: `(${1 + CALLS} rows)` }));
  });

  it("an owner changes the spending order and sees what it means", async () => {
    const section = page.locator("#spending-order");
    const purchasedFirst = section.getByRole("radio", { name: /Purchased credits first \(they never expire\)/ });
    assert.equal(await purchasedFirst.isChecked(), true, "purchased credits first by default");
    await section.getByRole("radio", { name: /Expiring credits first \(use subscription credits before they expire\)/ }).check();
    await shows(section.getByRole("status").filter({ hasText: /^Saved\.$/ }));
    await shows(section.getByText(/Usage is paid from subscription credits first/));
    const stored = await fetch(`${suite.stack.supabaseUrl}/rest/v1/organizations?id=eq.${organizationId}&select=credit_precedence`, {
      headers: { apikey: suite.stack.anonKey, authorization: `Bearer ${owner.token}` },
    }).then((r) => r.json() as Promise<{ credit_precedence: string }[]>);
    assert.deepEqual(stored, [{ credit_precedence: "expiring_first" }], "stored through set_credit_precedence");
    await page.reload();
    assert.equal(await page.locator("#spending-order").getByRole("radio", { name: /Expiring credits first/ }).isChecked(), true, "kept after a reload");
  });

  it("fits 390 px without scrolling sideways, the ledger as cards", async () => {
    await page.setViewportSize(PHONE);
    await shows(page.getByRole("row").filter({ hasText: `Premium API call × ${CALLS}` }));
    await page.getByRole("button", { name: `Show all ${CALLS}` }).click();
    const overflow = await sidewaysOverflow(page);
    assert.ok(overflow <= 0, `the Credits tab does not scroll sideways at ${PHONE.width}px (overflow ${overflow}px)`);
    await suite.screenshot(page, "credits-ledger-phone");
    await page.context().close();
  });

  it("a member reads the spending order and is told which owner can change it, by email", async () => {
    const member = await signedInPage(memberEmail, `${suite.stack.appUrl}/?tab=credits#spending-order`);
    const section = member.locator("#spending-order");
    await shows(section.getByText("Expiring credits first (use subscription credits before they expire)."));
    assert.equal(await section.getByRole("radio").count(), 0, "no choice for a member");
    await shows(section.getByText(`Ask ${ownerEmail} (owner) to change the spending order.`));
    const notes = member.getByRole("note");
    await shows(notes.first());
    assert.equal(await notes.count(), 1, "one notice for the whole tab, not one per card");
    await shows(notes.getByText(`Ask ${ownerEmail} (owner) to buy credits or change these settings.`));
    await member.context().close();
  });
});
