import { useMutation, useQueryClient } from "@tanstack/react-query";
import { throwIfError } from "@/lib/errors";
import { useBackend, type BillingSupabaseClient } from "@/lib/supabase";
import { alertsQueryKey } from "./get-alerts";

/** Dismisses an alert for the whole organization (`dismiss_billing_alert`). */
export async function dismissAlert(supabase: BillingSupabaseClient, alertId: string): Promise<void> {
  const { error } = await supabase.rpc("dismiss_billing_alert", { p_alert_id: alertId });
  throwIfError(error);
}

export function useDismissAlert(organizationId: string) {
  const { supabase } = useBackend();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (alertId: string) => dismissAlert(supabase, alertId),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: alertsQueryKey(organizationId) }),
  });
}
