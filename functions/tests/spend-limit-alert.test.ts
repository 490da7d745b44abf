/**
 * Alerts over HTTP: a consumption or reservation refused with 429 (spend_limit_reached) raises
 * the month's spend_limit alert, once, though the refused call itself rolled back; a low
 * balance alert that no longer applies leaves the Overview's alerts (`GET /summary`).
 */
import assert from "node:assert/strict";
import { api, db, type Member } from "./support.ts";
import { grantPurchased, organizationWithCredits, setSpendLimit, test } from "./credits-support.ts";

async function spendLimitAlerts(member: Member, organizationId: string) {
  const { data, error } = await member.client.from("billing_alerts").select("id, title, message, dismissed_at, resolved_at")
    .eq("organization_id", organizationId).eq("kind", "spend_limit");
  if (error) throw new Error(error.message);
  return data;
}

test("a consumption refused with 429 raises the month's spend_limit alert once, for every member to read", async () => {
  const { organizationId, owner, member } = await organizationWithCredits(1_000);
  await setSpendLimit(owner, organizationId, 30);
  const fits = await api(member, "POST", "/credits/consume", { organization_id: organizationId, event_key: "ai_inference" });
  assert.equal(fits.status, 200, JSON.stringify(fits.body));
  assert.deepEqual(await spendLimitAlerts(member, organizationId), [], "25 of 30: no alert yet");

  const refused = await api(member, "POST", "/credits/consume", { organization_id: organizationId, event_key: "ai_inference" });
  assert.equal(refused.status, 429, JSON.stringify(refused.body));
  assert.equal(refused.body.error.code, "spend_limit_reached", "the caller still gets the refusal");
  const alerts = await spendLimitAlerts(member, organizationId);
  assert.equal(alerts.length, 1, "the refusal raised the alert");
  assert.equal(alerts[0].title, "Monthly spend limit reached");

  const again = await api(owner, "POST", "/credits/consume", { organization_id: organizationId, event_key: "ai_inference" });
  assert.equal(again.status, 429);
  assert.equal((await spendLimitAlerts(member, organizationId)).length, 1, "once per month, however many refusals");
  const summary = await api(member, "GET", `/summary/${organizationId}`);
  assert.equal(summary.status, 200, JSON.stringify(summary.body));
  assert.deepEqual(summary.body.alerts.map((a: { kind: string }) => a.kind), ["spend_limit"], "the Overview shows it");
});

test("a reservation refused with 429 raises it too; a stranger's refused call (403) raises nothing", async () => {
  const { organizationId, owner, admin, stranger } = await organizationWithCredits(1_000);
  await setSpendLimit(owner, organizationId, 30);
  const foreign = await api(stranger, "POST", "/credits/reserve", { organization_id: organizationId, event_key: "ai_inference", quantity: 2 });
  assert.equal(foreign.status, 403, JSON.stringify(foreign.body));
  assert.deepEqual(await spendLimitAlerts(owner, organizationId), [], "only a 429 raises it");

  const refused = await api(admin, "POST", "/credits/reserve", { organization_id: organizationId, event_key: "ai_inference", quantity: 2 });
  assert.equal(refused.status, 429, JSON.stringify(refused.body));
  assert.equal((await spendLimitAlerts(owner, organizationId)).length, 1);
});

test("a low-balance alert leaves the Overview once a grant takes the balance back above the threshold", async () => {
  const { organizationId, owner, member } = await organizationWithCredits(150);
  const { error } = await owner.client.rpc("set_low_balance_threshold", { p_organization_id: organizationId, p_threshold: 100 });
  if (error) throw new Error(error.message);
  const spent = await api(member, "POST", "/credits/consume", { organization_id: organizationId, event_key: "ai_inference", quantity: 3 });
  assert.equal(spent.status, 200, JSON.stringify(spent.body));
  const low = await api(member, "GET", `/summary/${organizationId}`);
  assert.deepEqual(low.body.alerts.map((a: { kind: string }) => a.kind), ["low_balance"]);
  assert.match(low.body.alerts[0].message, /^The balance is below your 100-credit threshold\./, "no balance figure that goes stale");

  await grantPurchased(organizationId, 100);
  const after = await api(member, "GET", `/summary/${organizationId}`);
  assert.deepEqual(after.body.alerts, [], "resolved alerts are not listed");
  const { data } = await db.from("billing_alerts").select("resolved_reason, dismissed_at").eq("organization_id", organizationId);
  assert.deepEqual(data, [{ resolved_reason: "balance_restored", dismissed_at: null }], "resolved, not dismissed");
});
