/**
 * POST/GET /rest/v1/rpc/<fn> through supabase-js: results shaped as PostgREST shapes them,
 * and the contract's SQLSTATEs mapped to PostgREST's HTTP statuses.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import type { SupabaseClient } from "@supabase/supabase-js";
import { client, type Persona, signUp, type StackUnderTest, stackUnderTest } from "./support.ts";

let stack: StackUnderTest;
let owner: Persona;
let stranger: Persona;
let service: SupabaseClient;
let org: string;

before(async () => {
  stack = await stackUnderTest();
  service = client(stack, stack.serviceRoleKey);
  [owner, stranger] = await Promise.all([signUp(stack, "rpc-owner"), signUp(stack, "rpc-stranger")]);
  org = (await owner.db.rpc("create_organization", { p_name: "RPC org" })).data as string;
  const grant = await service.rpc("grant_credits", { p_organization_id: org, p_amount: 30, p_source: "purchased", p_reference: `rpc-${org}` });
  assert.equal(grant.error, null);
});
after(async () => {
  await stack.close();
});

describe("RPC results", () => {
  test("a uuid-returning function gives the scalar; a jsonb one the object", async () => {
    const created = await owner.db.rpc("create_organization", { p_name: "Another" });
    assert.equal(created.status, 200);
    assert.match(created.data as string, /^[0-9a-f-]{36}$/);
    const consumed = await owner.db.rpc("consume_credits", { p_organization_id: org, p_event_key: "api_call_premium", p_quantity: 2, p_idempotency_key: "rpc-test-1" });
    assert.equal(consumed.error, null);
    const result = consumed.data as { credits_consumed: number; balance: { total: number }; idempotent_replay: boolean };
    assert.equal(result.credits_consumed, 10);
    assert.equal(result.balance.total, 20);
    assert.equal(result.idempotent_replay, false);
    const replay = await owner.db.rpc("consume_credits", { p_organization_id: org, p_event_key: "api_call_premium", p_quantity: 2, p_idempotency_key: "rpc-test-1" });
    assert.equal((replay.data as { idempotent_replay: boolean }).idempotent_replay, true);
  });

  test("a stable function is callable with GET (arguments in the query string)", async () => {
    const { data, error } = await owner.db.rpc("get_credit_balance", { p_organization_id: org }, { get: true });
    assert.equal(error, null);
    assert.equal((data as { total: number }).total, 20);
  });

  test("a volatile function is refused on GET with 405", async () => {
    const { status } = await owner.db.rpc("consume_credits", { p_organization_id: org, p_event_key: "api_call_basic" }, { get: true });
    assert.equal(status, 405);
  });

  test("a void function answers 204 with no body, as PostgREST does", async () => {
    const { status, data, error } = await owner.db.rpc("add_organization_member", { p_organization_id: org, p_user_id: stranger.userId, p_role: "member" });
    assert.equal(error, null);
    assert.equal(status, 204);
    assert.equal(data, null);
    assert.equal((await owner.db.rpc("remove_organization_member", { p_organization_id: org, p_user_id: stranger.userId })).status, 204);
  });

  test("an integer-returning service function gives the number", async () => {
    const { data, error } = await service.rpc("expire_credits");
    assert.equal(error, null);
    assert.equal(typeof data, "number");
  });
});

describe("RPC errors map to PostgREST statuses", () => {
  test("not enough credits: PT402 -> 402, nothing consumed", async () => {
    const { status, error } = await owner.db.rpc("consume_credits", { p_organization_id: org, p_event_key: "ai_inference", p_quantity: 10 });
    assert.equal(status, 402);
    assert.equal(error?.code, "PT402");
    const balance = await owner.db.rpc("get_credit_balance", { p_organization_id: org });
    assert.equal((balance.data as { total: number }).total, 20);
  });

  test("unknown event: PT404 -> 404; bad quantity: 22023 -> 400; reused key: PT409 -> 409", async () => {
    const unknown = await owner.db.rpc("consume_credits", { p_organization_id: org, p_event_key: "nope" });
    assert.equal(unknown.status, 404);
    assert.equal(unknown.error?.code, "PT404");
    const quantity = await owner.db.rpc("consume_credits", { p_organization_id: org, p_event_key: "api_call_basic", p_quantity: 0 });
    assert.equal(quantity.status, 400);
    assert.equal(quantity.error?.code, "22023");
    const reused = await owner.db.rpc("consume_credits", { p_organization_id: org, p_event_key: "api_call_basic", p_idempotency_key: "rpc-test-1" });
    assert.equal(reused.status, 409);
    assert.equal(reused.error?.code, "PT409");
  });

  test("a stranger gets 42501 -> 403; anon gets 401", async () => {
    const foreign = await stranger.db.rpc("consume_credits", { p_organization_id: org, p_event_key: "api_call_basic" });
    assert.equal(foreign.status, 403);
    assert.equal(foreign.error?.code, "42501");
    const anonymous = await client(stack).rpc("get_credit_balance", { p_organization_id: org });
    assert.equal(anonymous.status, 401);
    assert.equal(anonymous.error?.code, "42501");
    const serviceOnly = await owner.db.rpc("grant_credits", { p_organization_id: org, p_amount: 5, p_source: "purchased" });
    assert.equal(serviceOnly.status, 403);
  });

  test("an unknown function or unknown argument is 404 PGRST202", async () => {
    const fn = await owner.db.rpc("no_such_function", {});
    assert.equal(fn.status, 404);
    assert.equal(fn.error?.code, "PGRST202");
    const arg = await owner.db.rpc("get_credit_balance", { p_organization_id: org, p_extra: 1 });
    assert.equal(arg.status, 404);
    assert.equal(arg.error?.code, "PGRST202");
  });

  test("a malformed uuid argument is 400 22P02; invalid JSON is 400 PGRST102", async () => {
    const bad = await owner.db.rpc("get_credit_balance", { p_organization_id: "not-a-uuid" });
    assert.equal(bad.status, 400);
    assert.equal(bad.error?.code, "22P02");
    const res = await fetch(`${stack.url}/rest/v1/rpc/get_credit_balance`, {
      method: "POST",
      headers: { apikey: stack.anonKey, Authorization: `Bearer ${owner.accessToken}`, "Content-Type": "application/json" },
      body: "{not json",
    });
    assert.equal(res.status, 400);
    assert.equal(((await res.json()) as { code: string }).code, "PGRST102");
  });
});
