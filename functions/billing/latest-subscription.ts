/**
 * The organization's latest subscription with its plan, as the caller may see it (RLS), for
 * `GET /subscription/{org_id}` and `GET /summary/{org_id}`. Two plain reads rather than an
 * embedded select, which keeps to the REST subset every stack supports.
 */
import { type DatabaseClient, dataOf } from "../_shared/supabase.ts";

export async function latestSubscription(db: DatabaseClient, organization: string) {
  const data = dataOf(
    await db.from("organization_subscriptions")
      .select("status, billing_interval, current_period_start, current_period_end, trial_end, cancel_at_period_end, grace_period_end, plan_id")
      .eq("organization_id", organization).order("created_at", { ascending: false }).limit(1).maybeSingle(),
  );
  if (!data) return null;
  const { plan_id: planId, ...subscription } = data;
  if (!planId) return { ...subscription, plan: null };
  const plan = dataOf(
    await db.from("subscription_plans")
      .select("code, name, monthly_credits, annual_credits").eq("id", planId).maybeSingle(),
  );
  return { ...subscription, plan };
}
