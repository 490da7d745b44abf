/**
 * Two-phase consumption: reserve_credits then settle_reservation of the same quantity, pairs per
 * second, next to one consume_credits per second in the same run (the bare baseline here: the
 * one-call way to spend the same credits), on 8 connections, for one hot organization and spread
 * over 10,000 organizations. Target (issue 12): reserve + settle >= 0.5 of one consume_credits.
 */
import { CONSUME } from "./consume.ts";
import { benchmark } from "./support/benchmark.ts";
import { bestOfInterleaved, createTargets, ORGANIZATIONS, SECONDS_PER_RUN, spread, throughput, type Target } from "./support/load.ts";

const CONNECTIONS = 8;

const RESERVE = "select (public.reserve_credits($1, 'api_call_basic', 1) ->> 'reservation_id') as id";
const SETTLE = "select public.settle_reservation($1)";

export interface ReserveRow {
  scenario: string;
  connections: number;
  reserveSettlePerSecond: number;
  consumePerSecond: number;
  ratio: number;
}

export default benchmark<ReserveRow[]>({
  section: "reserve",
  title: `reserve_credits + settle_reservation vs one consume_credits (${CONNECTIONS} connections, ${SECONDS_PER_RUN}s per run, best of 2 interleaved rounds)`,
  async run({ db }) {
    const [hot] = await createTargets(db, 1, "reserve-hot");
    const many = await createTargets(db, ORGANIZATIONS, "reserve-tenant");
    const scenarios: Array<[string, (i: number) => Target]> = [
      ["one hot organization", () => hot!],
      [`${ORGANIZATIONS.toLocaleString("en")} organizations`, spread(many)],
    ];
    const rows: ReserveRow[] = [];
    for (const [scenario, target] of scenarios) {
      const best = await bestOfInterleaved({
        consume: () => throughput(db, CONNECTIONS, (client, i) => client.query(CONSUME, [target(i).organizationId])),
        reserveSettle: () => throughput(db, CONNECTIONS, async (client, i) => {
          const { rows: [reservation] } = await client.query<{ id: string }>(RESERVE, [target(i).organizationId]);
          await client.query(SETTLE, [reservation!.id]);
        }),
      });
      const row: ReserveRow = {
        scenario,
        connections: CONNECTIONS,
        reserveSettlePerSecond: best.reserveSettle,
        consumePerSecond: best.consume,
        ratio: best.reserveSettle / best.consume,
      };
      console.log(
        `  ${scenario.padEnd(24)} ${CONNECTIONS} conn: reserve + settle ${row.reserveSettlePerSecond.toFixed(0).padStart(6)}/s, ` +
          `consume_credits ${row.consumePerSecond.toFixed(0).padStart(6)}/s (ratio ${row.ratio.toFixed(2)}, target >= 0.5)`,
      );
      rows.push(row);
    }
    return rows;
  },
  table: (rows) => [
    "| scenario | connections | reserve + settle/s | consume_credits/s | ratio |",
    "|---|---:|---:|---:|---:|",
    ...rows.map((r) =>
      `| ${r.scenario} | ${r.connections} | ${r.reserveSettlePerSecond.toFixed(0)} | ${r.consumePerSecond.toFixed(0)} | ${r.ratio.toFixed(2)} |`),
  ],
});
