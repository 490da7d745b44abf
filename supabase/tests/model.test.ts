/**
 * A seeded random run of grants, consumptions (with replayed and conflicting idempotency
 * keys), precedence switches and expiries over several connections, checked against an
 * in-memory model of the credit rules after every step.
 *
 * Each step runs in its own transaction that first reads the database's `now()`, so the
 * model knows exactly which lots had expired at that instant. A failure prints the seed and
 * step; `MODEL_SEED=<seed> npm test` replays the same run.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type pg from "pg";
import {
  assertInvariants,
  attempt,
  createOrganization,
  creditBalance,
  type ConsumeResult,
  seededRandom,
  testPool,
} from "./support/credits.ts";

type Source = "purchased" | "subscription";
interface ModelLot {
  source: Source;
  remaining: number;
  expiresAt: number | null;
  order: number;
}
interface ModelConsumption {
  eventKey: string;
  quantity: number;
  result: Omit<ConsumeResult, "transaction_id" | "idempotent_replay">;
}

const EVENT_COSTS: Record<string, number> = { api_call_basic: 1, api_call_premium: 5, storage_gb_month: 10, ai_inference: 25 };

/** The credit rules, restated independently of the SQL. */
class CreditModel {
  lots: ModelLot[] = [];
  precedence: "purchased_first" | "expiring_first" = "purchased_first";
  consumptions = new Map<string, ModelConsumption>();
  private nextOrder = 0;

  private sweep(now: number): void {
    for (const lot of this.lots) if (lot.expiresAt !== null && lot.expiresAt <= now) lot.remaining = 0;
  }

  balance(now: number) {
    const live = this.lots.filter((l) => l.remaining > 0 && (l.expiresAt === null || l.expiresAt > now));
    const purchased = live.filter((l) => l.source === "purchased").reduce((s, l) => s + l.remaining, 0);
    const subscription = live.filter((l) => l.source === "subscription").reduce((s, l) => s + l.remaining, 0);
    return { total: purchased + subscription, purchased, subscription };
  }

  grant(now: number, amount: number, source: Source, expiresAt: number | null): void {
    this.sweep(now);
    this.lots.push({ source, remaining: amount, expiresAt, order: this.nextOrder++ });
  }

  consume(now: number, eventKey: string, quantity: number, key: string | null):
    { ok: true; result: ModelConsumption["result"]; replay: boolean } | { ok: false; code: string } {
    if (key !== null) {
      const prior = this.consumptions.get(key);
      if (prior) {
        if (prior.eventKey === eventKey && prior.quantity === quantity) return { ok: true, result: prior.result, replay: true };
        return { ok: false, code: "PT409" };
      }
    }
    this.sweep(now);
    const cost = EVENT_COSTS[eventKey]! * quantity;
    const before = this.balance(now);
    if (before.total < cost) return { ok: false, code: "PT402" };
    const ordered = this.lots
      .filter((l) => l.remaining > 0)
      .sort((a, b) => {
        const rank = (l: ModelLot) =>
          this.precedence === "purchased_first" ? (l.source === "purchased" ? 0 : 1) : l.expiresAt === null ? 1 : 0;
        return rank(a) - rank(b) || (a.expiresAt ?? Infinity) - (b.expiresAt ?? Infinity) || a.order - b.order;
      });
    let needed = cost;
    const used = { purchased: 0, subscription: 0 };
    for (const lot of ordered) {
      if (needed === 0) break;
      const take = Math.min(needed, lot.remaining);
      lot.remaining -= take;
      needed -= take;
      used[lot.source] += take;
    }
    const result = {
      credits_consumed: cost,
      purchased_used: used.purchased,
      subscription_used: used.subscription,
      balance: this.balance(now),
    };
    if (key !== null) this.consumptions.set(key, { eventKey, quantity, result });
    return { ok: true, result, replay: false };
  }
}

let pool: pg.Pool;
before(() => {
  // Four connections for the steps, one spare for the invariant checks at the end.
  pool = testPool(5);
});
after(async () => {
  await pool.end();
});

/** Database time in microseconds since the epoch: the precision Postgres compares expiries at. */
const MICROS = "(extract(epoch from now()) * 1000000)::bigint::text";

