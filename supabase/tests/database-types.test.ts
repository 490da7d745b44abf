/**
 * The generated database types (supabase/types/database.ts), which the Edge Functions and the
 * dashboard call SQL through, match the migrated database: a migration that renames an
 * argument without regenerating them fails here, not in production.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

test("the generated database types match the migrations (run npm run gen:types when this fails)", async () => {
  const url = process.env.TEST_DATABASE_URL;
  assert.ok(url, "TEST_DATABASE_URL is set by npm test");
  const { stdout: generated } = await promisify(execFile)(
    path.join(repoRoot, "node_modules", ".bin", "supabase"),
    ["gen", "types", "typescript", "--db-url", url, "--schema", "public"],
    { env: { ...process.env, SUPABASE_TELEMETRY_DISABLED: "1", DO_NOT_TRACK: "1", PGSSLMODE: process.env.PGSSLMODE ?? "disable" }, maxBuffer: 16 * 1024 * 1024 },
  );
  const committed = await readFile(path.join(repoRoot, "supabase", "types", "database.ts"), "utf8");
  // The committed file is the generator's output under a one-line header.
  const body = committed.slice(committed.indexOf("\n") + 1);
  assert.ok(body === generated, "supabase/types/database.ts differs from the migrated database: run npm run gen:types");
});
