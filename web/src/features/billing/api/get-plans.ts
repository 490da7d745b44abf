import { useQuery } from "@tanstack/react-query";
import { z } from "zod/mini";
import { throwIfError } from "@/lib/errors";
import { useBackend, type BillingSupabaseClient } from "@/lib/supabase";
import type { SubscriptionPlan } from "@/types/billing";

export const plansQueryKey = ["catalog", "plans"] as const;

const featuresSchema = z.catch(z.array(z.string()), []);

/** Active plans in display order; readable by everyone (pricing page), so not per organization. */
export async function fetchPlans(supabase: BillingSupabaseClient): Promise<SubscriptionPlan[]> {
  const { data, error } = await supabase
    .from("subscription_plans")
    .select("*")
    .eq("is_active", true)
    .order("sort_order");
  throwIfError(error);
  return (data ?? []).map((plan) => ({ ...plan, features: featuresSchema.parse(plan.features) }));
}

export function usePlans() {
  const { supabase } = useBackend();
  return useQuery({ queryKey: plansQueryKey, queryFn: () => fetchPlans(supabase), staleTime: 5 * 60_000 });
}
