import { errorMessage } from "@/lib/errors";
import { useExportCsv } from "../api/export-csv";
import type { Period } from "../api/operator-keys";

/** Download the ledger and the billing history (one organization or all) for the period, as CSV. */
export function ExportButtons({ organizationId, period, label }: { organizationId: string | null; period: Period; label: string }) {
  const exporter = useExportCsv();
  return (
    <div className="inline-form" role="group" aria-label={`Export ${label}`}>
      <button type="button" className="button secondary" disabled={exporter.isPending}
        onClick={() => exporter.mutate({ kind: "ledger", organizationId, period })}>
        Export ledger (CSV)
      </button>
      <button type="button" className="button secondary" disabled={exporter.isPending}
        onClick={() => exporter.mutate({ kind: "history", organizationId, period })}>
        Export billing history (CSV)
      </button>
      {exporter.isError ? <span role="alert" className="field-error">{errorMessage(exporter.error)}</span> : null}
      {exporter.isSuccess ? <span role="status" className="muted">Downloaded {exporter.data.name}.</span> : null}
    </div>
  );
}
