import { useQuery } from "@tanstack/react-query";
import { throwIfError } from "@/lib/errors";
import { useBackend, type BillingSupabaseClient } from "@/lib/supabase";
import { trialEligibilitySchema, type TrialEligibility } from "@/types/billing";
import { billingKey } from "../../api/billing-keys";

export const trialEligibilityQueryKey = (organizationId: string) => [...billingKey(organizationId), "trial-eligibility"] as const;

/**
 * Whether a checkout for the organization would include the plan's free trial (one trial per
 * owner, decided by the database for the signed-in member).
 */
export async function fetchTrialEligibility(supabase: BillingSupabaseClient, organizationId: string): Promise<TrialEligibility> {
  const { data, error } = await supabase.rpc("trial_eligibility", { p_organization_id: organizationId });
  throwIfError(error);
  return trialEligibilitySchema.parse(data?.[0]);
}

export function useTrialEligibility(organizationId: string) {
  const { supabase } = useBackend();
  return useQuery({
    queryKey: trialEligibilityQueryKey(organizationId),
    queryFn: () => fetchTrialEligibility(supabase, organizationId),
  });
}
