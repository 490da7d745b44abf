import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { isRangePastEnd, throwIfError } from "@/lib/errors";
import { useBackend, type BillingSupabaseClient } from "@/lib/supabase";
import type { BillingHistoryEntry, Page } from "@/types/billing";
import { billingKey } from "../../api/billing-keys";

export const HISTORY_PAGE_SIZE = 10;

export const billingHistoryQueryKey = (organizationId: string, page: number) =>
  [...billingKey(organizationId), "history", page] as const;

/** One page of payments, invoices and refunds, newest first, with the exact total. */
export async function fetchBillingHistory(
  supabase: BillingSupabaseClient,
  organizationId: string,
  page: number,
): Promise<Page<BillingHistoryEntry>> {
  const from = page * HISTORY_PAGE_SIZE;
  const select = (head: boolean) =>
    supabase.from("billing_history").select("*", { count: "exact", head }).eq("organization_id", organizationId);
  const { data, error, count } = await select(false)
    .order("occurred_at", { ascending: false })
    .order("id", { ascending: false })
    .range(from, from + HISTORY_PAGE_SIZE - 1);
  if (isRangePastEnd(error)) {
    const counted = await select(true);
    throwIfError(counted.error);
    return { rows: [], total: counted.count ?? 0, page, pageSize: HISTORY_PAGE_SIZE };
  }
  throwIfError(error);
  return { rows: data ?? [], total: count ?? 0, page, pageSize: HISTORY_PAGE_SIZE };
}

export function useBillingHistory(organizationId: string, page: number) {
  const { supabase } = useBackend();
  return useQuery({
    queryKey: billingHistoryQueryKey(organizationId, page),
    queryFn: () => fetchBillingHistory(supabase, organizationId, page),
    placeholderData: keepPreviousData,
  });
}
