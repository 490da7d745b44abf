import { useQuery } from "@tanstack/react-query";
import { throwIfError } from "@/lib/errors";
import { useBackend, type BillingSupabaseClient } from "@/lib/supabase";
import type { CreditPrecedence } from "../look-ahead";
import { billingKey } from "../../api/billing-keys";

export const creditPrecedenceQueryKey = (organizationId: string) => [...billingKey(organizationId), "credit-precedence"] as const;

/** The organization's spending order (purchased credits first unless an owner changed it). */
export async function fetchCreditPrecedence(supabase: BillingSupabaseClient, organizationId: string): Promise<CreditPrecedence> {
  const { data, error } = await supabase.from("organizations").select("credit_precedence").eq("id", organizationId).maybeSingle();
  throwIfError(error);
  return data?.credit_precedence ?? "purchased_first";
}

export function useCreditPrecedence(organizationId: string) {
  const { supabase } = useBackend();
  return useQuery({ queryKey: creditPrecedenceQueryKey(organizationId), queryFn: () => fetchCreditPrecedence(supabase, organizationId) });
}
