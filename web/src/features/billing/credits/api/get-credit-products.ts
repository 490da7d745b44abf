import { useQuery } from "@tanstack/react-query";
import { throwIfError } from "@/lib/errors";
import { useBackend, type BillingSupabaseClient } from "@/lib/supabase";
import type { CreditProduct } from "@/types/billing";

export const creditProductsQueryKey = ["catalog", "credit-products"] as const;

/** Active credit packs in display order (public catalog). */
export async function fetchCreditProducts(supabase: BillingSupabaseClient): Promise<CreditProduct[]> {
  const { data, error } = await supabase.from("credit_products").select("*").eq("is_active", true).order("sort_order");
  throwIfError(error);
  return data ?? [];
}

export function useCreditProducts() {
  const { supabase } = useBackend();
  return useQuery({ queryKey: creditProductsQueryKey, queryFn: () => fetchCreditProducts(supabase), staleTime: 5 * 60_000 });
}
