/**
 * consume_credits under real concurrency: many connections to the real database racing for
 * the same organization's credits, with the ledger invariants checked after each race.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type pg from "pg";
import {
  assertInvariants,
  attempt,
  consumeBatch,
  consumeCredits,
  createOrganization,
  creditBalance,
  grantCredits,
  ledger,
  type Outcome,
  releaseReservation,
  reserveCredits,
  setSpendLimit,
  settleReservation,
  testPool,
} from "./support/credits.ts";

let pool: pg.Pool;

before(() => {
  pool = testPool(60);
});
after(async () => {
  await pool.end();
});

/** Starts all calls together, each on its own connection, and waits for every outcome. */
async function race<T>(count: number, call: (client: pg.PoolClient, index: number) => Promise<T>) {
  const clients = await Promise.all(Array.from({ length: count }, () => pool.connect()));
  try {
    return await Promise.all(clients.map((client, index) => attempt(() => call(client, index))));
  } finally {
    for (const client of clients) client.release();
  }
}

describe("consume_credits under concurrency", () => {
  test("50 connections racing 10-credit consumptions over exactly 100 credits: exactly 10 succeed", async () => {
    const organizationId = await createOrganization(pool, "race-100");
    await grantCredits(pool, organizationId, 100, "purchased");
    const before = await ledger(pool, organizationId);

    const outcomes = await race(50, (client) => consumeCredits(client, organizationId, "storage_gb_month"));

    const succeeded = outcomes.filter((o) => o.ok);
    const refused = outcomes.filter((o) => !o.ok);
    assert.equal(succeeded.length, 10, "exactly ten consumptions of 10 fit in 100 credits");
    assert.ok(refused.every((o) => !o.ok && o.code === "PT402"), "every other call is refused with PT402");
    const balances = succeeded.map((o) => (o.ok ? o.value.balance.total : -1)).sort((a, b) => a - b);
    assert.deepEqual(balances, [0, 10, 20, 30, 40, 50, 60, 70, 80, 90], "each success saw a distinct balance");
    await assertInvariants(pool, organizationId, before);
  });

  test("20 connections sending one idempotency key consume once and all get the same result", async () => {
    const organizationId = await createOrganization(pool, "race-idempotency");
    await grantCredits(pool, organizationId, 1000, "purchased");

    const outcomes = await race(20, (client) =>
      consumeCredits(client, organizationId, "api_call_premium", 3, "request-42", { path: "/v1/things" }));

    assert.ok(outcomes.every((o) => o.ok), "no call fails");
    const results = outcomes.map((o) => (o.ok ? o.value : undefined));
    const ids = new Set(results.map((r) => r?.transaction_id));
    assert.equal(ids.size, 1, "every caller gets the same transaction id");
    assert.equal(results.filter((r) => r?.idempotent_replay === false).length, 1, "one call did the work");
    assert.equal(results.filter((r) => r?.idempotent_replay === true).length, 19, "the others are replays");
    const rows = await ledger(pool, organizationId);
    assert.equal(rows.filter((r) => r.kind === "consumption").length, 1, "one consumption row in the ledger");
    assert.equal(rows.at(-1)!.balance_after, 985, "15 credits were debited once");
    await assertInvariants(pool, organizationId);
  });

  test("the same key with different parameters is refused under concurrency too", async () => {
    const organizationId = await createOrganization(pool, "race-conflict");
    await grantCredits(pool, organizationId, 1000, "purchased");

    const outcomes = await race(10, (client, index) =>
      consumeCredits(client, organizationId, "api_call_basic", index % 2 === 0 ? 1 : 2, "conflicting-key"));

    const winners = outcomes.filter((o) => o.ok && !o.value.idempotent_replay);
    assert.equal(winners.length, 1, "one call consumes");
    const winnerQuantity = winners[0]!.ok ? winners[0]!.value.credits_consumed : 0;
    for (const outcome of outcomes) {
      if (outcome.ok) assert.equal(outcome.value.credits_consumed, winnerQuantity, "replays repeat the winner");
      else assert.equal(outcome.code, "PT409", "the other parameters get PT409");
    }
    await assertInvariants(pool, organizationId);
  });

  test("consumptions racing grants and expiry lose nothing and spend nothing twice", async () => {
    const organizationId = await createOrganization(pool, "race-grants-expiry");
    await grantCredits(pool, organizationId, 200, "purchased");
    // Subscription credit that expires while the race is running.
    await pool.query(
      "select public.grant_credits($1, 5000, 'subscription', now() + interval '150 milliseconds', 'soon')",
      [organizationId],
    );
    const before = await ledger(pool, organizationId);

    const deadline = Date.now() + 600;
    const outcomes = await race(24, async (client, index) => {
      let consumed = 0;
      let granted = 0;
      let step = 0;
      while (Date.now() < deadline) {
        step++;
        if (index % 6 === 0) {
          await grantCredits(client, organizationId, 7, "purchased", null, `grant-${index}-${step}`);
          granted += 7;
        } else if (index % 6 === 1) {
          await client.query("select public.expire_credits()");
        } else {
          const outcome = await attempt(() => consumeCredits(client, organizationId, "api_call_premium"));
          if (outcome.ok) consumed += outcome.value.credits_consumed;
          else assert.equal(outcome.code, "PT402", "a refused consumption is refused for lack of credits");
        }
      }
      return { consumed, granted };
    });

    assert.ok(outcomes.every((o) => o.ok), "no call fails for any reason but a lack of credits");
    const totals = outcomes.reduce(
      (sum, o) => (o.ok ? { consumed: sum.consumed + o.value.consumed, granted: sum.granted + o.value.granted } : sum),
      { consumed: 0, granted: 0 },
    );
    await pool.query("select public.expire_credits()");
    const rows = await ledger(pool, organizationId);
    const sum = (kind: string) => rows.filter((r) => r.kind === kind).reduce((s, r) => s + r.amount, 0);
    assert.ok(sum("expiry") < 0, "subscription credit expired in the middle of the race");
    assert.equal(sum("grant"), 5200 + totals.granted, "every grant is in the ledger once");
    assert.equal(-sum("consumption"), totals.consumed, "every credit consumed is in the ledger once");
    assert.equal(
      5200 + totals.granted - totals.consumed + sum("expiry"),
      rows.at(-1)!.balance_after,
      "granted − consumed − expired is the final balance",
    );
    await assertInvariants(pool, organizationId, before);
  });

  test("different organizations do not wait for each other's lock", async () => {
    const [a, b] = [await createOrganization(pool, "lock-a"), await createOrganization(pool, "lock-b")];
    await grantCredits(pool, a, 10, "purchased");
    await grantCredits(pool, b, 10, "purchased");
    const holder = await pool.connect();
    try {
      await holder.query("begin");
      await consumeCredits(holder, a, "api_call_basic");
      // A holds its lock in an open transaction; B must still go through at once.
      const other = await pool.connect();
      try {
        await other.query("set statement_timeout = '2s'");
        const result = await consumeCredits(other, b, "api_call_basic");
        assert.equal(result.balance.total, 9, "organization B consumed while A was locked");
        await other.query("reset statement_timeout");
      } finally {
        other.release();
      }
      await holder.query("commit");
    } finally {
      holder.release();
    }
  });

  test("a stuck lock gives a quick, retriable lock timeout instead of a hang", async () => {
    const organizationId = await createOrganization(pool, "lock-timeout");
    await grantCredits(pool, organizationId, 10, "purchased");
    const holder = await pool.connect();
    const waiter = await pool.connect();
    try {
      await holder.query("begin");
      await holder.query("select 1 from public.organizations where id = $1 for update", [organizationId]);
      const outcome = await attempt(() => consumeCredits(waiter, organizationId, "api_call_basic"));
      assert.equal(outcome.ok, false, "the waiting call fails");
      assert.equal(!outcome.ok && outcome.code, "55P03", "with lock_not_available, which a client can retry");
      await holder.query("rollback");
      const retried = await consumeCredits(waiter, organizationId, "api_call_basic");
      assert.equal(retried.balance.total, 9, "the retry succeeds once the lock is free");
    } finally {
      holder.release();
      waiter.release();
    }
  });
});

