/**
 * /rest/v1 reads of every product table through supabase-js, as owner, member, stranger,
 * anon and service role: RLS is the real thing because each request runs as the JWT's role.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import type { SupabaseClient } from "@supabase/supabase-js";
import pg from "pg";
import { client, type Persona, signUp, type StackUnderTest, stackUnderTest } from "./support.ts";

let stack: StackUnderTest;
let owner: Persona;
let member: Persona;
let stranger: Persona;
let anon: SupabaseClient;
let service: SupabaseClient;
let orgA: string;
let orgB: string;
/** Public tables that carry an organization (plus `organizations` itself), from the catalog. */
let tenantTables: string[] = [];
const catalogTables = ["subscription_plans", "credit_products", "credit_events"];

before(async () => {
  stack = await stackUnderTest();
  anon = client(stack);
  service = client(stack, stack.serviceRoleKey);
  [owner, member, stranger] = await Promise.all([signUp(stack, "owner"), signUp(stack, "member"), signUp(stack, "stranger")]);
  const created = await owner.db.rpc("create_organization", { p_name: "Org A" });
  assert.equal(created.error, null);
  orgA = created.data as string;
  orgB = (await stranger.db.rpc("create_organization", { p_name: "Org B" })).data as string;
  assert.equal((await owner.db.rpc("add_organization_member", { p_organization_id: orgA, p_user_id: member.userId, p_role: "member" })).error, null);
  for (const org of [orgA, orgB]) {
    const grant = await service.rpc("grant_credits", { p_organization_id: org, p_amount: 100, p_source: "purchased", p_reference: `rls-${org}` });
    assert.equal(grant.error, null);
    const history = await service.rpc("record_billing_history", {
      p_organization_id: org, p_stripe_reference: `in_${randomUUID().replaceAll("-", "")}`, p_kind: "credit_purchase", p_status: "paid",
      p_amount: 1000, p_currency: "usd", p_occurred_at: new Date().toISOString(),
    });
    assert.equal(history.error, null);
  }
  assert.equal((await owner.db.rpc("consume_credits", { p_organization_id: orgA, p_event_key: "api_call_premium" })).error, null);
  assert.equal((await stranger.db.rpc("consume_credits", { p_organization_id: orgB, p_event_key: "api_call_basic" })).error, null);

  const db = new pg.Client({ connectionString: process.env.TEST_DATABASE_URL });
  await db.connect();
  try {
    for (const org of [orgA, orgB]) {
      await db.query(
        `insert into public.organization_subscriptions (organization_id, billing_interval, status, stripe_subscription_id, stripe_customer_id)
         values ($1, 'month', 'active', $2, $3)`,
        [org, `sub_${randomUUID()}`, `cus_${randomUUID()}`],
      );
    }
    const { rows } = await db.query<{ table_name: string }>(
      `select c.relname as table_name from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where n.nspname = 'public' and c.relkind = 'r'
          and (c.relname = 'organizations'
               or exists (select 1 from pg_attribute a where a.attrelid = c.oid and a.attname = 'organization_id' and not a.attisdropped))
        order by 1`,
    );
    tenantTables = rows.map((r) => r.table_name);
  } finally {
    await db.end();
  }
});
after(async () => {
  await stack.close();
});

/** The organization a row belongs to. */
function organizationOf(table: string, row: Record<string, unknown>): unknown {
  return table === "organizations" ? row.id : row.organization_id;
}

describe("RLS through the gateway", () => {
  test("the product's tenant tables are all covered", () => {
    for (const table of ["organizations", "organization_members", "organization_subscriptions", "credit_transactions", "billing_history"]) {
      assert.ok(tenantTables.includes(table), `${table} is a tenant table`);
    }
  });

  test("owner and member read their organization's rows in every tenant table, and only those", async () => {
    for (const persona of [owner, member]) {
      for (const table of tenantTables) {
        const { data, error, status } = await persona.db.from(table).select("*");
        if (error) {
          // Internal tables (webhook inbox, ...) are not granted to members at all.
          assert.equal(status, 403, `${table}: ${error.message}`);
          assert.equal(error.code, "42501");
          continue;
        }
        assert.equal(status, 200);
        for (const row of data as Array<Record<string, unknown>>) {
          assert.equal(organizationOf(table, row), orgA, `${table} shows only org A's rows`);
        }
      }
      for (const table of ["organizations", "organization_members", "organization_subscriptions", "credit_transactions", "credit_lots", "billing_history"]) {
        const { data } = await persona.db.from(table).select("*");
        assert.ok((data as unknown[]).length > 0, `${table} has org A's rows`);
      }
    }
  });

  test("a stranger sees none of org A's rows, with or without a filter, and count=exact leaks nothing", async () => {
    for (const table of tenantTables) {
      const column = table === "organizations" ? "id" : "organization_id";
      const filtered = await stranger.db.from(table).select("*", { count: "exact" }).eq(column, orgA);
      if (filtered.error) {
        assert.equal(filtered.status, 403, `${table}: ${filtered.error.message}`);
        continue;
      }
      assert.deepEqual(filtered.data, [], `${table} filtered on org A`);
      assert.equal(filtered.count, 0, `${table} count for org A`);
      const all = await stranger.db.from(table).select("*");
      for (const row of (all.data ?? []) as Array<Record<string, unknown>>) {
        assert.notEqual(organizationOf(table, row), orgA, `${table} never shows org A`);
      }
    }
  });

  test("anon reads the pricing catalog but no tenant table (401 or nothing)", async () => {
    for (const table of catalogTables) {
      const { data, error } = await anon.from(table).select("*");
      assert.equal(error, null, table);
      assert.ok((data as unknown[]).length > 0, `${table} is public`);
    }
    for (const table of tenantTables) {
      const { data, error, status } = await anon.from(table).select("*");
      if (error) {
        assert.equal(status, 401, `${table}: anon is refused with 401`);
        assert.equal(error.code, "42501");
      } else {
        assert.deepEqual(data, [], `${table}: anon sees nothing`);
      }
    }
  });

  test("the service role reads every organization's rows", async () => {
    const { data, error } = await service.from("organizations").select("id").in("id", [orgA, orgB]);
    assert.equal(error, null);
    assert.equal((data as unknown[]).length, 2);
  });

  test("table writes are refused with 405 for everyone (the product writes through functions)", async () => {
    for (const db of [owner.db, service]) {
      const insert = await db.from("organizations").insert({ name: "nope" });
      assert.equal(insert.status, 405);
      const update = await db.from("organizations").update({ name: "nope" }).eq("id", orgA);
      assert.equal(update.status, 405);
      const remove = await db.from("credit_transactions").delete().eq("organization_id", orgA);
      assert.equal(remove.status, 405);
    }
  });
});
