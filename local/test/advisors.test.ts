/**
 * Supabase's own security and performance linter, against the migrated test database.
 */
import assert from "node:assert/strict";
import { test } from "node:test";
import { findingKey, runAdvisors } from "../stack/advisors.ts";

test("supabase db advisors reports no ERROR, and every WARN left has a written reason", async () => {
  const url = process.env.TEST_DATABASE_URL;
  assert.ok(url, "TEST_DATABASE_URL is set by npm test");
  const report = await runAdvisors(url);
  assert.deepEqual(report.errors.map((f) => `${f.name}: ${f.detail}`), [], "no ERROR-level finding");
  assert.deepEqual(
    report.unexplainedWarnings.map((f) => `${findingKey(f)}: ${f.detail}`),
    [],
    "every WARN is explained in supabase/advisor-waivers.json",
  );
});
