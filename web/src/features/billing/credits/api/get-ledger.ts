import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { isRangePastEnd, throwIfError } from "@/lib/errors";
import { LIVE_REFRESH_MS } from "@/lib/query-client";
import { useBackend, type BillingSupabaseClient } from "@/lib/supabase";
import type { CreditTransaction, CreditTransactionKind, Page } from "@/types/billing";
import { billingKey } from "../../api/billing-keys";

export const LEDGER_PAGE_SIZE = 20;

export interface LedgerFilter {
  kind: CreditTransactionKind | null;
  page: number;
}

export const ledgerQueryKey = (organizationId: string, filter: LedgerFilter) =>
  [...billingKey(organizationId), "ledger", filter.kind ?? "all", filter.page] as const;

/** One page of the credit ledger, newest first, optionally of one kind, with the exact total. */
export async function fetchLedger(
  supabase: BillingSupabaseClient,
  organizationId: string,
  filter: LedgerFilter,
): Promise<Page<CreditTransaction>> {
  const from = filter.page * LEDGER_PAGE_SIZE;
  const select = (head: boolean) => {
    const query = supabase
      .from("credit_transactions")
      .select("*", { count: "exact", head })
      .eq("organization_id", organizationId);
    return filter.kind ? query.eq("kind", filter.kind) : query;
  };
  const { data, error, count } = await select(false)
    .order("created_at", { ascending: false })
    .order("id", { ascending: false })
    .range(from, from + LEDGER_PAGE_SIZE - 1);
  if (isRangePastEnd(error)) {
    const counted = await select(true);
    throwIfError(counted.error);
    return { rows: [], total: counted.count ?? 0, page: filter.page, pageSize: LEDGER_PAGE_SIZE };
  }
  throwIfError(error);
  return { rows: data ?? [], total: count ?? 0, page: filter.page, pageSize: LEDGER_PAGE_SIZE };
}

export function useLedger(organizationId: string, filter: LedgerFilter) {
  const { supabase } = useBackend();
  return useQuery({
    queryKey: ledgerQueryKey(organizationId, filter),
    queryFn: () => fetchLedger(supabase, organizationId, filter),
    placeholderData: keepPreviousData,
    // Kept current like the balance beside it, so its newest row agrees with the balance.
    refetchInterval: LIVE_REFRESH_MS,
  });
}
