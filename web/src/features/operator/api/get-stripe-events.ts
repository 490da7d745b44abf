import { useQuery } from "@tanstack/react-query";
import { throwIfError } from "@/lib/errors";
import { useBackend, type BillingSupabaseClient } from "@/lib/supabase";
import type { Database } from "@/types/database";
import { operatorKey } from "./operator-keys";

export type StripeEventRow = Database["public"]["Functions"]["operator_stripe_events"]["Returns"][number];
export type InboxStatus = "parked" | "received" | "processed" | "ignored" | "all";

export const stripeEventsQueryKey = (status: InboxStatus) => [...operatorKey, "stripe-events", status] as const;

/** The webhook inbox by status (parked by default), newest first. */
export async function fetchStripeEvents(supabase: BillingSupabaseClient, status: InboxStatus): Promise<StripeEventRow[]> {
  const { data, error } = await supabase.rpc("operator_stripe_events", {
    ...(status === "all" ? { p_status: null as unknown as string } : { p_status: status }),
    p_limit: 100,
  });
  throwIfError(error);
  return data ?? [];
}

export function useStripeEvents(status: InboxStatus) {
  const { supabase } = useBackend();
  return useQuery({ queryKey: stripeEventsQueryKey(status), queryFn: () => fetchStripeEvents(supabase, status) });
}
