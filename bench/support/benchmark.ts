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

export interface Benchmark<Result = unknown> {
  section: string;
  /** Printed before the benchmark runs. */
  title: string;
  run(context: BenchContext): Promise<Result>;
  /** The result as markdown table lines, for the summary at the end. */
  table(result: Result): string[];
}

/** Declares a benchmark with its result type checked between run and table. */
export function benchmark<Result>(definition: Benchmark<Result>): Benchmark<Result> {
  return definition;
}
