import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { throwIfError } from "@/lib/errors";
import { useBackend, type BillingSupabaseClient } from "@/lib/supabase";
import { operatorKey } from "./operator-keys";

export interface OperatorAlert {
  id: string;
  kind: string;
  severity: string;
  title: string;
  message: string;
  created_at: string;
}

export const operatorAlertsQueryKey = [...operatorKey, "alerts"] as const;

/** Open operator alerts (drift found by the daily reconciliation), newest first. */
export async function fetchOperatorAlerts(supabase: BillingSupabaseClient): Promise<OperatorAlert[]> {
  const { data, error } = await supabase.rpc("operator_alerts", {});
  throwIfError(error);
  return (data ?? []) as OperatorAlert[];
}

export function useOperatorAlerts() {
  const { supabase } = useBackend();
  return useQuery({ queryKey: operatorAlertsQueryKey, queryFn: () => fetchOperatorAlerts(supabase) });
}

export function useDismissOperatorAlert() {
  const { supabase } = useBackend();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (alertId: string) => {
      const { error } = await supabase.rpc("dismiss_operator_alert", { p_alert_id: alertId });
      throwIfError(error);
    },
    onSuccess: () => queryClient.invalidateQueries({ queryKey: operatorAlertsQueryKey }),
  });
}
