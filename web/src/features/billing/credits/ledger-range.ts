/**
 * The ledger's date range, kept in the address so a reload, a bookmark or a shared link shows
 * the same transactions: `ledger_days=7|30|90` for the presets (they move with the calendar),
 * or `ledger_from=YYYY-MM-DD&ledger_to=YYYY-MM-DD` for chosen dates. Days are the reader's
 * calendar days; nothing given (or anything unreadable) means the last 30 days.
 */
export const RANGE_PRESETS = [7, 30, 90] as const;
export type RangePreset = (typeof RANGE_PRESETS)[number];
export const DEFAULT_PRESET: RangePreset = 30;

export const DAYS_PARAM = "ledger_days";
export const FROM_PARAM = "ledger_from";
export const TO_PARAM = "ledger_to";

export interface LedgerRange {
  /** First day shown, YYYY-MM-DD, inclusive. */
  from: string;
  /** Last day shown, YYYY-MM-DD, inclusive. */
  to: string;
  /** The preset it came from, or null for chosen dates. */
  preset: RangePreset | null;
}

const DAY = /^\d{4}-\d{2}-\d{2}$/;

/** Whether `day` is a real calendar day written YYYY-MM-DD. */
export function isDay(day: string | null): day is string {
  if (day === null || !DAY.test(day)) return false;
  const date = new Date(`${day}T00:00:00Z`);
  return !Number.isNaN(date.getTime()) && date.toISOString().slice(0, 10) === day;
}

/** `day` moved by `days` calendar days. */
export function addDays(day: string, days: number): string {
  const date = new Date(`${day}T00:00:00Z`);
  date.setUTCDate(date.getUTCDate() + days);
  return date.toISOString().slice(0, 10);
}

/** The last `preset` days up to and including `today`. */
export function presetRange(preset: RangePreset, today: string): LedgerRange {
  return { from: addDays(today, -(preset - 1)), to: today, preset };
}

/** The range a query string names (see the top of this file). */
export function rangeFromSearch(search: string, today: string): LedgerRange {
  const params = new URLSearchParams(search);
  const from = params.get(FROM_PARAM);
  const to = params.get(TO_PARAM);
  if (isDay(from) && isDay(to) && from <= to) return { from, to, preset: null };
  const days = Number(params.get(DAYS_PARAM));
  const preset = RANGE_PRESETS.find((p) => p === days) ?? DEFAULT_PRESET;
  return presetRange(preset, today);
}

/** The query string for `range`, keeping every other parameter (the tab); the default range writes nothing. */
export function searchWithRange(search: string, range: LedgerRange): string {
  const params = new URLSearchParams(search);
  params.delete(DAYS_PARAM);
  params.delete(FROM_PARAM);
  params.delete(TO_PARAM);
  if (range.preset !== null) {
    if (range.preset !== DEFAULT_PRESET) params.set(DAYS_PARAM, String(range.preset));
  } else {
    params.set(FROM_PARAM, range.from);
    params.set(TO_PARAM, range.to);
  }
  const query = params.toString();
  return query ? `?${query}` : "";
}

/** The instants the range covers: from the start of its first day to the start of the day after its last, in the reader's time zone. */
export function rangeBounds(range: Pick<LedgerRange, "from" | "to">): { start: string; end: string } {
  // "YYYY-MM-DDT00:00:00" without a zone is local time.
  return {
    start: new Date(`${range.from}T00:00:00`).toISOString(),
    end: new Date(`${addDays(range.to, 1)}T00:00:00`).toISOString(),
  };
}