/** Runs one step in its own transaction, returning the database time (µs) the step saw. */
async function step<T>(client: pg.PoolClient, body: () => Promise<T>): Promise<{ now: number; outcome: Awaited<ReturnType<typeof attempt<T>>> }> {
  await client.query("begin");
  const { rows } = await client.query<{ now: string }>(`select ${MICROS} as now`);
  const outcome = await attempt(body);
  await client.query(outcome.ok ? "commit" : "rollback");
  return { now: Number(rows[0]!.now), outcome };
}

test("a seeded random run of credit operations matches the in-memory model at every step", async (t) => {
  const seed = Number(process.env.MODEL_SEED ?? Math.floor(Math.random() * 2 ** 31));
  const steps = Number(process.env.MODEL_STEPS ?? 400);
  t.diagnostic(`seed ${seed} (replay with MODEL_SEED=${seed})`);
  const random = seededRandom(seed);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const organizationId = await createOrganization(pool, `model-${seed}`);
  const clients = await Promise.all(Array.from({ length: 4 }, () => pool.connect()));
  const model = new CreditModel();
  const usedKeys: string[] = [];

  try {
    for (let i = 0; i < steps; i++) {
      const where = `seed ${seed}, step ${i} (replay with MODEL_SEED=${seed})`;
      const client = pick(clients);
      const roll = random();

      if (roll < 0.15) {
        const amount = 1 + Math.floor(random() * 200);
        const { now, outcome } = await step(client, () =>
          client.query("select public.grant_credits($1, $2, 'purchased')", [organizationId, amount]));
        assert.ok(outcome.ok, `${where}: purchased grant succeeds`);
        model.grant(now, amount, "purchased", null);
      } else if (roll < 0.3) {
        const amount = 1 + Math.floor(random() * 300);
        const lifetimeMs = 5 + Math.floor(random() * 400);
        const { now, outcome } = await step(client, async () => {
          const { rows } = await client.query<{ expires_at: string }>(
            `select (extract(epoch from (public.grant_credits($1, $2, 'subscription', now() + make_interval(secs => $3::float8 / 1000))
                      ->> 'expires_at')::timestamptz) * 1000000)::bigint::text as expires_at`,
            [organizationId, amount, lifetimeMs],
          );
          return Number(rows[0]!.expires_at);
        });
        assert.ok(outcome.ok, `${where}: subscription grant succeeds`);
        model.grant(now, amount, "subscription", outcome.value);
      } else if (roll < 0.33) {
        const policy = pick(["purchased_first", "expiring_first"] as const);
        await client.query("select public.set_credit_precedence($1, $2)", [organizationId, policy]);
        model.precedence = policy;
      } else {
        const eventKey = pick(Object.keys(EVENT_COSTS));
        const quantity = 1 + Math.floor(random() * 4);
        const key = random() < 0.3 ? (usedKeys.length > 0 && random() < 0.5 ? pick(usedKeys) : `key-${i}`) : null;
        const { now, outcome } = await step(client, async () => {
          const { rows } = await client.query("select public.consume_credits($1, $2, $3, $4) as result", [
            organizationId, eventKey, quantity, key,
          ]);
          return rows[0].result as ConsumeResult;
        });
        const expected = model.consume(now, eventKey, quantity, key);
        if (expected.ok) {
          assert.ok(outcome.ok, `${where}: consume ${quantity} × ${eventKey} succeeds (${!outcome.ok ? outcome.code : ""})`);
          const { transaction_id: _id, idempotent_replay: replay, ...rest } = outcome.value;
          assert.deepEqual(rest, expected.result, `${where}: consumption result matches the model`);
          assert.equal(replay, expected.replay, `${where}: replay flag matches the model`);
          if (key !== null && !usedKeys.includes(key)) usedKeys.push(key);
        } else {
          assert.equal(outcome.ok ? "ok" : outcome.code, expected.code, `${where}: refused with ${expected.code}`);
        }
      }

      // The balance check runs in one transaction so the model and the database share `now()`.
      const reader = clients[0]!;
      await reader.query("begin");
      const { rows } = await reader.query<{ now: string }>(`select ${MICROS} as now`);
      const balance = await creditBalance(reader, organizationId);
      await reader.query("commit");
      const modelBalance = model.balance(Number(rows[0]!.now));
      {
        assert.deepEqual(
          { total: balance.total, purchased: balance.purchased, subscription: balance.subscription },
          modelBalance,
          `${where}: get_credit_balance matches the model`,
        );
      }
    }
    await assertInvariants(pool, organizationId);
  } finally {
    for (const client of clients) client.release();
  }
});
