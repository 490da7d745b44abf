import { useMutation, useQueryClient } from "@tanstack/react-query";
import { throwIfError } from "@/lib/errors";
import { useBackend, type BillingSupabaseClient } from "@/lib/supabase";
import { operatorKey } from "./operator-keys";

export interface Adjustment {
  organizationId: string;
  amount: number;
  source: "purchased" | "subscription";
  reason: string;
  expiresAt: string | null;
}

/** A manual adjustment through adjust_credits: recorded in the ledger with the reason and the operator. */
export async function adjustCredits(supabase: BillingSupabaseClient, adjustment: Adjustment): Promise<void> {
  const { error } = await supabase.rpc("adjust_credits", {
    p_organization_id: adjustment.organizationId,
    p_amount: adjustment.amount,
    p_source: adjustment.source,
    p_reason: adjustment.reason,
    ...(adjustment.expiresAt ? { p_expires_at: adjustment.expiresAt } : {}),
  });
  throwIfError(error);
}

export function useAdjustCredits() {
  const { supabase } = useBackend();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (adjustment: Adjustment) => adjustCredits(supabase, adjustment),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: operatorKey }),
  });
}
