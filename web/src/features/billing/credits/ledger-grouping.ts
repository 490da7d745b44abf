/**
 * The ledger as a member reads it: one entry per operation (a consumption that drew on a
 * purchased and a subscription lot is one call, not two rows), entries grouped by day with
 * the day's net, and runs of identical consumptions folded into one line ("Premium API call
 * × 60, −300") whose entries stay available to expand. Pure functions over rows that are
 * newest first, as the ledger query returns them.
 */
import type { CreditSource, CreditTransaction } from "@/types/billing";
import { batchIdOf } from "./ledger-labels";

/** One operation: the ledger rows one call wrote, newest first. */
export interface LedgerEntry {
  key: string;
  rows: CreditTransaction[];
  /** The first row: kind, event, reference and description are the same on every row of one operation. */
  row: CreditTransaction;
  amount: number;
  /** The balance once the whole operation was written (its newest row's). */
  balanceAfter: number;
  sources: CreditSource[];
  createdAt: string;
}

/** A line of a day: one entry, or a run of identical consumptions folded together. */
export interface LedgerLine {
  key: string;
  entries: LedgerEntry[];
  amount: number;
  balanceAfter: number;
  folded: boolean;
}

export interface LedgerDay {
  /** YYYY-MM-DD in the reader's time zone. */
  day: string;
  net: number;
  lines: LedgerLine[];
}

/** Rows written by one call share this key; anything else stands alone. */
function operationKey(row: CreditTransaction): string {
  if (row.kind === "consumption" && row.consumption_id) return `consumption:${row.consumption_id}`;
  const batch = batchIdOf(row.reference);
  if (batch !== null) return `batch:${batch}`;
  if ((row.kind === "reservation" || row.kind === "release") && row.reservation_id) return `${row.kind}:${row.reservation_id}`;
  if (row.kind === "refund" && row.reference) return `refund:${row.reference}`;
  return `row:${row.id}`;
}

/** Adjacent rows of one operation become one entry (one call's rows are written together). */
export function toEntries(rows: readonly CreditTransaction[]): LedgerEntry[] {
  const entries: LedgerEntry[] = [];
  for (const row of rows) {
    const key = operationKey(row);
    const last = entries.at(-1);
    if (last && last.key === key) {
      last.rows.push(row);
      last.amount += row.amount;
      if (!last.sources.includes(row.source)) last.sources.push(row.source);
      continue;
    }
    entries.push({ key, rows: [row], row, amount: row.amount, balanceAfter: row.balance_after, sources: [row.source], createdAt: row.created_at });
  }
  return entries;
}

/** The calendar day of a timestamp in `timeZone` (the reader's by default), as YYYY-MM-DD. */
export function dayOf(iso: string, timeZone?: string): string {
  // en-CA writes dates as YYYY-MM-DD.
  return new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).format(new Date(iso));
}

/** Consumptions of one event for the same amount per call fold together. */
function foldKey(entry: LedgerEntry): string | null {
  if (entry.row.kind !== "consumption" || !entry.row.event_key) return null;
  return `${entry.row.event_key}:${entry.amount}`;
}

/** Entries (newest first) grouped by day, newest day first, consecutive identical consumptions folded. */
export function groupByDay(entries: readonly LedgerEntry[], timeZone?: string): LedgerDay[] {
  const days: LedgerDay[] = [];
  let lastFoldKey: string | null = null;
  for (const entry of entries) {
    const day = dayOf(entry.createdAt, timeZone);
    let current = days.at(-1);
    if (!current || current.day !== day) {
      current = { day, net: 0, lines: [] };
      days.push(current);
      lastFoldKey = null;
    }
    current.net += entry.amount;
    const fold = foldKey(entry);
    const line = current.lines.at(-1);
    if (line && fold !== null && fold === lastFoldKey) {
      line.entries.push(entry);
      line.amount += entry.amount;
      line.folded = true;
      continue;
    }
    // A line's balance is the one after its newest entry: rows come newest first.
    current.lines.push({ key: entry.key, entries: [entry], amount: entry.amount, balanceAfter: entry.balanceAfter, folded: false });
    lastFoldKey = fold;
  }
  return days;
}

/** How many lines the days hold (what the pager counts). */
export function lineCount(days: readonly LedgerDay[]): number {
  return days.reduce((sum, day) => sum + day.lines.length, 0);
}

/**
 * The days holding lines [from, from + size) of the whole list, each day keeping its full net
 * (a day cut by the page boundary shows its net for the whole day, on every page it spans).
 */
export function pageOfDays(days: readonly LedgerDay[], from: number, size: number): LedgerDay[] {
  const page: LedgerDay[] = [];
  let index = 0;
  for (const day of days) {
    const start = Math.max(from - index, 0);
    const end = Math.min(from + size - index, day.lines.length);
    if (start < end) page.push({ ...day, lines: day.lines.slice(start, end) });
    index += day.lines.length;
    if (index >= from + size) break;
  }
  return page;
}