describe("reservations, batches and spend limits under concurrency", () => {
  test("50 connections racing 10-credit reservations over exactly 100 credits: exactly 10 succeed", async () => {
    const organizationId = await createOrganization(pool, "race-reserve-100");
    await grantCredits(pool, organizationId, 100, "purchased");
    const before = await ledger(pool, organizationId);

    const outcomes = await race(50, (client) => reserveCredits(client, organizationId, "storage_gb_month"));

    const succeeded = outcomes.filter((o) => o.ok);
    assert.equal(succeeded.length, 10, "exactly ten reservations of 10 fit in 100 credits");
    assert.ok(outcomes.every((o) => o.ok || o.code === "PT402"), "every other call is refused with PT402");
    const balance = await creditBalance(pool, organizationId);
    assert.equal(balance.total, 0, "nothing is left to spend");
    assert.equal(balance.reserved, 100, "all 100 credits are reserved");
    const refused = await attempt(() => consumeCredits(pool, organizationId, "api_call_basic"));
    assert.equal(!refused.ok && refused.code, "PT402", "a consumption cannot touch reserved credits");
    await assertInvariants(pool, organizationId, before);
  });

  test("settlements racing expiry: each reservation ends exactly one way, settled or expired", async (t) => {
    const organizationId = await createOrganization(pool, "race-settle-expiry");
    await grantCredits(pool, organizationId, 1000, "purchased");
    const reservations = await Promise.all(
      Array.from({ length: 20 }, (_, i) => reserveCredits(pool, organizationId, "storage_gb_month", 1, `settle-expiry-${i}`, 1)),
    );
    // Settle each around its expiry (some just before, some just after) while sweeps and
    // consumptions (which write expired reservations down) run beside them.
    const expiresAt = Math.min(...reservations.map((r) => Date.parse(r.expires_at)));
    const outcomes = await race(30, async (client, index): Promise<Outcome<unknown>> => {
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiresAt - Date.now() - 60 + (index % 10) * 15)));
      if (index < 20) return attempt(() => settleReservation(client, reservations[index]!.reservation_id));
      if (index < 25) return attempt(() => client.query("select public.expire_reservations()"));
      return attempt(() => consumeCredits(client, organizationId, "api_call_basic"));
    });
    assert.ok(outcomes.every((o) => o.ok), "no call fails outright");
    await pool.query("select public.expire_reservations()");
    const { rows } = await pool.query<{ id: string; status: string; credits_consumed: number | null }>(
      "select id, status, credits_consumed from public.credit_reservations where organization_id = $1",
      [organizationId],
    );
    const byId = new Map(rows.map((r) => [r.id, r]));
    t.diagnostic(`settled ${rows.filter((r) => r.status === "settled").length}, expired ${rows.filter((r) => r.status === "expired").length}`);
    for (let i = 0; i < 20; i++) {
      const outcome: Outcome<Outcome<unknown>> = outcomes[i]!;
      const settled: Outcome<unknown> | undefined = outcome.ok ? outcome.value : undefined;
      const row = byId.get(reservations[i]!.reservation_id)!;
      if (settled?.ok) {
        assert.equal(row.status, "settled", `reservation ${i} settled and stays settled`);
        assert.equal(row.credits_consumed, 10, `reservation ${i} consumed its credits once`);
      } else {
        assert.equal(settled && !settled.ok && settled.code, "PT410", `reservation ${i}'s settlement lost to its expiry with PT410`);
        assert.equal(row.status, "expired", `reservation ${i} expired and was written down once`);
      }
    }
    await assertInvariants(pool, organizationId);
  });

  test("reservations racing consumptions, grants, batches and expiry lose nothing and spend nothing twice", async () => {
    const organizationId = await createOrganization(pool, "race-reservations-mixed");
    await grantCredits(pool, organizationId, 300, "purchased");
    await pool.query(
      "select public.grant_credits($1, 3000, 'subscription', now() + interval '300 milliseconds', 'soon-mixed')",
      [organizationId],
    );
    const before = await ledger(pool, organizationId);
    const deadline = Date.now() + 800;
    const outcomes = await race(24, async (client, index) => {
      let granted = 0;
      let step = 0;
      const refusals = new Set(["PT402", "PT410"]);
      while (Date.now() < deadline) {
        step++;
        const role = index % 6;
        if (role === 0) {
          await grantCredits(client, organizationId, 11, "purchased", null, `mixed-grant-${index}-${step}`);
          granted += 11;
        } else if (role === 1) {
          const outcome = await attempt(() => consumeBatch(client, organizationId,
            Array.from({ length: 20 }, (_, k) => ({ event_key: k % 2 ? "api_call_basic" : "api_call_premium" }))));
          assert.ok(outcome.ok, "a batch never fails as a whole");
        } else if (role === 2) {
          const outcome = await attempt(() => consumeCredits(client, organizationId, "api_call_premium"));
          if (!outcome.ok) assert.ok(refusals.has(outcome.code), `a consumption is refused only for lack of credits (${outcome.code})`);
        } else {
          const reserved = await attempt(() => reserveCredits(client, organizationId, "api_call_premium", 3, null, 1));
          if (!reserved.ok) {
            assert.equal(reserved.code, "PT402", "a reservation is refused only for lack of credits");
            continue;
          }
          const id = reserved.value.reservation_id;
          const outcome = role === 3 ? await attempt(() => releaseReservation(client, id))
            : role === 4 ? await attempt(() => settleReservation(client, id, step % 4))
            : { ok: true as const, value: undefined }; // role 5 leaves it to expire
          if (!outcome.ok) assert.ok(refusals.has(outcome.code), `a settlement or release fails only by expiry (${outcome.code})`);
        }
      }
      return granted;
    });
    assert.ok(outcomes.every((o) => o.ok), "no worker fails for any reason but the refusals above");
    // Reservations left to expire hold nothing once their time is up; wait it out and sweep.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    await pool.query("select public.expire_reservations(), public.expire_credits()");
    const rows = await ledger(pool, organizationId);
    const sum = (kind: string) => rows.filter((r) => r.kind === kind).reduce((s, r) => s + r.amount, 0);
    const granted = outcomes.reduce((s, o) => s + (o.ok ? o.value : 0), 0);
    const { rows: consumed } = await pool.query<{ credits: number }>(
      "select coalesce(sum(credits), 0)::int as credits from public.credit_consumptions where organization_id = $1",
      [organizationId],
    );
    assert.equal(sum("grant"), 3300 + granted, "every grant is in the ledger once");
    assert.equal(sum("reservation") + sum("release"), 0, "every reserved credit was settled, released or written down");
    assert.equal(-sum("consumption"), consumed[0]!.credits, "every consumption, settlement and batch event is in the ledger once");
    assert.equal(3300 + granted - consumed[0]!.credits + sum("expiry") + sum("refund"), rows.at(-1)!.balance_after,
      "granted − consumed − expired is the final balance");
    const balance = await creditBalance(pool, organizationId);
    assert.equal(balance.reserved, 0, "nothing is reserved at the end");
    await assertInvariants(pool, organizationId, before);
  });

  test("20 connections consuming, reserving and batching against a spend limit never pass it", async () => {
    const organizationId = await createOrganization(pool, "race-spend-limit");
    await grantCredits(pool, organizationId, 10_000, "purchased");
    await setSpendLimit(pool, organizationId, 100);
    const before = await ledger(pool, organizationId);

    const outcomes = await race(20, async (client, index) => {
      const refusals: string[] = [];
      for (let round = 0; round < 5; round++) {
        if (index % 4 === 0) {
          const batch = await consumeBatch(client, organizationId, [{ event_key: "api_call_premium" }, { event_key: "api_call_premium" }]);
          for (const r of batch.results) if (r.status !== "consumed") refusals.push(r.status);
        } else if (index % 4 === 1) {
          const reserved = await attempt(() => reserveCredits(client, organizationId, "storage_gb_month"));
          if (reserved.ok) await settleReservation(client, reserved.value.reservation_id);
          else refusals.push(reserved.code);
        } else {
          const consumed = await attempt(() => consumeCredits(client, organizationId, "storage_gb_month"));
          if (!consumed.ok) refusals.push(consumed.code);
        }
      }
      return refusals;
    });

    assert.ok(outcomes.every((o) => o.ok), "no call fails but for the limit");
    const refusals = outcomes.flatMap((o) => (o.ok ? o.value : []));
    assert.ok(refusals.length > 0, "the limit refused some calls");
    assert.ok(refusals.every((code) => code === "PT429" || code === "spend_limit_reached"), "every refusal is the spend limit");
    const { rows } = await pool.query<{ credits: number }>(
      "select coalesce(sum(credits), 0)::int as credits from public.credit_consumptions where organization_id = $1",
      [organizationId],
    );
    assert.equal(rows[0]!.credits, 100, "consumption reached the limit of 100 and never passed it");
    const { rows: alerts } = await pool.query<{ count: number }>(
      "select count(*)::int as count from public.billing_alerts where organization_id = $1 and kind = 'spend_limit'",
      [organizationId],
    );
    assert.equal(alerts[0]!.count, 1, "one spend_limit alert");
    await assertInvariants(pool, organizationId, before);
  });
});
