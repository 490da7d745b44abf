import { useQuery } from "@tanstack/react-query";
import { z } from "zod/mini";
import { callBillingFunction } from "@/lib/billing-function";
import { useBackend, type Backend } from "@/lib/supabase";
import type { BillingInterval } from "@/types/billing";
import { billingKey } from "../../api/billing-keys";

/**
 * `POST /subscription/change/preview`: what a change would do. An upgrade takes effect now
 * (charged now, credits added now); anything else is scheduled for the end of the period.
 */
export const planChangePreviewSchema = z.object({
  kind: z.enum(["upgrade", "scheduled"]),
  effective_at: z.string(),
  amount_due_now: z.int(),
  currency: z.string(),
  /** Unix seconds the proration was computed at; the change sends it back so the charge equals the preview. */
  proration_date: z.int(),
  credits_now: z.int(),
  lines: z.array(z.object({ description: z.nullable(z.string()), amount: z.int() })),
  next_charge: z.nullable(z.object({ date: z.string(), amount: z.int() })),
});
export type PlanChangePreview = z.infer<typeof planChangePreviewSchema>;

export interface PlanChangeTarget {
  plan_code: string;
  interval: BillingInterval;
}

export const planChangePreviewQueryKey = (organizationId: string, target: PlanChangeTarget) =>
  [...billingKey(organizationId), "plan-change-preview", target.plan_code, target.interval] as const;

/** Asks the billing function what switching to `target` would charge and grant (owners and admins). */
export function previewPlanChange(backend: Backend, organizationId: string, target: PlanChangeTarget): Promise<PlanChangePreview> {
  return callBillingFunction(
    backend,
    { method: "POST", path: "/subscription/change/preview", body: { organization_id: organizationId, ...target } },
    planChangePreviewSchema,
  );
}

/**
 * The preview for the confirmation dialog. Read once per opening and never refreshed behind
 * the member's back: the proration date it carries is what the confirmed change is charged at.
 */
export function usePlanChangePreview(organizationId: string, target: PlanChangeTarget) {
  const backend = useBackend();
  return useQuery({
    queryKey: planChangePreviewQueryKey(organizationId, target),
    queryFn: () => previewPlanChange(backend, organizationId, target),
    staleTime: Infinity,
    gcTime: 0,
    refetchOnWindowFocus: false,
    retry: false,
  });
}
