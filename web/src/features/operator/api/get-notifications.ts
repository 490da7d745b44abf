import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { throwIfError } from "@/lib/errors";
import { useBackend, type BillingSupabaseClient } from "@/lib/supabase";
import type { Database } from "@/types/database";
import { operatorKey } from "./operator-keys";

export type NotificationRow = Database["public"]["Functions"]["operator_notifications"]["Returns"][number];
export type DeliveryStatus = "failed" | "pending" | "delivered" | "all";

export const notificationsQueryKey = (status: DeliveryStatus) => [...operatorKey, "notifications", status] as const;

/** Outbound deliveries (signed webhooks and alert emails) by status, newest first. */
export async function fetchNotifications(supabase: BillingSupabaseClient, status: DeliveryStatus): Promise<NotificationRow[]> {
  const { data, error } = await supabase.rpc("operator_notifications", {
    ...(status === "all" ? { p_status: null as unknown as string } : { p_status: status }),
    p_limit: 100,
  });
  throwIfError(error);
  return data ?? [];
}

export function useNotifications(status: DeliveryStatus) {
  const { supabase } = useBackend();
  return useQuery({ queryKey: notificationsQueryKey(status), queryFn: () => fetchNotifications(supabase, status) });
}

/** Puts a failed delivery back in line now, with its retries starting over. */
export function useRetryNotification() {
  const { supabase } = useBackend();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (row: { channel: string; id: string }) => {
      const { error } = await supabase.rpc("operator_retry_notification", { p_channel: row.channel, p_id: row.id });
      throwIfError(error);
    },
    onSuccess: () => queryClient.invalidateQueries({ queryKey: operatorKey }),
  });
}
