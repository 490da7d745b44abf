import { useQuery } from "@tanstack/react-query";
import { z } from "zod/mini";
import { callBillingFunction } from "@/lib/billing-function";
import type { RefetchInterval } from "@/lib/query-client";
import { useBackend, type Backend } from "@/lib/supabase";
import { billingKey } from "./billing-keys";

/** A plan change scheduled for the end of the period (a downgrade or an interval change). */
export const scheduledChangeSchema = z.object({
  plan_code: z.string(),
  plan_name: z.string(),
  interval: z.enum(["month", "year"]),
  effective_at: z.string(),
});
export type ScheduledChange = z.infer<typeof scheduledChangeSchema>;

/** `GET /subscription/{org}/upcoming`: Stripe's preview of the next invoice, or null when nothing renews. */
export const upcomingInvoiceSchema = z.object({
  upcoming: z.nullable(
    z.object({
      date: z.string(),
      amount_due: z.int(),
      currency: z.string(),
      lines: z.array(z.object({ description: z.nullable(z.string()), amount: z.int() })),
      scheduled_change: z.nullable(scheduledChangeSchema),
    }),
  ),
});
export type UpcomingInvoice = NonNullable<z.infer<typeof upcomingInvoiceSchema>["upcoming"]>;

export const upcomingInvoiceQueryKey = (organizationId: string) => [...billingKey(organizationId), "upcoming-invoice"] as const;

/**
 * The next charge (date, amount) and any scheduled plan change, from Stripe's invoice preview
 * through the billing function; null with no live subscription or one ending at period end.
 */
export async function fetchUpcomingInvoice(backend: Backend, organizationId: string): Promise<UpcomingInvoice | null> {
  const result = await callBillingFunction(
    backend,
    { method: "GET", path: `/subscription/${encodeURIComponent(organizationId)}/upcoming` },
    upcomingInvoiceSchema,
  );
  return result.upcoming;
}

/** Upcoming-invoice hook; `refetchInterval` lets a plan change poll it until Stripe shows the change. */
export function useUpcomingInvoice(organizationId: string, { enabled = true, refetchInterval = false }: { enabled?: boolean; refetchInterval?: RefetchInterval } = {}) {
  const backend = useBackend();
  return useQuery({
    queryKey: upcomingInvoiceQueryKey(organizationId),
    queryFn: () => fetchUpcomingInvoice(backend, organizationId),
    enabled,
    refetchInterval,
  });
}
