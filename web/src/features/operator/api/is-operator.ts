import { useQuery } from "@tanstack/react-query";
import { throwIfError } from "@/lib/errors";
import { useBackend, type BillingSupabaseClient } from "@/lib/supabase";
import { operatorKey } from "./operator-keys";

export const isOperatorQueryKey = (userId: string) => [...operatorKey, "is-operator", userId] as const;

/** Whether the signed-in user is a billing operator (the database decides; see is_billing_operator). */
export async function fetchIsOperator(supabase: BillingSupabaseClient): Promise<boolean> {
  const { data, error } = await supabase.rpc("is_billing_operator");
  throwIfError(error);
  return data === true;
}

export function useIsOperator(userId: string) {
  const { supabase } = useBackend();
  return useQuery({ queryKey: isOperatorQueryKey(userId), queryFn: () => fetchIsOperator(supabase) });
}
