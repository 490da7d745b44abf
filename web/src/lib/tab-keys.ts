/**
 * The WAI-ARIA tabs keyboard pattern shared by every tab list: ArrowLeft / ArrowRight move to
 * the previous / next tab (wrapping), Home and End to the first and last. Returns the tab the
 * key selects, or null when the key is not one of them (so the caller lets the browser have it).
 */
export function tabForKey<Id>(key: string, ids: readonly Id[], current: Id): Id | null {
  if (ids.length === 0) return null;
  const index = ids.indexOf(current);
  if (key === "ArrowRight") return ids[(index + 1) % ids.length]!;
  if (key === "ArrowLeft") return ids[(index - 1 + ids.length) % ids.length]!;
  if (key === "Home") return ids[0]!;
  if (key === "End") return ids[ids.length - 1]!;
  return null;
}
