/**
 * Root of every operator console query key: an adjustment, a re-drive or a repair invalidates
 * the whole console, since each can move figures on every panel.
 */
export const operatorKey = ["operator"] as const;

/** A period the console reads figures for: ISO instants, `from` inclusive, `to` exclusive. */
export interface Period {
  from: string;
  to: string;
}
