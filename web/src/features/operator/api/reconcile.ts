import { useMutation, useQueryClient } from "@tanstack/react-query";
import { useBackend } from "@/lib/supabase";
import { callWebhookRoute } from "./call-webhook-route";
import { operatorKey, type Period } from "./operator-keys";

export interface ReconciliationDifference {
  kind: string;
  stripe_id: string;
  organization_id: string | null;
  stripe: Record<string, unknown> | null;
  ours: Record<string, unknown> | null;
  repairable: boolean;
}

export interface Reconciliation {
  from: string;
  to: string;
  differences: ReconciliationDifference[];
  repairs: Array<{ stripe_id: string; kind: string; outcome: string; detail?: string }>;
}

/**
 * Compares Stripe with our records for the period (`POST stripe-webhook/reconcile`); with
 * `repair`, re-applies the named differences (all repairable ones when none are named).
 */
export function useReconcile() {
  const backend = useBackend();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: async (request: { period: Period; repair?: boolean; stripeIds?: string[] }) =>
      (await callWebhookRoute(backend, "reconcile", {
        from: request.period.from,
        to: request.period.to,
        ...(request.repair ? { repair: true } : {}),
        ...(request.stripeIds?.length ? { stripe_ids: request.stripeIds } : {}),
      })) as Reconciliation,
    onSuccess: (result) => {
      if (result.repairs.length > 0) void queryClient.invalidateQueries({ queryKey: operatorKey });
    },
  });
}
