import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useBackend } from "@/lib/supabase";
import { callWebhookRoute } from "./call-webhook-route";
import { operatorKey } from "./operator-keys";

/** Applies a parked webhook event again (`POST stripe-webhook/redrive/<id>`); answers its new status. */
export function useRedriveEvent() {
  const backend = useBackend();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (eventId: string) =>
      (await callWebhookRoute(backend, `redrive/${encodeURIComponent(eventId)}`)) as { status: string },
    onSettled: () => queryClient.invalidateQueries({ queryKey: operatorKey }),
  });
}
