/**
 * Shared pieces of the TypeScript database suites: connections to the test database, setup
 * shortcuts that go through the real SQL functions, and the ledger invariants that
 * RELIABILITY.md says must hold after every concurrency test.
 */
import assert from "node:assert/strict";
import pg from "pg";

export function testDatabaseUrl(): string {
  const url = process.env.TEST_DATABASE_URL;
  if (!url) throw new Error("TEST_DATABASE_URL is not set: run the suites through `npm test`.");
  return url;
}

/** A pool of real connections to the test database, as the trusted service login. */
export function testPool(max: number): pg.Pool {
  return new pg.Pool({ connectionString: testDatabaseUrl(), max });
}

export interface Balance {
  total: number;
  purchased: number;
  subscription: number;
  reserved?: number;
  next_expiry_at?: string | null;
  expiring_amount?: number;
}

export interface ReserveResult {
  reservation_id: string;
  credits_reserved: number;
  expires_at: string;
  balance: Balance;
  idempotent_replay: boolean;
}

export interface SettleResult {
  reservation_id: string;
  transaction_id: string | null;
  credits_consumed: number;
  credits_released: number;
  purchased_used: number;
  subscription_used: number;
  balance: Balance;
}

export interface BatchEvent {
  event_key: string;
  quantity?: number;
  idempotency_key?: string;
  metadata?: Record<string, unknown>;
}

export interface BatchResult {
  results: Array<{ status: string; transaction_id?: string; credits_consumed?: number; error?: string }>;
  credits_consumed: number;
  balance: Balance;
}

export interface ConsumeResult {
  transaction_id: string;
  credits_consumed: number;
  purchased_used: number;
  subscription_used: number;
  balance: Balance;
  idempotent_replay: boolean;
}

/** The outcome of a call: its JSON result, or the SQLSTATE it failed with. */
export type Outcome<T> = { ok: true; value: T } | { ok: false; code: string; message: string };

export async function attempt<T>(run: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await run() };
  } catch (error) {
    const { code, message } = error as { code?: string; message?: string };
    if (!code) throw error;
    return { ok: false, code, message: message ?? "" };
  }
}

type Queryable = pg.Pool | pg.PoolClient | pg.Client;

export async function createOrganization(db: Queryable, name = "Test organization"): Promise<string> {
  const { rows } = await db.query<{ id: string }>("insert into public.organizations (name) values ($1) returning id", [name]);
  return rows[0]!.id;
}

export async function grantCredits(
  db: Queryable,
  organizationId: string,
  amount: number,
  source: "purchased" | "subscription",
  expiresAt: string | null = null,
  reference: string | null = null,
): Promise<unknown> {
  const { rows } = await db.query("select public.grant_credits($1, $2, $3, $4, $5) as result", [
    organizationId, amount, source, expiresAt, reference,
  ]);
  return rows[0].result;
}

export async function consumeCredits(
  db: Queryable,
  organizationId: string,
  eventKey: string,
  quantity = 1,
  idempotencyKey: string | null = null,
  metadata: Record<string, unknown> = {},
): Promise<ConsumeResult> {
  const { rows } = await db.query("select public.consume_credits($1, $2, $3, $4, $5) as result", [
    organizationId, eventKey, quantity, idempotencyKey, JSON.stringify(metadata),
  ]);
  return rows[0].result as ConsumeResult;
}

export async function reserveCredits(
  db: Queryable,
  organizationId: string,
  eventKey: string,
  quantity = 1,
  idempotencyKey: string | null = null,
  ttlSeconds = 900,
): Promise<ReserveResult> {
  const { rows } = await db.query("select public.reserve_credits($1, $2, $3, $4, $5) as result", [
    organizationId, eventKey, quantity, idempotencyKey, ttlSeconds,
  ]);
  return rows[0].result as ReserveResult;
}

export async function settleReservation(db: Queryable, reservationId: string, quantity: number | null = null): Promise<SettleResult> {
  const { rows } = await db.query("select public.settle_reservation($1, $2) as result", [reservationId, quantity]);
  return rows[0].result as SettleResult;
}

export async function releaseReservation(db: Queryable, reservationId: string): Promise<{ credits_released: number; balance: Balance }> {
  const { rows } = await db.query("select public.release_reservation($1) as result", [reservationId]);
  return rows[0].result as { credits_released: number; balance: Balance };
}

