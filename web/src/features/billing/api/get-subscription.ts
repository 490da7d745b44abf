import { useQuery } from "@tanstack/react-query";
import { throwIfError } from "@/lib/errors";
import type { RefetchInterval } from "@/lib/query-client";
import { useBackend, type BillingSupabaseClient } from "@/lib/supabase";
import type { OrganizationSubscription } from "@/types/billing";
import { billingKey } from "./billing-keys";

export const subscriptionQueryKey = (organizationId: string) => [...billingKey(organizationId), "subscription"] as const;

/** The organization's newest subscription as the webhook last applied it, or null. */
export async function fetchSubscription(
  supabase: BillingSupabaseClient,
  organizationId: string,
): Promise<OrganizationSubscription | null> {
  const { data, error } = await supabase
    .from("organization_subscriptions")
    .select("*")
    .eq("organization_id", organizationId)
    .order("created_at", { ascending: false })
    .limit(1);
  throwIfError(error);
  return data?.[0] ?? null;
}

/** Subscription hook; `refetchInterval` lets a return from the customer portal poll it. */
export function useSubscription(organizationId: string, refetchInterval: RefetchInterval = false) {
  const { supabase } = useBackend();
  return useQuery({
    queryKey: subscriptionQueryKey(organizationId),
    queryFn: () => fetchSubscription(supabase, organizationId),
    refetchInterval,
  });
}
