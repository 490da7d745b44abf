/**
 * The hot functions touch one organization's rows, proven over real connections: another
 * connection holds every row of every other organization locked FOR UPDATE (the strongest row
 * lock: it conflicts with every write, every row lock and every foreign-key check), and each
 * hot function, called for one organization, must finish without waiting for it. Sharded by
 * organization (Citus), a call that needed another organization's row would need another shard.
 * (pgTAP 23 checks the reads: the rows a call reads do not grow with other organizations.)
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type pg from "pg";
import {
  consumeBatch,
  consumeCredits,
  createOrganization,
  creditBalance,
  grantCredits,
  releaseReservation,
  reserveCredits,
  settleReservation,
  setSpendLimit,
  testPool,
} from "./support/credits.ts";

let pool: pg.Pool;
before(() => {
  pool = testPool(3);
});
after(async () => {
  await pool.end();
});

/** Every table in public and private that holds organization rows, and the column that says whose. */
async function organizationTables(db: pg.Pool): Promise<Array<{ table: string; column: string }>> {
  const { rows } = await db.query<{ table: string; column: string }>(
    `select format('%I.%I', n.nspname, c.relname) as table,
            case when c.oid = 'public.organizations'::regclass then 'id' else 'organization_id' end as column
       from pg_class c
       join pg_namespace n on n.oid = c.relnamespace
      where n.nspname in ('public', 'private') and c.relkind = 'r'
        and (c.oid = 'public.organizations'::regclass
             or exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'organization_id' and not a.attisdropped))
      order by 1`,
  );
  return rows;
}

/** An organization with history in every hot table: lots, consumptions, a batch, reservations open and settled. */
async function organizationWithHistory(db: pg.Pool, name: string): Promise<string> {
  const organizationId = await createOrganization(db, name);
  await setSpendLimit(db, organizationId, 100_000);
  await grantCredits(db, organizationId, 1_000, "purchased", null, "pack-1");
  await grantCredits(db, organizationId, 500, "subscription", new Date(Date.now() + 20 * 86_400_000).toISOString(), "in_1");
  await consumeCredits(db, organizationId, "api_call_premium", 2, "request-1");
  await consumeBatch(db, organizationId, [{ event_key: "api_call_basic" }, { event_key: "api_call_basic", idempotency_key: "batch-1" }]);
  await reserveCredits(db, organizationId, "api_call_basic", 5, "reserve-open");
  const settled = await reserveCredits(db, organizationId, "api_call_basic", 5);
  await settleReservation(db, settled.reservation_id, 3);
  return organizationId;
}

test("the hot functions finish for one organization while every other organization's rows are locked", async () => {
  const organizationId = await organizationWithHistory(pool, "one-organization");
  for (let i = 0; i < 3; i++) await organizationWithHistory(pool, `other-organization-${i}`);

  const holder = await pool.connect();
  const caller = await pool.connect();
  try {
    await holder.query("begin");
    let locked = 0;
    for (const { table, column } of await organizationTables(pool)) {
      const { rowCount } = await holder.query(`select 1 from ${table} where ${column} is distinct from $1 for update`, [organizationId]);
      locked += rowCount ?? 0;
    }
    assert.ok(locked > 30, `the other organizations' rows are locked (${locked})`);

    // A call that waits for a locked row gives up with 55P03 (lock_timeout: this session's, or the
    // five seconds the credit functions set for themselves).
    await caller.query("set lock_timeout = '1s'");
    const calls: Array<[string, () => Promise<unknown>]> = [
      ["consume_credits", () => consumeCredits(caller, organizationId, "api_call_basic", 3)],
      ["consume_credits (idempotent replay)", () => consumeCredits(caller, organizationId, "api_call_premium", 2, "request-1")],
      ["consume_credits_batch", () => consumeBatch(caller, organizationId, [
        { event_key: "api_call_basic" },
        { event_key: "api_call_premium", quantity: 2, idempotency_key: "batch-2" },
        { event_key: "api_call_basic", idempotency_key: "batch-1" },
      ])],
      ["reserve_credits + settle_reservation", async () => {
        const reservation = await reserveCredits(caller, organizationId, "api_call_premium", 3);
        await settleReservation(caller, reservation.reservation_id, 2);
      }],
      ["reserve_credits (replay) + release_reservation", async () => {
        const reservation = await reserveCredits(caller, organizationId, "api_call_basic", 5, "reserve-open");
        await releaseReservation(caller, reservation.reservation_id);
      }],
      ["get_credit_balance", () => creditBalance(caller, organizationId)],
    ];
    for (const [name, call] of calls) {
      await assert.doesNotReject(call, `${name} touches no other organization's row`);
    }
    // 1,500 granted; the history took 10 + 2 + 3 and holds 5; these calls took 3, 11 and 10 and
    // released the 5.
    assert.equal((await creditBalance(caller, organizationId)).total, 1_461, "and the calls did their work");
  } finally {
    await holder.query("rollback").catch(() => undefined);
    holder.release();
    caller.release();
  }
});
