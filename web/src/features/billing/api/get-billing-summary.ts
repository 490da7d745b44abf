import { useQuery } from "@tanstack/react-query";
import { z } from "zod/mini";
import { callBillingFunction } from "@/lib/billing-function";
import { useBackend, type Backend } from "@/lib/supabase";
import { billingKey } from "./billing-keys";

/**
 * `GET /functions/v1/billing/summary/{org_id}`. The contract names the path but not the
 * body, so it is kept as an object of unknown fields until the Edge Function lands; the
 * screens read the same data through RLS meanwhile and do not depend on it.
 */
export const billingSummarySchema = z.record(z.string(), z.unknown());
export type BillingSummary = z.infer<typeof billingSummarySchema>;

export const billingSummaryQueryKey = (organizationId: string) => [...billingKey(organizationId), "summary"] as const;

export function fetchBillingSummary(backend: Backend, organizationId: string): Promise<BillingSummary> {
  return callBillingFunction(
    backend,
    { method: "GET", path: `/summary/${encodeURIComponent(organizationId)}` },
    billingSummarySchema,
  );
}

export function useBillingSummary(organizationId: string) {
  const backend = useBackend();
  return useQuery({
    queryKey: billingSummaryQueryKey(organizationId),
    queryFn: () => fetchBillingSummary(backend, organizationId),
  });
}
