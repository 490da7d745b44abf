import { useMutation } from "@tanstack/react-query";
import { throwIfError } from "@/lib/errors";
import { useBackend, type BillingSupabaseClient } from "@/lib/supabase";
import { downloadCsv, toCsv } from "@/lib/csv";
import type { Period } from "./operator-keys";

export type ExportKind = "ledger" | "history";

/**
 * The ledger or the billing history of one organization (or all, null) for a period, as CSV
 * text, oldest first, from operator_export_ledger / operator_export_history.
 */
export async function exportCsv(
  supabase: BillingSupabaseClient,
  kind: ExportKind,
  organizationId: string | null,
  period: Period,
): Promise<string> {
  const args = { p_organization_id: organizationId as string, p_from: period.from, p_to: period.to };
  const { data, error } = kind === "ledger"
    ? await supabase.rpc("operator_export_ledger", args)
    : await supabase.rpc("operator_export_history", args);
  throwIfError(error);
  return toCsv((data ?? []) as unknown as Record<string, unknown>[]);
}

/** Downloads the export as a file named after what it holds. */
export function useExportCsv() {
  const { supabase } = useBackend();
  return useMutation({
    mutationFn: async (request: { kind: ExportKind; organizationId: string | null; period: Period }) => {
      const csv = await exportCsv(supabase, request.kind, request.organizationId, request.period);
      const name = `${request.kind}-${request.organizationId ?? "all"}-${request.period.from.slice(0, 10)}-${request.period.to.slice(0, 10)}.csv`;
      downloadCsv(name, csv);
      return { name, csv };
    },
  });
}
