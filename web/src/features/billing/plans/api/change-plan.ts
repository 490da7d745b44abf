import { useMutation } from "@tanstack/react-query";
import { z } from "zod/mini";
import { callBillingFunction } from "@/lib/billing-function";
import { useBackend, type Backend } from "@/lib/supabase";
import type { PlanChangeTarget } from "./preview-plan-change";

const planChangeResultSchema = z.object({ kind: z.enum(["upgrade", "scheduled"]), effective_at: z.string() });
export type PlanChangeResult = z.infer<typeof planChangeResultSchema>;

export interface PlanChangeRequest extends PlanChangeTarget {
  organization_id: string;
  /** The preview's proration date, so an upgrade is charged exactly what was shown. */
  proration_date?: number;
}

/**
 * `POST /subscription/change` (owners and admins). A declined card is a 402 `card_declined`
 * and changes nothing; the change itself reaches the database through Stripe's webhook.
 */
export function changePlan(backend: Backend, request: PlanChangeRequest): Promise<PlanChangeResult> {
  return callBillingFunction(backend, { method: "POST", path: "/subscription/change", body: request }, planChangeResultSchema);
}

/** The caller decides what to refresh: the change shows only once the webhook has applied it. */
export function useChangePlan() {
  const backend = useBackend();
  return useMutation({ mutationFn: (request: PlanChangeRequest) => changePlan(backend, request) });
}
