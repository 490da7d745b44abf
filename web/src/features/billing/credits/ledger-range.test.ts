import { describe, expect, it } from "vitest";
import { addDays, isDay, rangeFromSearch, searchWithRange } from "./ledger-range";

const TODAY = "2026-12-01";

describe("ledger date range in the address", () => {
  it("is the last 30 days when the address names none or something unreadable", () => {
    for (const search of ["", "?tab=credits", "?ledger_days=12", "?ledger_from=2026-02-30&ledger_to=2026-03-01", "?ledger_from=2026-11-20&ledger_to=2026-11-01"]) {
      expect(rangeFromSearch(search, TODAY)).toEqual({ from: "2026-11-02", to: TODAY, preset: 30 });
    }
  });

  it("reads the presets and chosen dates back from what it wrote, keeping the tab", () => {
    const week = searchWithRange("?tab=credits", { from: "2026-11-25", to: TODAY, preset: 7 });
    expect(week).toBe("?tab=credits&ledger_days=7");
    expect(rangeFromSearch(week, TODAY)).toEqual({ from: "2026-11-25", to: TODAY, preset: 7 });
    const chosen = searchWithRange(week, { from: "2026-10-01", to: "2026-10-31", preset: null });
    expect(chosen).toBe("?tab=credits&ledger_from=2026-10-01&ledger_to=2026-10-31");
    expect(rangeFromSearch(chosen, TODAY)).toEqual({ from: "2026-10-01", to: "2026-10-31", preset: null });
    expect(searchWithRange(chosen, { from: "2026-11-02", to: TODAY, preset: 30 })).toBe("?tab=credits");
  });

  it("counts calendar days across months and leap years", () => {
    expect(addDays("2028-03-01", -1)).toBe("2028-02-29");
    expect(addDays("2026-12-31", 1)).toBe("2027-01-01");
    expect(isDay("2027-02-29")).toBe(false);
  });
});
