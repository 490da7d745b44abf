import { keepPreviousData, useMutation, useQuery } from "@tanstack/react-query";
import { throwIfError } from "@/lib/errors";
import { downloadCsv, toCsv } from "@/lib/csv";
import { useBackend, type BillingSupabaseClient } from "@/lib/supabase";
import type { CreditTransaction, CreditTransactionKind } from "@/types/billing";
import { billingKey } from "../../api/billing-keys";
import { useCreditBalance } from "../../api/get-credit-balance";
import { fetchEventNames } from "../../api/get-event-names";
import { toEntries } from "../ledger-grouping";
import { describeTransaction, referenceOf, type LedgerCatalog } from "../ledger-labels";
import { rangeBounds, type LedgerRange } from "../ledger-range";

/**
 * What the ledger view reads at once: the newest rows of the range. The page groups and folds
 * them in the browser, so it needs a whole day's rows together; a range holding more than
 * this says so and offers the CSV, which reads every row.
 */
export const LEDGER_ROW_LIMIT = 1000;

export interface LedgerFilter {
  kind: CreditTransactionKind | null;
  range: Pick<LedgerRange, "from" | "to">;
}

export interface LedgerView {
  /** Newest first, at most LEDGER_ROW_LIMIT. */
  rows: CreditTransaction[];
  /** Every row in the range (exact count). */
  total: number;
  catalog: LedgerCatalog;
}

export const ledgerQueryKey = (organizationId: string, filter: LedgerFilter) =>
  [...billingKey(organizationId), "ledger", filter.kind ?? "all", filter.range.from, filter.range.to] as const;

function rangeQuery(supabase: BillingSupabaseClient, organizationId: string, filter: LedgerFilter, count: boolean) {
  const { start, end } = rangeBounds(filter.range);
  const query = supabase
    .from("credit_transactions")
    .select("*", count ? { count: "exact" } : undefined)
    .eq("organization_id", organizationId)
    .gte("created_at", start)
    .lt("created_at", end);
  return filter.kind ? query.eq("kind", filter.kind) : query;
}

/** The catalog's event names and, for the grants among `rows`, what their payment bought. */
export async function fetchLedgerCatalog(
  supabase: BillingSupabaseClient,
  organizationId: string,
  rows: readonly CreditTransaction[],
): Promise<LedgerCatalog> {
  const references = [...new Set(rows.flatMap((r) => (r.kind === "grant" && r.reference && /^(cs|pi|in|ch)_/.test(r.reference) ? [r.reference] : [])))];
  const [eventNames, payments] = await Promise.all([
    fetchEventNames(supabase),
    references.length === 0
      ? Promise.resolve({ data: [] as { stripe_reference: string; description: string }[], error: null })
      : supabase.from("billing_history").select("stripe_reference, description").eq("organization_id", organizationId).in("stripe_reference", references),
  ]);
  throwIfError(payments.error);
  return {
    eventNames,
    paymentNames: new Map((payments.data ?? []).filter((p) => p.description !== "").map((p) => [p.stripe_reference, p.description])),
  };
}

/** The newest rows of the range (newest first) with the exact count and the names to show them by. */
export async function fetchLedger(supabase: BillingSupabaseClient, organizationId: string, filter: LedgerFilter): Promise<LedgerView> {
  const { data, error, count } = await rangeQuery(supabase, organizationId, filter, true)
    .order("created_at", { ascending: false })
    .order("id", { ascending: false })
    .range(0, LEDGER_ROW_LIMIT - 1);
  throwIfError(error);
  const rows = data ?? [];
  return { rows, total: count ?? rows.length, catalog: await fetchLedgerCatalog(supabase, organizationId, rows) };
}

/**
 * The ledger view, read again when the balance beside it changes, so its newest row agrees with
 * the balance. The balance is polled anyway (a one-row RPC); polling the ledger itself would
 * read up to LEDGER_ROW_LIMIT rows, their count and their names every few seconds for nothing.
 * A movement that leaves every figure of the balance as it was (a grant and an equal
 * consumption between two polls) shows with the next change, or on the next visit.
 */
export function useLedger(organizationId: string, filter: LedgerFilter) {
  const { supabase } = useBackend();
  const balance = useCreditBalance(organizationId);
  const stamp = balance.data ? [balance.data.total, balance.data.purchased, balance.data.subscription, balance.data.reserved ?? 0].join(":") : null;
  return useQuery({
    queryKey: [...ledgerQueryKey(organizationId, filter), stamp] as const,
    queryFn: () => fetchLedger(supabase, organizationId, filter),
    placeholderData: keepPreviousData,
    // Waits for the first balance (else it would read once without it and again with it), unless the balance cannot be read.
    enabled: stamp !== null || balance.isError,
  });
}

/** Every row of the range, oldest first, read LEDGER_ROW_LIMIT at a time (the API's page size). */
export async function fetchWholeLedger(supabase: BillingSupabaseClient, organizationId: string, filter: LedgerFilter): Promise<CreditTransaction[]> {
  const rows: CreditTransaction[] = [];
  for (;;) {
    const { data, error } = await rangeQuery(supabase, organizationId, filter, false)
      .order("created_at", { ascending: true })
      .order("id", { ascending: true })
      .range(rows.length, rows.length + LEDGER_ROW_LIMIT - 1);
    throwIfError(error);
    rows.push(...(data ?? []));
    if ((data ?? []).length < LEDGER_ROW_LIMIT) return rows;
  }
}

export const CSV_COLUMNS = ["date", "description", "amount", "balance after", "reference"] as const;

/**
 * One CSV row per movement (the rows one call wrote are one movement), oldest first, as a
 * statement reads: when, what in the catalog's words, the signed amount, the balance after it,
 * and what it refers to (the Stripe payment, the batch, the call or the reservation).
 */
export function ledgerCsvRows(rowsOldestFirst: readonly CreditTransaction[], catalog: LedgerCatalog): Record<(typeof CSV_COLUMNS)[number], string | number>[] {
  // toEntries merges adjacent rows of one call whichever way they are ordered; the newest row
  // of a call holds its final balance, so merge newest first and turn the result around.
  return toEntries([...rowsOldestFirst].reverse()).reverse().map((entry) => ({
    date: entry.createdAt,
    description: describeTransaction(entry.row, catalog),
    amount: entry.amount,
    "balance after": entry.balanceAfter,
    reference: referenceOf(entry.row),
  }));
}

/** Downloads the filtered range as `credits-<from>-<to>.csv`; resolves to the file name and its row count. */
export function useExportLedgerCsv(organizationId: string) {
  const { supabase } = useBackend();
  return useMutation({
    mutationFn: async (filter: LedgerFilter) => {
      const rows = await fetchWholeLedger(supabase, organizationId, filter);
      const catalog = await fetchLedgerCatalog(supabase, organizationId, rows);
      const csvRows = ledgerCsvRows(rows, catalog);
      const csv = await toCsv(csvRows.length > 0 ? csvRows : [Object.fromEntries(CSV_COLUMNS.map((c) => [c, ""]))]);
      // An empty range still gets its header line, and no blank row.
      const text = csvRows.length > 0 ? csv : csv.split("\r\n")[0]!;
      const name = `credits-${filter.range.from}-to-${filter.range.to}${filter.kind ? `-${filter.kind}` : ""}.csv`;
      downloadCsv(name, text);
      return { name, rows: csvRows.length };
    },
  });
}
