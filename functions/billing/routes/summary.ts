/** `GET /summary/{org_id}`: what the Overview shows in one call (subscription, balance, 30 days of usage, open alerts). */
import { Hono } from "hono";
import { json } from "../../_shared/http.ts";
import { dataOf, rpc } from "../../_shared/supabase.ts";
import { latestSubscription } from "../latest-subscription.ts";
import { asCaller, type BillingEnv, organizationParam } from "../request.ts";

export const summary = new Hono<BillingEnv>();

summary.get("/:org_id", async (c) => {
  const organization = organizationParam(c);
  const db = asCaller(c);
  const balance = await rpc(db, "get_credit_balance", { p_organization_id: organization });
  const since = new Date(Date.now() - 30 * 24 * 3600 * 1000).toISOString().slice(0, 10);
  const [subscription, usage, alerts] = await Promise.all([
    latestSubscription(db, organization),
    db.from("credit_usage_daily").select("day, event_key, events, credits")
      .eq("organization_id", organization).gte("day", since).order("day"),
    db.from("billing_alerts").select("id, kind, severity, title, message, data, created_at")
      .eq("organization_id", organization).is("dismissed_at", null).is("resolved_at", null).order("created_at", { ascending: false }),
  ]);
  return json({ subscription, balance, usage: dataOf(usage), alerts: dataOf(alerts) });
});
