import { useId, useMemo, useState } from "react";
import { EmptyState, Pager, QueryView, Skeleton } from "@/components/status";
import { errorMessage } from "@/lib/errors";
import { formatCreditNumber } from "@/lib/format";
import { CREDIT_TRANSACTION_KINDS, type CreditTransactionKind } from "@/types/billing";
import { BUY_CREDITS, NextStep } from "../../components/next-step";
import { LEDGER_ROW_LIMIT, useExportLedgerCsv, useLedger, type LedgerFilter } from "../api/get-ledger";
import { dayOf, groupByDay, lineCount, pageOfDays, toEntries } from "../ledger-grouping";
import { KIND_LABELS } from "../ledger-labels";
import { addDays, isDay, presetRange, RANGE_PRESETS, type LedgerRange } from "../ledger-range";
import { useLedgerRangeInUrl } from "../use-ledger-range";
import { LedgerDays } from "./ledger-days";

/** Lines (a folded run counts as one) per page. */
export const LEDGER_LINES_PER_PAGE = 25;

/** One end of the range: a labelled date input that reports only whole days (YYYY-MM-DD). */
function DayField({ label, value, bounds, onDay }: { label: string; value: string; bounds: { min?: string; max?: string }; onDay: (day: string) => void }) {
  const id = useId();
  return (
    <span className="range-field">
      <label htmlFor={id}>{label}</label>
      <input
        id={id}
        type="date"
        value={value}
        min={bounds.min}
        max={bounds.max}
        required
        onChange={(e) => {
          if (isDay(e.target.value)) onDay(e.target.value);
        }}
      />
    </span>
  );
}

function RangePicker({ range, onChange }: { range: LedgerRange; onChange: (range: LedgerRange) => void }) {
  const today = dayOf(new Date().toISOString());
  return (
    <div className="ledger-range">
      <div role="group" aria-label="Date range" className="range-presets">
        {RANGE_PRESETS.map((preset) => (
          <button
            key={preset}
            type="button"
            className="button secondary"
            aria-pressed={range.preset === preset}
            onClick={() => onChange(presetRange(preset, today))}
          >
            {preset} days
          </button>
        ))}
      </div>
      <DayField
        label="From"
        value={range.from}
        bounds={{ max: range.to }}
        // A start after the end moves the end with it, so the range never turns inside out.
        onDay={(from) => onChange({ from, to: from > range.to ? from : range.to, preset: null })}
      />
      <DayField
        label="To"
        value={range.to}
        bounds={{ min: range.from }}
        onDay={(to) => onChange({ from: to < range.from ? to : range.from, to, preset: null })}
      />
    </div>
  );
}

function ExportButton({ organizationId, filter }: { organizationId: string; filter: LedgerFilter }) {
  const exporter = useExportLedgerCsv(organizationId);
  return (
    <div className="inline-form">
      <button type="button" className="button secondary" disabled={exporter.isPending} onClick={() => exporter.mutate(filter)}>
        {exporter.isPending ? "Preparing CSV…" : "Download CSV"}
      </button>
      {exporter.isError ? <span role="alert" className="field-error">{errorMessage(exporter.error)}</span> : null}
      {exporter.isSuccess ? (
        <span role="status" className="muted">
          Downloaded {exporter.data.name} ({formatCreditNumber(exporter.data.rows)} {exporter.data.rows === 1 ? "row" : "rows"}).
        </span>
      ) : null}
    </div>
  );
}

/**
 * The ledger of the chosen days in the catalog's words: grouped by day, identical calls folded,
 * filterable by type and date range (kept in the address), downloadable as CSV.
 */
export function Ledger({ organizationId }: { organizationId: string }) {
  const [range, setRange] = useLedgerRangeInUrl();
  const [kind, setKind] = useState<CreditTransactionKind | null>(null);
  const [page, setPage] = useState(0);
  const filter: LedgerFilter = { kind, range: { from: range.from, to: range.to } };
  const ledger = useLedger(organizationId, filter);
  const typeId = useId();
  const days = useMemo(() => (ledger.data ? groupByDay(toEntries(ledger.data.rows)) : []), [ledger.data]);
  const lines = lineCount(days);
  const pages = Math.max(1, Math.ceil(lines / LEDGER_LINES_PER_PAGE));
  const shownPage = Math.min(page, pages - 1);
  const changeRange = (next: LedgerRange) => {
    setRange(next);
    setPage(0);
  };
  const dayCount = Math.round((Date.parse(`${addDays(range.to, 1)}T00:00:00Z`) - Date.parse(`${range.from}T00:00:00Z`)) / 86_400_000);
  return (
    <div className="stack">
      <div className="inline-form ledger-filters">
        <RangePicker range={range} onChange={changeRange} />
        <label htmlFor={typeId}>Type</label>
        <select
          id={typeId}
          value={kind ?? ""}
          onChange={(event) => {
            setKind(event.target.value === "" ? null : (event.target.value as CreditTransactionKind));
            setPage(0);
          }}
        >
          <option value="">All types</option>
          {CREDIT_TRANSACTION_KINDS.map((k) => (
            <option key={k} value={k}>
              {KIND_LABELS[k]}
            </option>
          ))}
        </select>
        <ExportButton organizationId={organizationId} filter={filter} />
      </div>
      <QueryView query={ledger} loading={<Skeleton label="Loading transactions…" lines={6} />} errorTitle="Transactions could not be loaded.">
        {(view) =>
          view.rows.length === 0 ? (
            <EmptyState>
              {kind
                ? `No “${KIND_LABELS[kind]}” transactions in these ${dayCount} days.`
                : `No credit transactions in these ${dayCount} days.`}{" "}
              {range.preset !== 90 ? (
                <button type="button" className="link-button" onClick={() => changeRange(presetRange(90, dayOf(new Date().toISOString())))}>
                  Show the last 90 days
                </button>
              ) : null}
              <NextStep actions={[BUY_CREDITS]} toDo="buy credits" />
            </EmptyState>
          ) : (
            <>
              {view.total > view.rows.length ? (
                <p className="notice" role="note">
                  Showing the newest {formatCreditNumber(view.rows.length)} of {formatCreditNumber(view.total)} transactions in this range.
                  Choose fewer days, or download the CSV for all of them.
                </p>
              ) : null}
              <div className="table-scroll">
                <LedgerDays
                  days={pageOfDays(days, shownPage * LEDGER_LINES_PER_PAGE, LEDGER_LINES_PER_PAGE)}
                  catalog={view.catalog}
                  busy={ledger.isPlaceholderData}
                />
              </div>
              {pages > 1 ? <Pager label="Transaction pages" page={shownPage} pageSize={LEDGER_LINES_PER_PAGE} total={lines} onPage={setPage} /> : null}
            </>
          )
        }
      </QueryView>
    </div>
  );
}
