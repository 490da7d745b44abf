/**
 * The PostgREST query subset through supabase-js: every filter, order, range, count and
 * single-object form the dashboard uses, and clear refusals for what the gateway lacks.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { SupabaseClient } from "@supabase/supabase-js";
import { client, type StackUnderTest, stackUnderTest } from "./support.ts";

let stack: StackUnderTest;
let anon: SupabaseClient;

interface Event {
  event_key: string;
  credit_cost: number;
}

before(async () => {
  stack = await stackUnderTest();
  anon = client(stack);
});
after(async () => {
  await stack.close();
});

const keys = (data: unknown) => (data as Event[]).map((e) => e.event_key);

describe("REST filters", () => {
  test("eq, neq, gt, gte, lt, lte", async () => {
    const base = () => anon.from("credit_events").select("event_key, credit_cost").order("credit_cost");
    assert.deepEqual(keys((await base().eq("credit_cost", 5)).data), ["api_call_premium"]);
    assert.deepEqual(keys((await base().neq("credit_cost", 1).lt("credit_cost", 25)).data), ["api_call_premium", "storage_gb_month"]);
    assert.deepEqual(keys((await base().gt("credit_cost", 10)).data), ["ai_inference"]);
    assert.deepEqual(keys((await base().gte("credit_cost", 10)).data), ["storage_gb_month", "ai_inference"]);
    assert.deepEqual(keys((await base().lte("credit_cost", 1)).data), ["api_call_basic"]);
  });

  test("like, ilike (with * wildcards), is, in, not", async () => {
    const base = () => anon.from("credit_events").select("event_key, credit_cost").order("event_key");
    assert.deepEqual(keys((await base().like("event_key", "api_call_*")).data), ["api_call_basic", "api_call_premium"]);
    assert.deepEqual(keys((await base().ilike("event_key", "%INFER%")).data), ["ai_inference"]);
    assert.deepEqual(keys((await base().is("description", null)).data), []);
    assert.deepEqual(keys((await base().in("event_key", ["ai_inference", "storage_gb_month", "no,such"])).data), ["ai_inference", "storage_gb_month"]);
    assert.deepEqual(keys((await base().not("event_key", "like", "api_*")).data), ["ai_inference", "storage_gb_month"]);
    assert.deepEqual(keys((await base().not("description", "is", null).eq("credit_cost", 1)).data), ["api_call_basic"]);
    assert.deepEqual(keys((await base().in("event_key", [])).data), []);
  });

  test("or=(…) with a nested and(…)", async () => {
    const { data, error } = await anon
      .from("credit_events")
      .select("event_key")
      .or("credit_cost.eq.1,and(credit_cost.gt.5,event_key.like.*storage*)")
      .order("event_key");
    assert.equal(error, null);
    assert.deepEqual(keys(data), ["api_call_basic", "storage_gb_month"]);
  });

  test("select renames and casts columns", async () => {
    const { data, error } = await anon.from("credit_events").select("key:event_key, cost:credit_cost::text").eq("event_key", "ai_inference");
    assert.equal(error, null);
    assert.deepEqual(data, [{ key: "ai_inference", cost: "25" }]);
  });

  test("a filter value is always data, never SQL", async () => {
    const { data, error } = await anon.from("credit_events").select("event_key").eq("event_key", "x' or '1'='1");
    assert.equal(error, null);
    assert.deepEqual(data, []);
  });
});

describe("REST order, range, count, single", () => {
  test("order with direction and nullsfirst / nullslast", async () => {
    const desc = await anon.from("subscription_plans").select("code").order("sort_order", { ascending: false });
    assert.deepEqual((desc.data as Array<{ code: string }>).map((p) => p.code), ["enterprise", "professional", "starter"]);
    const nulls = await anon.from("subscription_plans").select("code").order("stripe_product_id", { nullsFirst: true }).order("code");
    assert.equal(nulls.error, null);
    assert.deepEqual((nulls.data as Array<{ code: string }>).map((p) => p.code), ["enterprise", "professional", "starter"]);
  });

  test("range and limit page through rows; count=exact reports the total in Content-Range", async () => {
    const page = await anon.from("credit_events").select("event_key", { count: "exact" }).order("event_key").range(1, 2);
    assert.equal(page.error, null);
    assert.deepEqual(keys(page.data), ["api_call_basic", "api_call_premium"]);
    assert.equal(page.count, 4);
    assert.equal(page.status, 206);
    const limited = await anon.from("credit_events").select("event_key").order("event_key").limit(1);
    assert.deepEqual(keys(limited.data), ["ai_inference"]);
    const raw = await fetch(`${stack.url}/rest/v1/credit_events?select=event_key&order=event_key`, {
      headers: { apikey: stack.anonKey, Range: "0-1", Prefer: "count=exact" },
    });
    assert.equal(raw.headers.get("content-range"), "0-1/4");
    assert.equal(((await raw.json()) as unknown[]).length, 2);
  });

  test("head with count returns the count and no body", async () => {
    const { data, count, error } = await anon.from("credit_events").select("*", { count: "exact", head: true });
    assert.equal(error, null);
    assert.equal(data, null);
    assert.equal(count, 4);
  });

  test("single() returns one object, else 406 PGRST116; maybeSingle() returns null for none", async () => {
    const one = await anon.from("credit_events").select("event_key, credit_cost").eq("event_key", "ai_inference").single();
    assert.deepEqual(one.data, { event_key: "ai_inference", credit_cost: 25 });
    const many = await anon.from("credit_events").select("event_key").single();
    assert.equal(many.status, 406);
    assert.equal(many.error?.code, "PGRST116");
    const none = await anon.from("credit_events").select("event_key").eq("event_key", "nope").single();
    assert.equal(none.status, 406);
    const maybe = await anon.from("credit_events").select("event_key").eq("event_key", "nope").maybeSingle();
    assert.equal(maybe.error, null);
    assert.equal(maybe.data, null);
  });
});

describe("REST errors", () => {
  test("an unknown table is 404 PGRST205; an unknown column is 400 42703", async () => {
    const table = await anon.from("no_such_table").select("*");
    assert.equal(table.status, 404);
    assert.equal(table.error?.code, "PGRST205");
    const column = await anon.from("credit_events").select("no_such_column");
    assert.equal(column.status, 400);
    assert.equal(column.error?.code, "42703");
  });

  test("no schema but public is reachable", async () => {
    const other = await anon.schema("auth").from("users").select("*");
    assert.equal(other.status, 406);
    assert.equal(other.error?.code, "PGRST106");
    const dotted = await fetch(`${stack.url}/rest/v1/auth.users`, { headers: { apikey: stack.serviceRoleKey } });
    assert.equal(dotted.status, 404);
    const privateSchema = await fetch(`${stack.url}/rest/v1/rpc/private.caller_is_service`, { method: "POST", headers: { apikey: stack.serviceRoleKey } });
    assert.equal(privateSchema.status, 404);
  });

  test("unsupported features answer 400 naming the feature", async () => {
    const embed = await anon.from("subscription_plans").select("code, credit_products(code)");
    assert.equal(embed.status, 400);
    assert.match(embed.error?.message ?? "", /embedding/);
    const fts = await anon.from("credit_events").select("*").textSearch("name", "call");
    assert.equal(fts.status, 400);
    assert.match(fts.error?.message ?? "", /fts/);
    const contains = await anon.from("subscription_plans").select("*").contains("features", ["x"]);
    assert.equal(contains.status, 400);
    assert.match(contains.error?.message ?? "", /"cs"/);
  });

  test("a malformed filter is 400 PGRST100", async () => {
    const res = await fetch(`${stack.url}/rest/v1/credit_events?credit_cost=eqq.1`, { headers: { apikey: stack.anonKey } });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { code: string }).code, "PGRST100");
  });

  test("a value of the wrong type is 400 22P02", async () => {
    const { status, error } = await anon.from("credit_events").select("*").eq("credit_cost", "not-a-number");
    assert.equal(status, 400);
    assert.equal(error?.code, "22P02");
  });
});
