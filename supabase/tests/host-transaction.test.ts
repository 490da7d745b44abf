/**
 * consume_credits runs in the caller's transaction: a host app can spend credits inside its
 * own transaction (say, with the row that records the work done) and roll both back together.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type pg from "pg";
import {
  assertInvariants,
  consumeBatch,
  consumeCredits,
  createOrganization,
  creditBalance,
  grantCredits,
  ledger,
  reserveCredits,
  settleReservation,
  testPool,
} from "./support/credits.ts";

let pool: pg.Pool;
before(() => {
  pool = testPool(3);
});
after(async () => {
  await pool.end();
});

test("consume_credits inside the caller's own transaction, rolled back, consumes nothing", async () => {
  const organizationId = await createOrganization(pool, "host-transaction");
  await grantCredits(pool, organizationId, 100, "purchased");
  const before = await ledger(pool, organizationId);
  const client = await pool.connect();
  try {
    await client.query("begin");
    await client.query("create temporary table host_work (note text) on commit drop");
    await client.query("insert into host_work values ('the host app''s own write')");
    const result = await consumeCredits(client, organizationId, "ai_inference", 2, "host-job-1");
    assert.equal(result.balance.total, 50, "inside the transaction the consumption is visible");
    await consumeBatch(client, organizationId, [{ event_key: "api_call_basic" }]);
    const reservation = await reserveCredits(client, organizationId, "api_call_premium");
    await settleReservation(client, reservation.reservation_id, 1);
    await client.query("rollback");
  } finally {
    client.release();
  }

  assert.equal((await creditBalance(pool, organizationId)).total, 100, "after the rollback nothing was consumed");
  assert.deepEqual(await ledger(pool, organizationId), before, "and the ledger has no new row");
  const { rows } = await pool.query<{ count: number }>(
    "select count(*)::int as count from public.credit_consumptions where organization_id = $1",
    [organizationId],
  );
  assert.equal(rows[0]!.count, 0, "no consumption was recorded");
  const retried = await consumeCredits(pool, organizationId, "ai_inference", 2, "host-job-1");
  assert.equal(retried.idempotent_replay, false, "the rolled-back idempotency key is free: the retry consumes for real");
  assert.equal(retried.balance.total, 50, "once");
  await assertInvariants(pool, organizationId, before);
});
