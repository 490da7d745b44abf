/**
 * consume_credits throughput with 1, 8 and 32 connections, for one hot organization and spread
 * over 10,000 organizations, next to two baselines on the same tables in the same run:
 * - the bare baseline transaction: BEGIN; UPDATE the lot (remaining - 1); INSERT the ledger row;
 *   COMMIT, as a client writes it by hand (no checks, no precedence, no idempotency).
 *   Target: consume / baseline >= 0.7.
 * - the floor: the same two writes fused into one statement (a writable CTE, one round trip),
 *   the least any design can do. Issue 12's target: consume / floor >= 0.7.
 */
import type pg from "pg";
import { benchmark } from "./support/benchmark.ts";
import { bestOfInterleaved, createTargets, ORGANIZATIONS, SECONDS_PER_RUN, spread, throughput, type Target } from "./support/load.ts";

const CONNECTIONS = [1, 8, 32];

export const CONSUME = "select public.consume_credits($1, 'api_call_basic', 1)";

const BASELINE_UPDATE = "update public.credit_lots set remaining = remaining - 1 where id = $1 returning organization_id, source, remaining";
const BASELINE_INSERT = `
  insert into public.credit_transactions (organization_id, kind, source, amount, balance_after, lot_id)
  values ($1, 'consumption', $2, -1, $3, $4)`;

/** The bare baseline transaction, as a client writes it by hand. */
export async function baselineTransaction(client: pg.PoolClient, lotId: string): Promise<void> {
  await client.query("begin");
  const { rows } = await client.query<{ organization_id: string; source: string; remaining: number }>(BASELINE_UPDATE, [lotId]);
  const lot = rows[0]!;
  await client.query(BASELINE_INSERT, [lot.organization_id, lot.source, lot.remaining, lotId]);
  await client.query("commit");
}

/** The floor: one consumption's two writes in one statement. */
export const FLOOR = `
  with lot as (
    update public.credit_lots set remaining = remaining - 1 where id = $1 returning organization_id, source, remaining
  )
  insert into public.credit_transactions (organization_id, kind, source, amount, balance_after, lot_id)
  select organization_id, 'consumption', source, -1, remaining, $1 from lot`;

export interface ConsumeRow {
  scenario: string;
  connections: number;
  consumePerSecond: number;
  baselinePerSecond: number;
  ratio: number;
  floorPerSecond: number;
  floorRatio: number;
}

export default benchmark<ConsumeRow[]>({
  section: "consume",
  title: `consume_credits throughput (${SECONDS_PER_RUN}s per run, best of 2 interleaved rounds)`,
  async run({ db }) {
    const [hot] = await createTargets(db, 1, "hot");
    const many = await createTargets(db, ORGANIZATIONS, "tenant");
    const scenarios: Array<[string, (i: number) => Target]> = [
      ["one hot organization", () => hot!],
      [`${ORGANIZATIONS.toLocaleString("en")} organizations`, spread(many)],
    ];
    const rows: ConsumeRow[] = [];
    for (const [scenario, target] of scenarios) {
      for (const connections of CONNECTIONS) {
        const best = await bestOfInterleaved({
          baseline: () => throughput(db, connections, (client, i) => baselineTransaction(client, target(i).lotId)),
          floor: () => throughput(db, connections, (client, i) => client.query(FLOOR, [target(i).lotId])),
          consume: () => throughput(db, connections, (client, i) => client.query(CONSUME, [target(i).organizationId])),
        });
        const row: ConsumeRow = {
          scenario, connections, consumePerSecond: best.consume, baselinePerSecond: best.baseline, ratio: best.consume / best.baseline,
          floorPerSecond: best.floor, floorRatio: best.consume / best.floor,
        };
        console.log(
          `  ${scenario.padEnd(24)} ${String(connections).padStart(2)} conn: consume ${row.consumePerSecond.toFixed(0).padStart(6)}/s, ` +
            `baseline ${row.baselinePerSecond.toFixed(0).padStart(6)}/s (ratio ${row.ratio.toFixed(2)}), ` +
            `floor ${row.floorPerSecond.toFixed(0).padStart(6)}/s (ratio ${row.floorRatio.toFixed(2)})`,
        );
        rows.push(row);
      }
    }
    return rows;
  },
  table: (rows) => [
    "| scenario | connections | consume_credits/s | baseline txn/s | ratio | one-statement floor/s | ratio to floor |",
    "|---|---:|---:|---:|---:|---:|---:|",
    ...rows.map((r) =>
      `| ${r.scenario} | ${r.connections} | ${r.consumePerSecond.toFixed(0)} | ${r.baselinePerSecond.toFixed(0)} | ` +
      `${r.ratio.toFixed(2)} | ${r.floorPerSecond.toFixed(0)} | ${r.floorRatio.toFixed(2)} |`),
  ],
});
