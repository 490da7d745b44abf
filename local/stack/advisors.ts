/**
 * Supabase's database linter (`supabase db advisors`), run with the real CLI. The project
 * bar: no finding of level ERROR, and every WARN that remains has a written reason in
 * supabase/advisor-waivers.json (keyed by the finding's cache key).
 */
import { readFile } from "node:fs/promises";
import path from "node:path";
import { runBin } from "./database.ts";
import { supabaseDir } from "../shared/paths.ts";

export interface AdvisorFinding {
  name: string;
  level: "ERROR" | "WARN" | "INFO";
  detail: string;
  cache_key?: string;
  cacheKey?: string;
}

export interface AdvisorReport {
  errors: AdvisorFinding[];
  /** WARN findings without a written reason. */
  unexplainedWarnings: AdvisorFinding[];
  /** WARN findings with their reason. */
  waivedWarnings: Array<AdvisorFinding & { reason: string }>;
}

export function findingKey(finding: AdvisorFinding): string {
  return finding.cache_key ?? finding.cacheKey ?? `${finding.name}:${finding.detail}`;
}

export async function runAdvisors(databaseUrl: string): Promise<AdvisorReport> {
  const { code, output } = await runBin("supabase", [
    "db", "advisors", `--remote=${databaseUrl}`, "--type", "all", "--level", "warn", "--output-format", "json",
  ]);
  const json = output.slice(output.indexOf("{"));
  let findings: AdvisorFinding[];
  try {
    findings = (JSON.parse(json) as { results?: AdvisorFinding[] }).results ?? [];
  } catch {
    throw new Error(`supabase db advisors did not answer with JSON (exit ${code}):\n${output}`);
  }
  const waivers = JSON.parse(await readFile(path.join(supabaseDir, "advisor-waivers.json"), "utf8")) as Record<string, string>;
  const warnings = findings.filter((f) => f.level === "WARN");
  return {
    errors: findings.filter((f) => f.level === "ERROR"),
    unexplainedWarnings: warnings.filter((f) => !waivers[findingKey(f)]?.trim()),
    waivedWarnings: warnings
      .filter((f) => waivers[findingKey(f)]?.trim())
      .map((f) => ({ ...f, reason: waivers[findingKey(f)]! })),
  };
}
