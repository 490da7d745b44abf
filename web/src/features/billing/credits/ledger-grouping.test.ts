import { describe, expect, it } from "vitest";
import { transaction } from "@/test/fixtures";
import { groupByDay, lineCount, pageOfDays, toEntries } from "./ledger-grouping";

/** n premium calls of -5 each, one second apart, newest first, ending with balance `last`. */
function premiumCalls(n: number, day: string, last: number, firstId = 1000) {
  return Array.from({ length: n }, (_, i) =>
    transaction(firstId - i, {
      event_key: "api_call_premium", amount: -5, balance_after: last + 5 * i, consumption_id: `c-${firstId - i}`,
      created_at: `${day}T12:${String(59 - Math.floor(i / 60)).padStart(2, "0")}:${String(59 - (i % 60)).padStart(2, "0")}Z`,
    }));
}

describe("ledger grouping", () => {
  it("makes one entry of the rows one consumption wrote across two lots", () => {
    const rows = [
      transaction(2, { source: "subscription", amount: -50, balance_after: 50, consumption_id: "c-1" }),
      transaction(1, { source: "purchased", amount: -100, balance_after: 100, consumption_id: "c-1" }),
    ];
    const [entry, ...rest] = toEntries(rows);
    expect(rest).toEqual([]);
    expect(entry).toMatchObject({ amount: -150, balanceAfter: 50, sources: ["subscription", "purchased"] });
    expect(entry!.rows).toHaveLength(2);
  });

  it("folds 60 identical consumptions of one day into one line, keeping each on expand", () => {
    const days = groupByDay(toEntries(premiumCalls(60, "2026-11-22", 400)), "UTC");
    expect(days).toHaveLength(1);
    expect(days[0]!.day).toBe("2026-11-22");
    expect(days[0]!.net).toBe(-300);
    expect(days[0]!.lines).toHaveLength(1);
    expect(days[0]!.lines[0]).toMatchObject({ folded: true, amount: -300, balanceAfter: 400 });
    expect(days[0]!.lines[0]!.entries).toHaveLength(60);
  });

  it("does not fold across days, across another event, or calls of a different size", () => {
    const rows = [
      ...premiumCalls(2, "2026-11-23", 900, 50),
      transaction(40, { event_key: "ai_inference", amount: -25, consumption_id: "c-ai", created_at: "2026-11-22T18:00:00Z" }),
      ...premiumCalls(2, "2026-11-22", 935, 30),
      transaction(20, { event_key: "api_call_premium", amount: -10, consumption_id: "c-q2", created_at: "2026-11-22T08:00:00Z" }),
      transaction(10, { kind: "grant", source: "purchased", amount: 1000, event_key: null, created_at: "2026-11-22T07:00:00Z" }),
    ];
    const days = groupByDay(toEntries(rows), "UTC");
    expect(days.map((d) => d.day)).toEqual(["2026-11-23", "2026-11-22"]);
    expect(days[0]!.lines.map((l) => l.entries.length)).toEqual([2]);
    expect(days[1]!.lines.map((l) => [l.entries.length, l.amount])).toEqual([[1, -25], [2, -10], [1, -10], [1, 1000]]);
    expect(days[1]!.net).toBe(-25 - 10 - 10 + 1000);
  });

  it("puts a movement on the reader's calendar day", () => {
    const late = [transaction(1, { created_at: "2026-11-22T23:30:00Z" })];
    expect(groupByDay(toEntries(late), "UTC")[0]!.day).toBe("2026-11-22");
    expect(groupByDay(toEntries(late), "Asia/Tokyo")[0]!.day).toBe("2026-11-23");
  });

  it("pages by lines, a cut day keeping its whole net on both pages", () => {
    const rows = [
      transaction(5, { kind: "grant", amount: 100, event_key: null, created_at: "2026-11-23T10:00:00Z" }),
      transaction(4, { event_key: "a", amount: -1, created_at: "2026-11-22T10:00:04Z" }),
      transaction(3, { event_key: "b", amount: -2, created_at: "2026-11-22T10:00:03Z" }),
      transaction(2, { event_key: "c", amount: -3, created_at: "2026-11-22T10:00:02Z" }),
    ];
    const days = groupByDay(toEntries(rows), "UTC");
    expect(lineCount(days)).toBe(4);
    const first = pageOfDays(days, 0, 2);
    expect(first.map((d) => [d.day, d.lines.length, d.net])).toEqual([["2026-11-23", 1, 100], ["2026-11-22", 1, -6]]);
    const second = pageOfDays(days, 2, 2);
    expect(second.map((d) => [d.day, d.lines.length, d.net])).toEqual([["2026-11-22", 2, -6]]);
  });
});
