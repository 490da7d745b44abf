/**
 * A seeded random run of grants, consumptions (with replayed and conflicting idempotency
 * keys), precedence switches, expiries, reservations (reserve, settle, release, expiry),
 * batches and spend limits over several connections, checked against an in-memory model of
 * the credit rules after every step.
 *
 * Each step runs in its own transaction that first reads the database's `now()`, so the
 * model knows exactly which lots and reservations had expired at that instant. A failure
 * prints the seed and step; `MODEL_SEED=<seed> npm test` replays the same run.
 */
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type pg from "pg";
import {
  assertInvariants,
  attempt,
  type BatchEvent,
  type BatchResult,
  createOrganization,
  creditBalance,
  type ConsumeResult,
  seededRandom,
  type SettleResult,
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
interface ModelReservation {
  eventKey: string;
  quantity: number;
  unitCost: number;
  credits: number;
  expiresAt: number;
  status: "open" | "settled" | "released" | "expired";
  holdings: Array<{ lot: ModelLot; credits: number }>;
}
type Refusal = { ok: false; code: string };

const EVENT_COSTS: Record<string, number> = { api_call_basic: 1, api_call_premium: 5, storage_gb_month: 10, ai_inference: 25 };

/** The credit rules, restated independently of the SQL. Times are database microseconds. */
class CreditModel {
  lots: ModelLot[] = [];
  precedence: "purchased_first" | "expiring_first" = "purchased_first";
  consumptions = new Map<string, ModelConsumption>();
  reservations = new Map<string, ModelReservation>();
  reservationKeys = new Map<string, { id: string; quantity: number; eventKey: string; ttl: number }>();
  spendLimit: number | null = null;
  /** Every consumption's credits and time, for this month's usage. */
  spent: Array<{ at: number; credits: number }> = [];
  private nextOrder = 0;

  private live(lot: ModelLot, now: number): boolean {
    return lot.expiresAt === null || lot.expiresAt > now;
  }

  /** What every writer does first: reservations past their expiry give their credits back. */
  writeDown(now: number): void {
    for (const reservation of this.reservations.values()) {
      if (reservation.status === "open" && reservation.expiresAt <= now) {
        for (const h of reservation.holdings) h.lot.remaining += h.credits;
        reservation.status = "expired";
      }
    }
    for (const lot of this.lots) if (!this.live(lot, now)) lot.remaining = 0;
  }

  reserved(now: number): number {
    let sum = 0;
    for (const r of this.reservations.values()) if (r.status === "open" && r.expiresAt > now) sum += r.credits;
    return sum;
  }

  /** Spendable credit now: live lots, plus what expired, unswept reservations hold in live lots. */
  balance(now: number) {
    let purchased = 0;
    let subscription = 0;
    const add = (lot: ModelLot, credits: number) => {
      if (!this.live(lot, now)) return;
      if (lot.source === "purchased") purchased += credits;
      else subscription += credits;
    };
    for (const lot of this.lots) add(lot, lot.remaining);
    for (const r of this.reservations.values()) {
      if (r.status === "open" && r.expiresAt <= now) for (const h of r.holdings) add(h.lot, h.credits);
    }
    return { total: purchased + subscription, purchased, subscription };
  }

  private usage(now: number): number {
    const month = new Date(now / 1000);
    const monthStart = Date.UTC(month.getUTCFullYear(), month.getUTCMonth(), 1) * 1000;
    return this.spent.filter((s) => s.at >= monthStart).reduce((sum, s) => sum + s.credits, 0) + this.reserved(now);
  }

  private overLimit(now: number, cost: number): boolean {
    return this.spendLimit !== null && this.usage(now) + cost > this.spendLimit;
  }

  private spendable(now: number): ModelLot[] {
    const rank = (l: ModelLot) =>
      this.precedence === "purchased_first" ? (l.source === "purchased" ? 0 : 1) : l.expiresAt === null ? 1 : 0;
    return this.lots
      .filter((l) => l.remaining > 0 && this.live(l, now))
      .sort((a, b) => rank(a) - rank(b) || (a.expiresAt ?? Infinity) - (b.expiresAt ?? Infinity) || a.order - b.order);
  }

  /** Takes `cost` from the spendable lots in precedence order; null when they hold too little. */
  private take(now: number, cost: number): Array<{ lot: ModelLot; credits: number }> | null {
    const lots = this.spendable(now);
    if (lots.reduce((s, l) => s + l.remaining, 0) < cost) return null;
    const taken: Array<{ lot: ModelLot; credits: number }> = [];
    let needed = cost;
    for (const lot of lots) {
      if (needed === 0) break;
      const credits = Math.min(needed, lot.remaining);
      lot.remaining -= credits;
      needed -= credits;
      taken.push({ lot, credits });
    }
    return taken;
  }

  grant(now: number, amount: number, source: Source, expiresAt: number | null): void {
    this.writeDown(now);
    this.lots.push({ source, remaining: amount, expiresAt, order: this.nextOrder++ });
  }

  consume(now: number, eventKey: string, quantity: number, key: string | null):
    { ok: true; result: ModelConsumption["result"]; replay: boolean } | Refusal {
    if (key !== null) {
      const prior = this.consumptions.get(key);
      if (prior) {
        if (prior.eventKey === eventKey && prior.quantity === quantity) return { ok: true, result: prior.result, replay: true };
        return { ok: false, code: "PT409" };
      }
    }
    this.writeDown(now);
    const cost = EVENT_COSTS[eventKey]! * quantity;
    if (this.overLimit(now, cost)) return { ok: false, code: "PT429" };
    const taken = this.take(now, cost);
    if (!taken) return { ok: false, code: "PT402" };
    const used = { purchased: 0, subscription: 0 };
    for (const t of taken) used[t.lot.source] += t.credits;
    this.spent.push({ at: now, credits: cost });
    const result = { credits_consumed: cost, purchased_used: used.purchased, subscription_used: used.subscription, balance: this.balance(now) };
    if (key !== null) this.consumptions.set(key, { eventKey, quantity, result });
    return { ok: true, result, replay: false };
  }

  batch(now: number, events: BatchEvent[]) {
    this.writeDown(now);
    const statuses: Array<{ status: string; credits_consumed?: number }> = [];
    let consumed = 0;
    for (const event of events) {
      const quantity = event.quantity ?? 1;
      const key = event.idempotency_key ?? null;
      const prior = key === null ? undefined : this.consumptions.get(key);
      if (prior) {
        const same = prior.eventKey === event.event_key && prior.quantity === quantity;
        statuses.push(same ? { status: "replayed", credits_consumed: prior.result.credits_consumed } : { status: "conflict" });
        continue;
      }
      if (!(event.event_key in EVENT_COSTS)) {
        statuses.push({ status: "unknown_event" });
        continue;
      }
      const outcome = this.consume(now, event.event_key, quantity, key);
      if (outcome.ok) {
        statuses.push({ status: "consumed", credits_consumed: outcome.result.credits_consumed });
        consumed += outcome.result.credits_consumed;
      } else {
        statuses.push({ status: outcome.code === "PT429" ? "spend_limit_reached" : "insufficient_credits" });
      }
    }
    return { statuses, consumed, balance: { ...this.balance(now), reserved: this.reserved(now) } };
  }

  reserve(now: number, id: string | null, eventKey: string, quantity: number, key: string | null, ttl: number, expiresAt: number | null):
    { ok: true; replayOf?: string; credits: number; balance: object } | Refusal {
    if (key !== null) {
      const prior = this.reservationKeys.get(key);
      if (prior) {
        if (prior.eventKey === eventKey && prior.quantity === quantity && prior.ttl === ttl) {
          return { ok: true, replayOf: prior.id, credits: 0, balance: {} };
        }
        return { ok: false, code: "PT409" };
      }
    }
    this.writeDown(now);
    const unitCost = EVENT_COSTS[eventKey]!;
    const cost = unitCost * quantity;
    if (this.overLimit(now, cost)) return { ok: false, code: "PT429" };
    const holdings = this.take(now, cost);
    if (!holdings) return { ok: false, code: "PT402" };
    // The caller passes the id and expiry the database gave once it knows the call succeeded.
    this.reservations.set(id!, { eventKey, quantity, unitCost, credits: cost, expiresAt: expiresAt!, status: "open", holdings });
    if (key !== null) this.reservationKeys.set(key, { id: id!, eventKey, quantity, ttl });
    return { ok: true, credits: cost, balance: { ...this.balance(now), reserved: this.reserved(now) } };
  }

  /** The reservation's state as settle and release judge it: PT410 expired, PT409 closed. */
  private closable(now: number, id: string): ModelReservation | Refusal {
    const r = this.reservations.get(id)!;
    if (r.status === "expired" || (r.status === "open" && r.expiresAt <= now)) return { ok: false, code: "PT410" };
    if (r.status !== "open") return { ok: false, code: "PT409" };
    return r;
  }

  settle(now: number, id: string, quantity: number | null) {
    const r = this.closable(now, id);
    if ("ok" in r) return r;
    const settled = quantity ?? r.quantity;
    if (settled > r.quantity) return { ok: false as const, code: "22023" };
    this.writeDown(now);
    let needed = r.unitCost * settled;
    const used = { purchased: 0, subscription: 0 };
    for (const h of r.holdings) {
      const credits = Math.min(needed, h.credits);
      needed -= credits;
      used[h.lot.source] += credits;
      h.lot.remaining += h.credits - credits;
    }
    this.writeDown(now);
    r.status = "settled";
    this.spent.push({ at: now, credits: r.unitCost * settled });
    return {
      ok: true as const,
      result: {
        credits_consumed: r.unitCost * settled,
        credits_released: r.credits - r.unitCost * settled,
        purchased_used: used.purchased,
        subscription_used: used.subscription,
        balance: { ...this.balance(now), reserved: this.reserved(now) },
      },
    };
  }

  release(now: number, id: string) {
    const r = this.closable(now, id);
    if ("ok" in r) return r;
    this.writeDown(now);
    for (const h of r.holdings) h.lot.remaining += h.credits;
    this.writeDown(now);
    r.status = "released";
    return { ok: true as const, result: { credits_released: r.credits, balance: { ...this.balance(now), reserved: this.reserved(now) } } };
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
  const reservationIds: string[] = [];
  const seen = { reserved: 0, settled: 0, released: 0, expired: 0, batches: 0, limited: 0 };

  try {
    for (let i = 0; i < steps; i++) {
      const where = `seed ${seed}, step ${i} (replay with MODEL_SEED=${seed})`;
      const client = pick(clients);
      const roll = random();

      if (roll < 0.12) {
        const amount = 1 + Math.floor(random() * 200);
        const { now, outcome } = await step(client, () =>
          client.query("select public.grant_credits($1, $2, 'purchased')", [organizationId, amount]));
        assert.ok(outcome.ok, `${where}: purchased grant succeeds`);
        model.grant(now, amount, "purchased", null);
      } else if (roll < 0.24) {
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
      } else if (roll < 0.27) {
        const policy = pick(["purchased_first", "expiring_first"] as const);
        await client.query("select public.set_credit_precedence($1, $2)", [organizationId, policy]);
        model.precedence = policy;
      } else if (roll < 0.39) {
        // Reservations live one or two seconds, so some expire during the run.
        const eventKey = pick(Object.keys(EVENT_COSTS));
        const quantity = 1 + Math.floor(random() * 4);
        const key = random() < 0.2 ? `reservation-${Math.floor(random() * 10)}` : null;
        const ttl = 1 + Math.floor(random() * 2);
        const { now, outcome } = await step(client, async () => {
          const { rows } = await client.query<{ result: { reservation_id: string; credits_reserved: number; balance: object; idempotent_replay: boolean }; expires_at: string }>(
            `select r as result, (extract(epoch from (r ->> 'expires_at')::timestamptz) * 1000000)::bigint::text as expires_at
               from public.reserve_credits($1, $2, $3, $4, $5) r`,
            [organizationId, eventKey, quantity, key, ttl],
          );
          return rows[0]!;
        });
        const id = outcome.ok ? outcome.value.result.reservation_id : null;
        const expected = model.reserve(now, id, eventKey, quantity, key, ttl, outcome.ok ? Number(outcome.value.expires_at) : null);
        if (expected.ok) {
          assert.ok(outcome.ok, `${where}: reserve ${quantity} × ${eventKey} succeeds (${!outcome.ok ? outcome.code : ""})`);
          if (expected.replayOf) {
            assert.equal(outcome.value.result.reservation_id, expected.replayOf, `${where}: a replayed key returns the first reservation`);
            assert.equal(outcome.value.result.idempotent_replay, true, `${where}: marked as a replay`);
          } else {
            assert.equal(outcome.value.result.credits_reserved, expected.credits, `${where}: reserved credits match the model`);
            assert.deepEqual(outcome.value.result.balance, expected.balance, `${where}: reservation balance matches the model`);
            reservationIds.push(id!);
            seen.reserved++;
          }
        } else {
          assert.equal(outcome.ok ? "ok" : outcome.code, expected.code, `${where}: reservation refused with ${expected.code}`);
        }
      } else if (roll < 0.49 && reservationIds.length > 0) {
        const id = pick(reservationIds);
        const settle = random() < 0.7;
        const quantity = random() < 0.3 ? null : Math.floor(random() * 5);
        const { now, outcome } = await step(client, async () => {
          const { rows } = settle
            ? await client.query("select public.settle_reservation($1, $2) as result", [id, quantity])
            : await client.query("select public.release_reservation($1) as result", [id]);
          return rows[0].result as SettleResult;
        });
        const expected = settle ? model.settle(now, id, quantity) : model.release(now, id);
        if (expected.ok) {
          assert.ok(outcome.ok, `${where}: ${settle ? "settle" : "release"} succeeds (${!outcome.ok ? outcome.code : ""})`);
          const { reservation_id: _r, transaction_id: _t, ...rest } = outcome.value;
          assert.deepEqual(rest, expected.result, `${where}: ${settle ? "settlement" : "release"} matches the model`);
          if (settle) seen.settled++;
          else seen.released++;
        } else {
          assert.equal(outcome.ok ? "ok" : outcome.code, expected.code, `${where}: refused with ${expected.code}`);
          if (expected.code === "PT410") seen.expired++;
        }
      } else if (roll < 0.57) {
        const events: BatchEvent[] = Array.from({ length: 1 + Math.floor(random() * 12) }, (_, k) => {
          const event: BatchEvent = { event_key: random() < 0.05 ? "no_such_event" : pick(Object.keys(EVENT_COSTS)) };
          if (random() < 0.5) event.quantity = 1 + Math.floor(random() * 4);
          if (random() < 0.3) event.idempotency_key = usedKeys.length > 0 && random() < 0.5 ? pick(usedKeys) : `key-${i}-${k}`;
          return event;
        });
        const { now, outcome } = await step(client, async () => {
          const { rows } = await client.query("select public.consume_credits_batch($1, $2) as result", [organizationId, JSON.stringify(events)]);
          return rows[0].result as BatchResult;
        });
        const expected = model.batch(now, events);
        assert.ok(outcome.ok, `${where}: a batch never fails as a whole (${!outcome.ok ? outcome.code : ""})`);
        assert.deepEqual(
          outcome.value.results.map((r) => (r.credits_consumed === undefined ? { status: r.status } : { status: r.status, credits_consumed: r.credits_consumed })),
          expected.statuses,
          `${where}: every batch event's outcome matches the model`,
        );
        assert.equal(outcome.value.credits_consumed, expected.consumed, `${where}: batch credits match the model`);
        assert.deepEqual(outcome.value.balance, expected.balance, `${where}: batch balance matches the model`);
        for (const e of events) if (e.idempotency_key && !usedKeys.includes(e.idempotency_key) && model.consumptions.has(e.idempotency_key)) usedKeys.push(e.idempotency_key);
        seen.batches++;
      } else if (roll < 0.60) {
        // A limit somewhere around what has been spent so far, or none.
        const limit = random() < 0.3 ? null : model.spent.reduce((s, x) => s + x.credits, 0) + Math.floor(random() * 300);
        const { now, outcome } = await step(client, () => client.query("select public.set_spend_limit($1, $2)", [organizationId, limit]));
        assert.ok(outcome.ok, `${where}: setting the spend limit succeeds`);
        model.writeDown(now);
        model.spendLimit = limit;
        if (limit !== null) seen.limited++;
      } else if (roll < 0.62) {
        const { now, outcome } = await step(client, () => client.query("select public.expire_reservations()"));
        assert.ok(outcome.ok, `${where}: the reservation sweep succeeds`);
        if ([...model.reservations.values()].some((r) => r.status === "open" && r.expiresAt <= now)) model.writeDown(now);
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
      const readAt = Number(rows[0]!.now);
      assert.deepEqual(
        { total: balance.total, purchased: balance.purchased, subscription: balance.subscription, reserved: balance.reserved },
        { ...model.balance(readAt), reserved: model.reserved(readAt) },
        `${where}: get_credit_balance matches the model`,
      );
    }
    t.diagnostic(`reservations ${seen.reserved}, settled ${seen.settled}, released ${seen.released}, expired ${seen.expired}, batches ${seen.batches}, limits ${seen.limited}`);
    await assertInvariants(pool, organizationId);
  } finally {
    for (const client of clients) client.release();
  }
});
