import { describe, expect, it } from "vitest";
import { formatDateTime } from "@/lib/format";
import { alertState } from "./alert-state";

describe("an alert's ending in the operator console", () => {
  const at = "2026-12-01T10:00:00Z";

  it("is nothing while the alert is open", () => {
    expect(alertState({ dismissed_at: null, resolved_at: null, resolved_reason: null })).toBe("");
  });

  it("says a member dismissed it", () => {
    expect(alertState({ dismissed_at: at, resolved_at: null, resolved_reason: null })).toBe(" · dismissed");
  });

  it("says it resolved by itself, when and why, even if it was also dismissed", () => {
    expect(alertState({ dismissed_at: at, resolved_at: at, resolved_reason: "balance_restored" }))
      .toBe(` · resolved ${formatDateTime(at)} (balance restored)`);
  });
});
