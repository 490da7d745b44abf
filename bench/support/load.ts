/**
 * Load generation over SQL shared by the benchmarks: organizations with credits to spend, and
 * calls per second on N connections for a fixed time.
 */
import type pg from "pg";

/** Seconds per measured run (BENCH_SECONDS, default 3). */
export const SECONDS_PER_RUN = Number(process.env.BENCH_SECONDS ?? 3);

/** How many organizations the spread-out scenarios use. */
export const ORGANIZATIONS = 10_000;

export interface Target {
  organizationId: string;
  lotId: string;
}

/** `count` organizations, each with one purchased lot of a billion credits. */
export async function createTargets(db: pg.Pool, count: number, label: string): Promise<Target[]> {
  const { rows } = await db.query<{ organization_id: string; lot_id: string }>(
    `with orgs as (
       insert into public.organizations (name)
       select $2 || ' ' || g from generate_series(1, $1) g
       returning id
     )
     select o.id as organization_id,
            ((public.grant_credits(o.id, 1000000000, 'purchased')) ->> 'lot_id') as lot_id
       from orgs o`,
    [count, label],
  );
  return rows.map((r) => ({ organizationId: r.organization_id, lotId: r.lot_id }));
}

/** A scattered walk over many targets, so consecutive calls land on different organizations. */
export function spread<T>(targets: T[]): (i: number) => T {
  return (i) => targets[(i * 7919) % targets.length]!;
}

/** Runs `call` in a loop on `connections` clients for SECONDS_PER_RUN; returns calls per second. */
export async function throughput(
  db: pg.Pool,
  connections: number,
  call: (client: pg.PoolClient, index: number) => Promise<unknown>,
): Promise<number> {
  const clients = await Promise.all(Array.from({ length: connections }, () => db.connect()));
  try {
    // Warm up each connection (plan caches, catalog caches) before timing.
    await Promise.all(clients.map((client, index) => call(client, index)));
    let count = 0;
    const started = performance.now();
    const deadline = started + SECONDS_PER_RUN * 1000;
    await Promise.all(
      clients.map(async (client, worker) => {
        let i = worker + connections;
        while (performance.now() < deadline) {
          await call(client, i);
          i += connections;
          count++;
        }
      }),
    );
    return count / ((performance.now() - started) / 1000);
  } finally {
    for (const client of clients) client.release();
  }
}

/**
 * Measures each side `rounds` times, interleaved, and keeps each side's best, so a noisy moment
 * on the machine does not land on one side only.
 */
export async function bestOfInterleaved<Side extends string>(
  sides: Record<Side, () => Promise<number>>,
  rounds = 2,
): Promise<Record<Side, number>> {
  const best = Object.fromEntries(Object.keys(sides).map((side) => [side, 0])) as Record<Side, number>;
  for (let round = 0; round < rounds; round++) {
    for (const side of Object.keys(sides) as Side[]) best[side] = Math.max(best[side], await sides[side]());
  }
  return best;
}
