import { keepPreviousData, useQuery } from "@tanstack/react-query";
import { throwIfError } from "@/lib/errors";
import { useBackend, type BillingSupabaseClient } from "@/lib/supabase";
import type { Database } from "@/types/database";
import { operatorKey } from "./operator-keys";

export type OrganizationRow = Database["public"]["Functions"]["operator_organizations"]["Returns"][number];
export type OrganizationSort = "name" | "created_at" | "status" | "balance" | "consumed_this_month" | "last_payment_at";

export interface OrganizationQuery {
  search: string;
  sort: OrganizationSort;
  descending: boolean;
  page: number;
}

export const ORGANIZATIONS_PAGE_SIZE = 20;

export const organizationsQueryKey = (query: OrganizationQuery) => [...operatorKey, "organizations", query] as const;

/** One page of organizations, searched and sorted by the database. */
export async function fetchOrganizations(
  supabase: BillingSupabaseClient,
  query: OrganizationQuery,
): Promise<{ rows: OrganizationRow[]; total: number }> {
  const { data, error } = await supabase.rpc("operator_organizations", {
    p_search: query.search,
    p_sort: query.sort,
    p_descending: query.descending,
    p_limit: ORGANIZATIONS_PAGE_SIZE,
    p_offset: query.page * ORGANIZATIONS_PAGE_SIZE,
  });
  throwIfError(error);
  const rows = data ?? [];
  return { rows, total: Number(rows[0]?.total_count ?? 0) };
}

export function useOrganizations(query: OrganizationQuery) {
  const { supabase } = useBackend();
  return useQuery({
    queryKey: organizationsQueryKey(query),
    queryFn: () => fetchOrganizations(supabase, query),
    placeholderData: keepPreviousData,
  });
}
