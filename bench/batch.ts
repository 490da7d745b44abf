/**
 * consume_credits_batch: events per second in batches of 1,000 (`api_call_basic`, each with its
 * own idempotency key, as a metering pipeline sends them) on 8 connections, for one hot
 * organization and spread over 10,000 organizations. Target (issue 12): >= 50,000 events/s with
 * durable commits on a 2-core machine. Two references in the same run, on the same tables:
 * - the bare batch: one statement per 1,000 events that takes the credits from the lot, writes
 *   the 1,000 consumption rows (idempotency keys, results) and one ledger row, with no checks at
 *   all: what the batch's writes cost with nothing else (the ratio says what the rules add);
 * - the one-statement floor of a single consumption (bench/consume.ts FLOOR), per event: how
 *   much cheaper an event is in a batch than on its own (per-event cost vs the floor).
 */
import { randomUUID } from "node:crypto";
import { FLOOR } from "./consume.ts";
import { benchmark } from "./support/benchmark.ts";
import { bestOfInterleaved, createTargets, ORGANIZATIONS, SECONDS_PER_RUN, spread, throughput, type Target } from "./support/load.ts";

const CONNECTIONS = 8;
const BATCH = 1_000;

/** A batch of BATCH events, each with an idempotency key unique to this run. */
function events(prefix: string): string {
  return JSON.stringify(Array.from({ length: BATCH }, (_, i) => ({ event_key: "api_call_basic", idempotency_key: `${prefix}-${i}` })));
}

const CONSUME_BATCH = "select public.consume_credits_batch($1, $2::jsonb) ->> 'credits_consumed'";

/** The batch's writes and nothing else: the lot, BATCH consumption rows, one ledger row. */
const BARE_BATCH = `
  with lot as (
    update public.credit_lots set remaining = remaining - $3 where id = $1 returning organization_id, source, remaining
  ), consumptions as (
    insert into public.credit_consumptions (organization_id, event_key, quantity, credits, purchased_used,
      subscription_used, precedence, idempotency_key, result)
    select lot.organization_id, 'api_call_basic', 1, 1, 1, 0, 'purchased_first', $2 || '-' || g, '{}'::jsonb
      from lot, generate_series(1, $3) g
  )
  insert into public.credit_transactions (organization_id, kind, source, amount, balance_after, lot_id)
  select organization_id, 'consumption', source, -$3, remaining, $1 from lot`;

export interface BatchRow {
  scenario: string;
  connections: number;
  batchEventsPerSecond: number;
  bareBatchEventsPerSecond: number;
  ratio: number;
  floorEventsPerSecond: number;
  /** Events per second in batches over single events per second at the floor: how much cheaper an event is in a batch. */
  floorRatio: number;
}

/**
 * Runs a batch again when it gave up waiting for the organization's lock (55P03 after the
 * function's 5 s lock_timeout), as a caller would: on one hot organization eight connections
 * queue for the same lock, and on a loaded machine the queue can outlast the timeout. Only the
 * call that finally ran is counted.
 */
async function untilLocked<T>(call: () => Promise<T>): Promise<T> {
  for (;;) {
    try {
      return await call();
    } catch (error) {
      if ((error as { code?: string }).code !== "55P03") throw error;
    }
  }
}

export default benchmark<BatchRow[]>({
  section: "batch",
  title: `consume_credits_batch (${BATCH.toLocaleString("en")} events per call, ${CONNECTIONS} connections, ${SECONDS_PER_RUN}s per run, best of 2 interleaved rounds)`,
  async run({ db }) {
    const [hot] = await createTargets(db, 1, "batch-hot");
    const many = await createTargets(db, ORGANIZATIONS, "batch-tenant");
    const scenarios: Array<[string, (i: number) => Target]> = [
      ["one hot organization", () => hot!],
      [`${ORGANIZATIONS.toLocaleString("en")} organizations`, spread(many)],
    ];
    const rows: BatchRow[] = [];
    for (const [scenario, target] of scenarios) {
      const best = await bestOfInterleaved({
        bare: async () =>
          BATCH * await throughput(db, CONNECTIONS, (client, i) => client.query(BARE_BATCH, [target(i).lotId, `bare-${randomUUID()}`, BATCH])),
        floor: () => throughput(db, CONNECTIONS, (client, i) => client.query(FLOOR, [target(i).lotId])),
        batch: async () =>
          BATCH * await throughput(db, CONNECTIONS, (client, i) => untilLocked(() => client.query(CONSUME_BATCH, [target(i).organizationId, events(randomUUID())]))),
      });
      const row: BatchRow = {
        scenario,
        connections: CONNECTIONS,
        batchEventsPerSecond: best.batch,
        bareBatchEventsPerSecond: best.bare,
        ratio: best.batch / best.bare,
        floorEventsPerSecond: best.floor,
        floorRatio: best.batch / best.floor,
      };
      console.log(
        `  ${scenario.padEnd(24)} ${CONNECTIONS} conn: batch ${row.batchEventsPerSecond.toFixed(0).padStart(7)} events/s, ` +
          `bare batch ${row.bareBatchEventsPerSecond.toFixed(0).padStart(7)} events/s (ratio ${row.ratio.toFixed(2)}), ` +
          `single-event floor ${row.floorEventsPerSecond.toFixed(0).padStart(6)}/s (x${row.floorRatio.toFixed(1)} per event)`,
      );
      rows.push(row);
    }
    return rows;
  },
  table: (rows) => [
    "| scenario | connections | batch events/s | bare batch events/s | ratio | single-event floor/s | events/s vs floor |",
    "|---|---:|---:|---:|---:|---:|---:|",
    ...rows.map((r) =>
      `| ${r.scenario} | ${r.connections} | ${r.batchEventsPerSecond.toFixed(0)} | ${r.bareBatchEventsPerSecond.toFixed(0)} | ` +
      `${r.ratio.toFixed(2)} | ${r.floorEventsPerSecond.toFixed(0)} | ${r.floorRatio.toFixed(1)} |`),
  ],
});
