import { useQuery } from "@tanstack/react-query";
import { throwIfError } from "@/lib/errors";
import { LIVE_REFRESH_MS } from "@/lib/query-client";
import { useBackend, type BillingSupabaseClient } from "@/lib/supabase";
import type { CreditUsageDay } from "@/types/billing";
import { billingKey } from "../../api/billing-keys";

export const USAGE_DAYS = 30;

export const usageQueryKey = (organizationId: string) => [...billingKey(organizationId), "usage", USAGE_DAYS] as const;

/** First UTC day (YYYY-MM-DD) of the window that ends today. */
export function usageWindowStart(now: Date, days = USAGE_DAYS): string {
  const start = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - (days - 1)));
  return start.toISOString().slice(0, 10);
}

/** Credits consumed per UTC day and event over the last 30 days (`credit_usage_daily`). */
export async function fetchUsage(
  supabase: BillingSupabaseClient,
  organizationId: string,
  now = new Date(),
): Promise<CreditUsageDay[]> {
  const { data, error } = await supabase
    .from("credit_usage_daily")
    .select("*")
    .eq("organization_id", organizationId)
    .gte("day", usageWindowStart(now))
    .order("day");
  throwIfError(error);
  return data ?? [];
}

export function useUsage(organizationId: string) {
  const { supabase } = useBackend();
  return useQuery({
    queryKey: usageQueryKey(organizationId),
    queryFn: () => fetchUsage(supabase, organizationId),
    refetchInterval: LIVE_REFRESH_MS,
  });
}
