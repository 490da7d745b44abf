import { Fragment, useState } from "react";
import { formatCreditDelta, formatCreditNumber } from "@/lib/format";
import type { LedgerDay, LedgerEntry, LedgerLine } from "../ledger-grouping";
import { describeTransaction, SOURCE_LABELS, type LedgerCatalog } from "../ledger-labels";

/** "Sun, Nov 22, 2026" for a YYYY-MM-DD day (at local noon, so no time zone moves it). */
function formatDay(day: string): string {
  return new Intl.DateTimeFormat(undefined, { weekday: "short", month: "short", day: "numeric", year: "numeric" }).format(new Date(`${day}T12:00:00`));
}

function formatTime(iso: string): string {
  return new Intl.DateTimeFormat(undefined, { timeStyle: "short" }).format(new Date(iso));
}

function Sources({ entry }: { entry: LedgerEntry }) {
  return <small className="muted ledger-source">{entry.sources.map((s) => SOURCE_LABELS[s]).join(" and ")}</small>;
}

function Amount({ credits }: { credits: number }) {
  return <>{formatCreditDelta(credits)}</>;
}

function EntryRow({ entry, catalog, sub = false }: { entry: LedgerEntry; catalog: LedgerCatalog; sub?: boolean }) {
  return (
    <tr className={sub ? "ledger-sub" : undefined}>
      <td data-label="Description" className="ledger-description">
        <span>{describeTransaction(entry.row, catalog)}</span> <Sources entry={entry} />
      </td>
      <td data-label="Amount" className={`num ${entry.amount < 0 ? "negative" : "positive"}`}><Amount credits={entry.amount} /></td>
      <td data-label="Balance after" className="num">{formatCreditNumber(entry.balanceAfter)}</td>
      <td data-label="Time">{formatTime(entry.createdAt)}</td>
    </tr>
  );
}

function FoldedRows({ line, catalog, expanded, onToggle }: { line: LedgerLine; catalog: LedgerCatalog; expanded: boolean; onToggle: () => void }) {
  const newest = line.entries[0]!;
  const oldest = line.entries.at(-1)!;
  const name = describeTransaction(newest.row, catalog);
  const count = line.entries.length;
  return (
    <>
      <tr className="ledger-folded">
        <td data-label="Description" className="ledger-description">
          <span>
            {name} × {formatCreditNumber(count)}
          </span>{" "}
          <button type="button" className="link-button" aria-expanded={expanded} onClick={onToggle}>
            {expanded ? "Hide" : "Show"} all {formatCreditNumber(count)}
          </button>
        </td>
        <td data-label="Amount" className="num negative"><Amount credits={line.amount} /></td>
        <td data-label="Balance after" className="num">{formatCreditNumber(line.balanceAfter)}</td>
        <td data-label="Time">
          {formatTime(oldest.createdAt) === formatTime(newest.createdAt)
            ? formatTime(newest.createdAt)
            : `${formatTime(oldest.createdAt)} – ${formatTime(newest.createdAt)}`}
        </td>
      </tr>
      {expanded ? line.entries.map((entry) => <EntryRow key={entry.key} entry={entry} catalog={catalog} sub />) : null}
    </>
  );
}

/**
 * The ledger by day: each day a heading with the day's date and net, then its lines, a run of
 * identical consumptions as one line that expands to its calls. A table on wide screens, one
 * card per line on phones (table.cards-on-phone).
 */
export function LedgerDays({ days, catalog, busy }: { days: readonly LedgerDay[]; catalog: LedgerCatalog; busy: boolean }) {
  const [expanded, setExpanded] = useState<ReadonlySet<string>>(new Set());
  const toggle = (key: string) =>
    setExpanded((current) => {
      const next = new Set(current);
      if (next.has(key)) next.delete(key);
      else next.add(key);
      return next;
    });
  return (
    <table className="cards-on-phone ledger" aria-busy={busy}>
      <caption className="visually-hidden">Credit transactions, newest first</caption>
      <thead>
        <tr>
          <th scope="col">Description</th>
          <th scope="col" className="num">Amount</th>
          <th scope="col" className="num">Balance after</th>
          <th scope="col">Time</th>
        </tr>
      </thead>
      {days.map((day) => (
        <tbody key={day.day}>
          <tr className="ledger-day">
            <th scope="rowgroup" colSpan={4}>
              <span>{formatDay(day.day)}</span>{" "}
              <span className={`ledger-day-net ${day.net < 0 ? "negative" : "positive"}`}>
                net {formatCreditDelta(day.net)}
              </span>
            </th>
          </tr>
          {day.lines.map((line) => (
            <Fragment key={line.key}>
              {line.folded ? (
                <FoldedRows line={line} catalog={catalog} expanded={expanded.has(line.key)} onToggle={() => toggle(line.key)} />
              ) : (
                <EntryRow entry={line.entries[0]!} catalog={catalog} />
              )}
            </Fragment>
          ))}
        </tbody>
      ))}
    </table>
  );
}
