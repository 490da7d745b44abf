import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { throwIfError } from "@/lib/errors";
import { useBackend, type BillingSupabaseClient } from "@/lib/supabase";
import type { Organization } from "@/types/billing";
import { billingKey } from "../../api/billing-keys";

export type CreditPrecedence = Organization["credit_precedence"];

export const precedenceQueryKey = (organizationId: string) => [...billingKey(organizationId), "credit-precedence"] as const;

/** Which credits consume_credits spends first for the organization. */
export async function fetchCreditPrecedence(supabase: BillingSupabaseClient, organizationId: string): Promise<CreditPrecedence> {
  const { data, error } = await supabase.from("organizations").select("credit_precedence").eq("id", organizationId).single();
  throwIfError(error);
  return data?.credit_precedence ?? "purchased_first";
}

/** Changes it through `set_credit_precedence` (owners and admins; 42501 for anyone else). */
export async function setCreditPrecedence(supabase: BillingSupabaseClient, organizationId: string, policy: CreditPrecedence): Promise<void> {
  const { error } = await supabase.rpc("set_credit_precedence", { p_organization_id: organizationId, p_policy: policy });
  throwIfError(error);
}

export function useCreditPrecedence(organizationId: string) {
  const { supabase } = useBackend();
  return useQuery({ queryKey: precedenceQueryKey(organizationId), queryFn: () => fetchCreditPrecedence(supabase, organizationId) });
}

export function useSetCreditPrecedence(organizationId: string) {
  const { supabase } = useBackend();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (policy: CreditPrecedence) => setCreditPrecedence(supabase, organizationId, policy),
    // Whatever else reads the organization's setting (the Overview's outlook) reads it again;
    // not awaited, so "Saved." does not wait for every card's refresh.
    onSuccess: (_, policy) => {
      queryClient.setQueryData(precedenceQueryKey(organizationId), policy);
      void queryClient.invalidateQueries({ queryKey: billingKey(organizationId) });
    },
  });
}
