import { useQuery } from "@tanstack/react-query";
import { throwIfError } from "@/lib/errors";
import { LIVE_REFRESH_MS } from "@/lib/query-client";
import { useBackend, type BillingSupabaseClient } from "@/lib/supabase";
import type { BillingAlert } from "@/types/billing";
import { billingKey } from "../../api/billing-keys";

export const alertsQueryKey = (organizationId: string) => [...billingKey(organizationId), "alerts"] as const;

/** Open alerts (neither dismissed nor resolved by themselves), newest first. */
export async function fetchAlerts(supabase: BillingSupabaseClient, organizationId: string): Promise<BillingAlert[]> {
  const { data, error } = await supabase
    .from("billing_alerts")
    .select("*")
    .eq("organization_id", organizationId)
    .is("dismissed_at", null)
    .is("resolved_at", null)
    .order("created_at", { ascending: false })
    .limit(20);
  throwIfError(error);
  return data ?? [];
}

export function useAlerts(organizationId: string) {
  const { supabase } = useBackend();
  return useQuery({
    queryKey: alertsQueryKey(organizationId),
    queryFn: () => fetchAlerts(supabase, organizationId),
    refetchInterval: LIVE_REFRESH_MS,
  });
}