export async function consumeBatch(db: Queryable, organizationId: string, events: BatchEvent[]): Promise<BatchResult> {
  const { rows } = await db.query("select public.consume_credits_batch($1, $2) as result", [organizationId, JSON.stringify(events)]);
  return rows[0].result as BatchResult;
}

export async function setSpendLimit(db: Queryable, organizationId: string, monthlyCredits: number | null): Promise<void> {
  await db.query("select public.set_spend_limit($1, $2)", [organizationId, monthlyCredits]);
}

export async function creditBalance(db: Queryable, organizationId: string): Promise<Balance> {
  const { rows } = await db.query("select public.get_credit_balance($1) as result", [organizationId]);
  return rows[0].result as Balance;
}

export interface LedgerRow {
  id: string;
  kind: string;
  source: string;
  amount: number;
  balance_after: number;
  lot_id: string;
  created_at: Date;
}

/** Every ledger row of the organization, in the order written. */
export async function ledger(db: Queryable, organizationId: string): Promise<LedgerRow[]> {
  const { rows } = await db.query<LedgerRow>(
    `select id, kind, source, amount, balance_after, lot_id, created_at
       from public.credit_transactions where organization_id = $1 order by id`,
    [organizationId],
  );
  return rows;
}

/**
 * Asserts the ledger invariants for one organization:
 * - no lot below zero or above what was granted;
 * - the ledger's amounts sum to the lots' remaining credit, and each row's balance_after is
 *   the running sum (so granted − consumed − expired = balance);
 * - get_credit_balance equals the unexpired remaining credit;
 * - nothing was consumed from a lot at or after its expiry;
 * - precedence held at the moment of each consumption: under purchased_first no subscription
 *   credit was used while purchased credit remained, under expiring_first no purchased credit
 *   while subscription (expiring) credit remained;
 * - at most one consumption per idempotency key;
 * - rows seen before (`before`) are unchanged.
 */
export async function assertInvariants(pool: pg.Pool, organizationId: string, before: LedgerRow[] = []): Promise<void> {
  // One snapshot and one now() for every check, so a lot expiring mid-check cannot skew them.
  const db = await pool.connect();
  try {
    await db.query("begin isolation level repeatable read");
    await checkInvariants(db, organizationId, before);
  } finally {
    await db.query("rollback");
    db.release();
  }
}

