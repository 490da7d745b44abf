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
  next_expiry_at?: string | null;
  expiring_amount?: number;
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
  const remaining = await db.query<{ total: number; spendable: number }>(
    `select coalesce(sum(remaining), 0)::int as total,
            coalesce(sum(remaining) filter (where expires_at is null or expires_at > now()), 0)::int as spendable
       from public.credit_lots where organization_id = $1`,
    [organizationId],
  );
  assert.equal(running, remaining.rows[0]!.total, "granted − consumed − expired equals the lots' remaining credit");
  const balance = await creditBalance(db, organizationId);
  assert.equal(balance.total, remaining.rows[0]!.spendable, "get_credit_balance reports the unexpired remaining credit");
  assert.equal(balance.total, balance.purchased + balance.subscription, "the balance splits into its sources");

  const late = await db.query<{ late: number }>(
    `select count(*)::int as late
       from public.credit_transactions t join public.credit_lots l on l.id = t.lot_id
      where t.organization_id = $1 and t.kind = 'consumption' and l.expires_at is not null and t.created_at >= l.expires_at`,
    [organizationId],
  );
  assert.equal(late.rows[0]!.late, 0, "nothing was consumed from a lot at or after its expiry");

  const precedence = await db.query<{ wrong: number }>(
    `select count(*)::int as wrong
       from public.credit_consumptions c
      where c.organization_id = $1
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
