import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { throwIfError } from "@/lib/errors";
import { LIVE_REFRESH_MS } from "@/lib/query-client";
import { useBackend, type BillingSupabaseClient } from "@/lib/supabase";
import { spendLimitSchema, type SpendLimit } from "@/types/billing";
import { billingKey } from "../../api/billing-keys";

export const spendLimitQueryKey = (organizationId: string) => [...billingKey(organizationId), "spend-limit"] as const;

/** The monthly spend limit and this month's consumption against it, via `get_spend_limit` (any member). */
export async function fetchSpendLimit(supabase: BillingSupabaseClient, organizationId: string): Promise<SpendLimit> {
  const { data, error } = await supabase.rpc("get_spend_limit", { p_organization_id: organizationId });
  throwIfError(error);
  return spendLimitSchema.parse(data);
}

/** Sets (or, with null, removes) the monthly limit through `set_spend_limit` (owners and admins). */
export async function setSpendLimit(
  supabase: BillingSupabaseClient,
  organizationId: string,
  monthlyCredits: number | null,
): Promise<void> {
  // The generated types cannot say a SQL argument may be null; set_spend_limit takes null as "no limit".
  const { error } = await supabase.rpc("set_spend_limit", {
    p_organization_id: organizationId,
    p_monthly_credits: monthlyCredits as number,
  });
  throwIfError(error);
}

/** Kept current like the balance: the organization's services consume while the page is open. */
export function useSpendLimit(organizationId: string) {
  const { supabase } = useBackend();
  return useQuery({
    queryKey: spendLimitQueryKey(organizationId),
    queryFn: () => fetchSpendLimit(supabase, organizationId),
    refetchInterval: LIVE_REFRESH_MS,
  });
}

export function useSetSpendLimit(organizationId: string) {
  const { supabase } = useBackend();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (monthlyCredits: number | null) => setSpendLimit(supabase, organizationId, monthlyCredits),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: spendLimitQueryKey(organizationId) }),
  });
}
