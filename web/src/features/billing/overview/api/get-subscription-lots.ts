import { useQuery } from "@tanstack/react-query";
import { throwIfError } from "@/lib/errors";
import { LIVE_REFRESH_MS, type RefetchInterval } from "@/lib/query-client";
import { useBackend, type BillingSupabaseClient } from "@/lib/supabase";
import type { SubscriptionLot } from "../look-ahead";
import { billingKey } from "../../api/billing-keys";

export const subscriptionLotsQueryKey = (organizationId: string) => [...billingKey(organizationId), "subscription-lots"] as const;

/**
 * The organization's subscription credit lots that have not expired (members read them
 * through RLS): this period's allowance and what it has left, and what expires when.
 */
export async function fetchSubscriptionLots(supabase: BillingSupabaseClient, organizationId: string, now = new Date()): Promise<SubscriptionLot[]> {
  const { data, error } = await supabase
    .from("credit_lots")
    .select("subscription_id, granted, remaining, expires_at")
    .eq("organization_id", organizationId)
    .eq("source", "subscription")
    .gt("expires_at", now.toISOString())
    .order("expires_at");
  throwIfError(error);
  return data ?? [];
}

/** Subscription-lots hook, kept current like the balance it explains (consumption empties lots). */
export function useSubscriptionLots(organizationId: string, refetchInterval: RefetchInterval = LIVE_REFRESH_MS) {
  const { supabase } = useBackend();
  return useQuery({
    queryKey: subscriptionLotsQueryKey(organizationId),
    queryFn: () => fetchSubscriptionLots(supabase, organizationId),
    refetchInterval,
  });
}
