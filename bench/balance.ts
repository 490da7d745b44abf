/**
 * get_credit_balance latency for an organization with 1,000,000 ledger rows next to one with
 * 1,000, in the same run: it must not grow with the ledger (ratio of p50s near 1).
 */
import type pg from "pg";
import { benchmark } from "./support/benchmark.ts";
import { createTargets } from "./support/load.ts";

/**
 * Gives an organization `ledgerRows` ledger rows cheaply: one grant, then consumption rows
 * written in bulk (as the table owner), with the lot and the balances kept consistent, plus
 * a thousand exhausted lots, as a long-lived organization accumulates.
 */
async function organizationWithLedger(db: pg.Pool, ledgerRows: number): Promise<string> {
  const [target] = await createTargets(db, 1, `ledger-${ledgerRows}`);
  const { organizationId, lotId } = target!;
  await db.query(
    `insert into public.credit_transactions (organization_id, kind, source, amount, balance_after, lot_id, created_at)
     select $1, 'consumption', 'purchased', -1, 1000000000 - g, $2, now() - make_interval(secs => $3 - g)
       from generate_series(1, $3 - 1) g`,
    [organizationId, lotId, ledgerRows],
  );
  await db.query("update public.credit_lots set remaining = remaining - ($2 - 1) where id = $1", [lotId, ledgerRows]);
  await db.query(
    `insert into public.credit_lots (organization_id, source, granted, remaining, reference)
     select $1, 'purchased', 10, 0, 'exhausted-' || g from generate_series(1, 1000) g`,
    [organizationId],
  );
  await db.query("analyze public.credit_transactions; analyze public.credit_lots");
  return organizationId;
}

interface Latency {
  p50: number;
  p99: number;
}

async function latency(db: pg.Pool, organizationId: string, calls: number): Promise<Latency> {
  const client = await db.connect();
  try {
    for (let i = 0; i < 200; i++) await client.query("select public.get_credit_balance($1)", [organizationId]);
    const samples: number[] = [];
    for (let i = 0; i < calls; i++) {
      const started = performance.now();
      await client.query("select public.get_credit_balance($1)", [organizationId]);
      samples.push(performance.now() - started);
    }
    samples.sort((a, b) => a - b);
    return { p50: samples[Math.floor(calls * 0.5)]!, p99: samples[Math.floor(calls * 0.99)]! };
  } finally {
    client.release();
  }
}

export interface BalanceResult {
  ledger1k: Latency;
  ledger1m: Latency;
  ratioP50: number;
}

export default benchmark<BalanceResult>({
  section: "balance",
  title: "get_credit_balance latency by ledger size",
  async run({ db }) {
    const small = await organizationWithLedger(db, 1_000);
    const large = await organizationWithLedger(db, 1_000_000);
    const ledger1k = await latency(db, small, 2000);
    const ledger1m = await latency(db, large, 2000);
    console.log(`  1,000 rows:     p50 ${ledger1k.p50.toFixed(3)} ms, p99 ${ledger1k.p99.toFixed(3)} ms`);
    console.log(`  1,000,000 rows: p50 ${ledger1m.p50.toFixed(3)} ms, p99 ${ledger1m.p99.toFixed(3)} ms`);
    const ratioP50 = ledger1m.p50 / ledger1k.p50;
    console.log(`  ratio (1M / 1k, p50): ${ratioP50.toFixed(2)}`);
    return { ledger1k, ledger1m, ratioP50 };
  },
  table: (r) => [
    "| get_credit_balance | p50 ms | p99 ms |",
    "|---|---:|---:|",
    `| 1,000 ledger rows | ${r.ledger1k.p50.toFixed(3)} | ${r.ledger1k.p99.toFixed(3)} |`,
    `| 1,000,000 ledger rows | ${r.ledger1m.p50.toFixed(3)} | ${r.ledger1m.p99.toFixed(3)} |`,
  ],
});
