import { describe, expect, it } from "vitest";
import { dateTickIndices, usageTicks } from "./usage-scale";

describe("the usage chart's axes", () => {
  it("the y axis ends on a round figure at or above the peak day, in steps of 1, 2 or 5", () => {
    expect(usageTicks(55)).toEqual([0, 20, 40, 60]);
    expect(usageTicks(100)).toEqual([0, 50, 100]);
    expect(usageTicks(101)).toEqual([0, 50, 100, 150]);
    expect(usageTicks(12_345)).toEqual([0, 5_000, 10_000, 15_000]);
  });

  it("small peaks keep whole-credit ticks, and a day with no use still has a scale", () => {
    expect(usageTicks(3)).toEqual([0, 1, 2, 3]);
    expect(usageTicks(0)).toEqual([0, 1]);
  });

  it("dates go under the first day, every week and the last day, none crowding the last", () => {
    expect(dateTickIndices(30)).toEqual([0, 7, 14, 21, 29]);
    expect(dateTickIndices(24)).toEqual([0, 7, 14, 23]);
    expect(dateTickIndices(1)).toEqual([0]);
  });
});
