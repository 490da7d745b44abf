/**
 * `npm run bench`: runs the benchmarks, each in a file of its own beside this one, prints each
 * one's table, and writes bench/results/latest.json. Every benchmark measures against a bare
 * baseline in the same run, on the same database, and reports ratios (these machines are noisy;
 * ratios travel).
 *
 *   consume        consume_credits vs a hand-written transaction and the one-statement floor
 *   batch          consume_credits_batch events/s vs the bare batch writes and the single-event floor
 *   reserve        reserve_credits + settle_reservation vs one consume_credits
 *   balance        get_credit_balance latency with 1,000,000 ledger rows vs 1,000
 *   gateway        consume_credits over HTTP through the local gateway vs direct SQL
 *   webhook        Stripe webhook acknowledgements vs a verify-only function
 *   notifications  outbox delivery vs plain signed POSTs
 *
 * Everything runs on the bench cluster (local/stack/postgres.ts benchClusterOptions: its own
 * port, BENCH_POSTGRES_PORT, default 54330), which commits with production durability
 * (Postgres's defaults: fsync, synchronous_commit and full_page_writes on), and is stopped at
 * the end as `npm test` stops its cluster (KEEP_TEST_DATABASE=1 leaves it running).
 * BENCH_DATABASE_URL (or TEST_DATABASE_URL) measures another server instead. `--relaxed` runs
 * on the test cluster instead (fsync, synchronous_commit, full_page_writes off), for
 * comparison only: the headline figures are production durability.
 *
 * `npm run bench -- <section>...` runs only the named sections; the results then go to
 * bench/results/latest-<section>....json (with --relaxed, a -relaxed suffix).
 */
import { mkdir, writeFile } from "node:fs/promises";
import path from "node:path";
import pg from "pg";
import { repoRoot } from "../local/shared/paths.ts";
import { setUpBenchDatabase, setUpTestDatabase } from "../local/stack/test-database.ts";
import balance from "./balance.ts";
import batch from "./batch.ts";
import consume from "./consume.ts";
import gateway from "./gateway.ts";
import notifications from "./notifications.ts";
import reserve from "./reserve.ts";
import type { Benchmark } from "./support/benchmark.ts";
import { SECONDS_PER_RUN } from "./support/load.ts";
import webhook from "./webhook.ts";

/** In the order they run (and print) when no section is named. */
const BENCHMARKS: Benchmark[] = [consume, batch, reserve, balance, gateway, webhook, notifications];

const RELAXED_FLAG = "--relaxed";
const relaxed = process.argv.includes(RELAXED_FLAG);
const chosen = process.argv.slice(2).filter((argument) => argument !== RELAXED_FLAG);
const sections = BENCHMARKS.map((b) => b.section);
for (const name of chosen) {
  if (!sections.includes(name)) throw new Error(`unknown section ${name}: choose from ${sections.join(", ")}`);
}
const selected = BENCHMARKS.filter((b) => chosen.length === 0 || chosen.includes(b.section));

async function main(): Promise<void> {
  console.log(`Preparing the benchmark database (${relaxed ? "test cluster, relaxed durability" : "bench cluster, production durability"})...`);
  const database = relaxed ? await setUpTestDatabase("billing_bench") : await setUpBenchDatabase("billing_bench");
  const db = new pg.Pool({ connectionString: database.url, max: 40 });
  try {
    const { rows: [durability] } = await db.query<{ fsync: string; synchronous_commit: string; full_page_writes: string }>(
      `select current_setting('fsync') as fsync, current_setting('synchronous_commit') as synchronous_commit,
              current_setting('full_page_writes') as full_page_writes`,
    );
    console.log(
      `Durability: fsync=${durability!.fsync}, synchronous_commit=${durability!.synchronous_commit}, full_page_writes=${durability!.full_page_writes}`,
    );
    const results: Record<string, unknown> = {};
    const tables: string[][] = [];
    for (const bench of selected) {
      console.log(`\n${bench.title}`);
      const measured = await bench.run({ db, databaseUrl: database.url });
      results[bench.section] = measured.result;
      tables.push(measured.table);
    }
    for (const table of tables) console.log(`\n${table.join("\n")}`);

    const resultsDir = path.join(repoRoot, "bench", "results");
    await mkdir(resultsDir, { recursive: true });
    const file = `latest${[...chosen, ...(relaxed ? ["relaxed"] : [])].map((part) => `-${part}`).join("")}.json`;
    await writeFile(
      path.join(resultsDir, file),
      JSON.stringify({ measuredAt: new Date().toISOString(), secondsPerRun: SECONDS_PER_RUN, durability, ...results }, null, 2) + "\n",
    );
    console.log(`\nWrote bench/results/${file}`);
  } finally {
    await db.end();
    await database.close();
  }
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
