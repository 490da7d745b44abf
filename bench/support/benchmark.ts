/**
 * What every benchmark file exports: its section name (`npm run bench -- <section>`), a title,
 * how to measure, and how to print what it measured as a markdown table. Each measures against
 * a bare baseline in the same run, so its ratios travel between machines.
 */
import type pg from "pg";

export interface BenchContext {
  /** A pool on the benchmark database. */
  db: pg.Pool;
  databaseUrl: string;
}

/** How a benchmark file declares itself: `table` reads exactly what `run` returned. */
export interface BenchmarkDefinition<Result> {
  section: string;
  /** Printed before the benchmark runs. */
  title: string;
  run(context: BenchContext): Promise<Result>;
  /** The result as markdown table lines, for the summary at the end. */
  table(result: Result): string[];
}

/** A declared benchmark as the runner sees it: whatever its result type, it measures and tabulates. */
export interface Benchmark {
  section: string;
  title: string;
  run(context: BenchContext): Promise<{ result: unknown; table: string[] }>;
}

/** Declares a benchmark with its result type checked between run and table, then hides that type from the runner. */
export function benchmark<Result>(definition: BenchmarkDefinition<Result>): Benchmark {
  return {
    section: definition.section,
    title: definition.title,
    run: async (context) => {
      const result = await definition.run(context);
      return { result, table: definition.table(result) };
    },
  };
}
