/**
 * What a member downloads before the first screen (web/dist, built by the globalSetup as
 * `npm run build` builds it): within the budget, and none of the supabase-js parts the
 * dashboard never uses (Realtime, Storage, Functions), which are a sixth of the budget.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { INITIAL_BUDGET_KB, measureDist } from "../../scripts/initial-javascript.mjs";

const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../dist");
const { initial } = measureDist(dist);

describe("the first screen's JavaScript", () => {
  it(`stays within ${INITIAL_BUDGET_KB} KB gzipped`, () => {
    expect(initial.length).toBeGreaterThan(0);
    const total = initial.reduce((sum, chunk) => sum + chunk.kb, 0);
    expect(total).toBeLessThanOrEqual(INITIAL_BUDGET_KB);
  });

  it("carries no Realtime, Storage or Functions client (the dashboard uses none of them)", () => {
    // Strings each of those clients cannot do without: the Realtime and Storage endpoints,
    // Phoenix's join event, the Functions client's region header.
    for (const marker of ["realtime/v1", "storage/v1", "phx_join", "x-region"]) {
      expect(initial.filter((chunk) => chunk.text.includes(marker)).map((chunk) => chunk.file), marker).toEqual([]);
    }
  });
});
