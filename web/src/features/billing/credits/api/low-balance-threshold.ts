import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { throwIfError } from "@/lib/errors";
import { useBackend, type BillingSupabaseClient } from "@/lib/supabase";
import { billingKey } from "../../api/billing-keys";

export const thresholdQueryKey = (organizationId: string) => [...billingKey(organizationId), "low-balance-threshold"] as const;

/** The organization's low-balance threshold in credits (0 = no alert). */
export async function fetchThreshold(supabase: BillingSupabaseClient, organizationId: string): Promise<number> {
  const { data, error } = await supabase
    .from("organizations")
    .select("low_balance_threshold")
    .eq("id", organizationId)
    .single();
  throwIfError(error);
  return data?.low_balance_threshold ?? 0;
}

/** Changes the threshold through `set_low_balance_threshold` (owners and admins). */
export async function setThreshold(supabase: BillingSupabaseClient, organizationId: string, threshold: number): Promise<void> {
  const { error } = await supabase.rpc("set_low_balance_threshold", {
    p_organization_id: organizationId,
    p_threshold: threshold,
  });
  throwIfError(error);
}

export function useThreshold(organizationId: string) {
  const { supabase } = useBackend();
  return useQuery({ queryKey: thresholdQueryKey(organizationId), queryFn: () => fetchThreshold(supabase, organizationId) });
}

export function useSetThreshold(organizationId: string) {
  const { supabase } = useBackend();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (threshold: number) => setThreshold(supabase, organizationId, threshold),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: thresholdQueryKey(organizationId) }),
  });
}
