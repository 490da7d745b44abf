import { useQuery } from "@tanstack/react-query";
import { throwIfError } from "@/lib/errors";
import { LIVE_REFRESH_MS, type RefetchInterval } from "@/lib/query-client";
import { useBackend, type BillingSupabaseClient } from "@/lib/supabase";
import { creditBalanceSchema, type CreditBalance } from "@/types/billing";
import { billingKey } from "./billing-keys";

export const creditBalanceQueryKey = (organizationId: string) => [...billingKey(organizationId), "balance"] as const;

/** The spendable balance split by source, via the `get_credit_balance` RPC. */
export async function fetchCreditBalance(supabase: BillingSupabaseClient, organizationId: string): Promise<CreditBalance> {
  const { data, error } = await supabase.rpc("get_credit_balance", { p_organization_id: organizationId });
  throwIfError(error);
  return creditBalanceSchema.parse(data);
}

/** Balance hook, kept current while visible; a return from Stripe polls it faster. */
export function useCreditBalance(organizationId: string, refetchInterval: RefetchInterval = LIVE_REFRESH_MS) {
  const { supabase } = useBackend();
  return useQuery({
    queryKey: creditBalanceQueryKey(organizationId),
    queryFn: () => fetchCreditBalance(supabase, organizationId),
    refetchInterval,
  });
}
