/**
 * Whether a subscription checkout includes the plan's free trial. The database decides (one
 * trial per owner, see `trial_eligibility`); asking as the caller means the owner or admin
 * who checks out counts too. A checkout without a trial is an ordinary paid subscription.
 */
import { type DatabaseClient, rpc } from "../_shared/supabase.ts";

export interface TrialEligibility {
  eligible: boolean;
  /** Why not: "organization_had_trial" or "trial_used"; null when eligible. */
  reason: string | null;
}

/** The organization's trial eligibility as the caller may see it (members only: 42501 otherwise). */
export async function trialEligibility(caller: DatabaseClient, organizationId: string): Promise<TrialEligibility> {
  const rows = await rpc(caller, "trial_eligibility", { p_organization_id: organizationId });
  const row = rows?.[0];
  // The function always returns one row; anything else must not hand out a trial.
  return row ? { eligible: row.eligible === true, reason: row.reason ?? null } : { eligible: false, reason: "unknown" };
}

/** The trial days to put on the Checkout Session, or undefined for none. */
export async function checkoutTrialDays(
  caller: DatabaseClient,
  organizationId: string,
  plan: { trial_days: number },
): Promise<number | undefined> {
  if (plan.trial_days <= 0) return undefined;
  return (await trialEligibility(caller, organizationId)).eligible ? plan.trial_days : undefined;
}