async function checkInvariants(db: pg.PoolClient, organizationId: string, before: LedgerRow[]): Promise<void> {
  const lots = await db.query<{ bad: number }>(
    "select count(*)::int as bad from public.credit_lots where organization_id = $1 and (remaining < 0 or remaining > granted)",
    [organizationId],
  );
  assert.equal(lots.rows[0]!.bad, 0, "no lot is below zero or above what it was granted");

  const rows = await ledger(db, organizationId);
  let running = 0;
  for (const row of rows) {
    running += row.amount;
    assert.equal(row.balance_after, running, `ledger row ${row.id} carries the running balance`);
  }
  // A reservation past its expiry holds nothing even before it is written down: its credits
  // count again where their lot is still live.
  const remaining = await db.query<{ total: number; spendable: number; reserved: number }>(
    `select coalesce(sum(l.remaining), 0)::int as total,
            coalesce(sum(l.remaining) filter (where l.expires_at is null or l.expires_at > now()), 0)::int
              + (select coalesce(-sum(t.amount), 0)::int
                   from public.credit_reservations r
                   join public.credit_transactions t on t.organization_id = r.organization_id and t.reservation_id = r.id
                   join public.credit_lots x on x.id = t.lot_id
                  where r.organization_id = $1 and r.status = 'open' and r.expires_at <= now()
                    and (x.expires_at is null or x.expires_at > now())) as spendable,
            (select coalesce(sum(r.credits), 0)::int from public.credit_reservations r
              where r.organization_id = $1 and r.status = 'open' and r.expires_at > now()) as reserved
       from public.credit_lots l where l.organization_id = $1`,
    [organizationId],
  );
  assert.equal(running, remaining.rows[0]!.total, "granted − consumed − expired − reserved equals the lots' remaining credit");
  const balance = await creditBalance(db, organizationId);
  assert.equal(balance.total, remaining.rows[0]!.spendable, "get_credit_balance reports the unexpired, unreserved remaining credit");
  assert.equal(balance.total, balance.purchased + balance.subscription, "the balance splits into its sources");
  assert.equal(balance.reserved, remaining.rows[0]!.reserved, "get_credit_balance reports what live reservations hold");

  const holdings = await db.query<{ wrong: number }>(
    `select count(*)::int as wrong
       from public.credit_reservations r
       left join lateral (select coalesce(-sum(t.amount), 0) as held from public.credit_transactions t
                           where t.organization_id = r.organization_id and t.reservation_id = r.id) h on true
      where r.organization_id = $1 and h.held <> case when r.status = 'open' then r.credits else 0 end`,
    [organizationId],
  );
  assert.equal(holdings.rows[0]!.wrong, 0, "an open reservation's ledger rows hold its credits; a closed one's hold nothing");

  // Reserved credits are spent only by their own settlement: credits reserved before a lot
  // expired may be consumed after it (a live reservation settles in full); nothing else may.
  const late = await db.query<{ late: number }>(
    `select count(*)::int as late
       from public.credit_transactions t join public.credit_lots l on l.id = t.lot_id
      where t.organization_id = $1 and t.kind = 'consumption' and l.expires_at is not null and t.created_at >= l.expires_at
        and not exists (select 1 from public.credit_consumptions c
                          join public.credit_reservations r on r.organization_id = c.organization_id and r.id = c.reservation_id
                         where c.id = t.consumption_id and r.created_at < l.expires_at)`,
    [organizationId],
  );
  assert.equal(late.rows[0]!.late, 0, "nothing was consumed from a lot at or after its expiry, but what a reservation held");

  const settlements = await db.query<{ wrong: number }>(
    `select count(*)::int as wrong
       from public.credit_consumptions c
       join public.credit_reservations r on r.organization_id = c.organization_id and r.id = c.reservation_id
      where c.organization_id = $1 and (r.status <> 'settled' or r.consumption_id <> c.id or c.credits > r.credits)`,
    [organizationId],
  );
  assert.equal(settlements.rows[0]!.wrong, 0, "each settlement consumed within its own reservation, once");

  const overLimit = await db.query<{ over: number }>(
    `select count(*)::int as over
       from public.organizations o
       join public.credit_spend_months m on m.organization_id = o.id
      where o.id = $1 and o.monthly_spend_limit is not null
        and m.month_start = (date_trunc('month', now() at time zone 'utc'))::date
        and m.consumed_credits <> (select coalesce(sum(c.credits), 0) from public.credit_consumptions c
                                    where c.organization_id = o.id
                                      and c.created_at >= (m.month_start::timestamp at time zone 'utc'))`,
    [organizationId],
  );
  assert.equal(overLimit.rows[0]!.over, 0, "the month's spend counter equals the month's consumptions");

  // Precedence is applied when credits are taken: for a settlement, at reservation time.
  const precedence = await db.query<{ wrong: number }>(
    `select count(*)::int as wrong
       from public.credit_consumptions c
      where c.organization_id = $1
        and c.reservation_id is null
        and case c.precedence
              when 'purchased_first' then c.subscription_used > 0 and (c.result -> 'balance' ->> 'purchased')::int > 0
              else c.purchased_used > 0 and (c.result -> 'balance' ->> 'subscription')::int > 0
            end`,
    [organizationId],
  );
  assert.equal(precedence.rows[0]!.wrong, 0, "each consumption followed the precedence in force when it ran");

  const keys = await db.query<{ duplicated: number }>(
    `select count(*)::int as duplicated from (
       select idempotency_key from public.credit_consumptions
        where organization_id = $1 and idempotency_key is not null
        group by idempotency_key having count(*) > 1) d`,
    [organizationId],
  );
  assert.equal(keys.rows[0]!.duplicated, 0, "at most one consumption per idempotency key");

  const now = new Map(rows.map((row) => [row.id, row]));
  for (const old of before) {
    assert.deepEqual(now.get(old.id), old, `ledger row ${old.id} is unchanged`);
  }
}

/** A small, fast, seedable PRNG (mulberry32), so a failing random run reproduces from its seed. */
export function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
