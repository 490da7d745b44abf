/**
 * Batch consumption over HTTP (CONTRACT.md, "Batch consumption" and "HTTP additions"):
 * `POST /credits/consume-batch {organization_id, events}`. Up to 1,000 events in one call,
 * each consumed or refused on its own with a result in array order (200), sharing the
 * idempotency keys of `/credits/consume`. A malformed batch (or any malformed event in it) is
 * a 4xx with the envelope and consumes nothing.
 */
import assert from "node:assert/strict";
import { api } from "./support.ts";
import { grantPurchased, hugeBody, organizationWithCredits, rawPost, setSpendLimit, test, written } from "./credits-support.ts";

interface BatchResult {
  status: string;
  transaction_id?: string;
  credits_consumed?: number;
  error?: string;
}

test("each event of a batch gets its own result, in order; keys replay across consume and batch", async () => {
  const { organizationId, owner, member } = await organizationWithCredits(60);
  const single = await api(member, "POST", "/credits/consume", {
    organization_id: organizationId,
    event_key: "api_call_premium",
    idempotency_key: "evt-1",
  });
  assert.equal(single.status, 200, JSON.stringify(single.body));

  const answer = await api(member, "POST", "/credits/consume-batch", {
    organization_id: organizationId,
    events: [
      { event_key: "api_call_premium", idempotency_key: "evt-1" }, // replays the consume above
      { event_key: "ai_inference", quantity: 2, idempotency_key: "evt-2", metadata: { model: "m" } }, // 50 of the 55 left
      { event_key: "no_such_event" },
      { event_key: "api_call_premium", quantity: 2, idempotency_key: "evt-1" }, // the key with other parameters
      { event_key: "ai_inference" }, // 25 more than the 5 left
      { event_key: "api_call_premium" }, // exactly the last 5
    ],
  });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  const results = answer.body.results as BatchResult[];
  assert.deepEqual(results.map((r) => r.status), ["replayed", "consumed", "unknown_event", "conflict", "insufficient_credits", "consumed"]);
  assert.equal(results[0]!.transaction_id, single.body.transaction_id, "the replay names the first consumption");
  assert.equal(results[1]!.credits_consumed, 50);
  for (const failed of [results[2]!, results[3]!, results[4]!]) assert.equal(typeof failed.error, "string", "a refused event says why");
  assert.equal(answer.body.credits_consumed, 55, "what this call consumed (not the replay)");
  assert.equal(answer.body.balance.total, 0);

  const again = await api(owner, "POST", "/credits/consume", {
    organization_id: organizationId,
    event_key: "ai_inference",
    quantity: 2,
    idempotency_key: "evt-2",
    metadata: { model: "m" },
  });
  assert.equal(again.status, 200, "a key first used in a batch replays on consume");
  assert.equal(again.body.idempotent_replay, true);
  assert.equal(again.body.transaction_id, results[1]!.transaction_id);
  const state = await written(organizationId);
  assert.equal(state.ledger_sum, 0, "the ledger sums to the balance");
  assert.equal(state.consumptions, 3, "one consume and two batch events were consumed");
});

test("a full batch of 1,000 events is one call", async () => {
  const { organizationId, owner } = await organizationWithCredits(1_000);
  const events = Array.from({ length: 1_000 }, (_, i) => ({ event_key: "api_call_basic", idempotency_key: `bulk-${i}`, metadata: { i } }));
  const answer = await api(owner, "POST", "/credits/consume-batch", { organization_id: organizationId, events });
  assert.equal(answer.status, 200, JSON.stringify(answer.body).slice(0, 300));
  assert.equal((answer.body.results as BatchResult[]).filter((r) => r.status === "consumed").length, 1_000);
  assert.equal(answer.body.credits_consumed, 1_000);
  assert.equal(answer.body.balance.total, 0);
  const replay = await api(owner, "POST", "/credits/consume-batch", { organization_id: organizationId, events });
  assert.ok((replay.body.results as BatchResult[]).every((r) => r.status === "replayed"), "sent again, every event replays");
  assert.equal(replay.body.credits_consumed, 0);
});

test("events past the monthly spend limit are spend_limit_reached; the others are consumed", async () => {
  const { organizationId, owner, admin } = await organizationWithCredits(1_000);
  await setSpendLimit(owner, organizationId, 30);
  const answer = await api(admin, "POST", "/credits/consume-batch", {
    organization_id: organizationId,
    events: [{ event_key: "ai_inference" }, { event_key: "api_call_premium" }, { event_key: "api_call_premium", quantity: 1 }],
  });
  assert.equal(answer.status, 200, JSON.stringify(answer.body));
  assert.deepEqual((answer.body.results as BatchResult[]).map((r) => r.status), ["consumed", "consumed", "spend_limit_reached"]);
  assert.equal(answer.body.credits_consumed, 30, "exactly up to the limit, never past it");
  const single = await api(admin, "POST", "/credits/consume", { organization_id: organizationId, event_key: "api_call_basic" });
  assert.equal(single.status, 429, "the limit holds for the single route too");
  assert.equal(single.body.error.code, "spend_limit_reached");
});

test("who may send a batch: members of the organization; a stranger gets 403 and nothing is consumed", async () => {
  const { organizationId, member, stranger } = await organizationWithCredits(10);
  const batch = { organization_id: organizationId, events: [{ event_key: "api_call_basic" }] };
  assert.equal((await api(member, "POST", "/credits/consume-batch", batch)).status, 200);
  const before = await written(organizationId);
  const outsider = await api(stranger, "POST", "/credits/consume-batch", batch);
  assert.equal(outsider.status, 403, JSON.stringify(outsider.body));
  assert.equal(outsider.body.error.code, "forbidden");
  assert.deepEqual(await written(organizationId), before);
});

test("a malformed batch, or one malformed event in it, is a 4xx naming it and consumes nothing", async () => {
  const { organizationId, owner } = await organizationWithCredits(500);
  await grantPurchased(organizationId, 500);
  const before = await written(organizationId);
  const ok = { event_key: "api_call_basic" };
  const batch = (events: unknown, extra: Record<string, unknown> = {}) => ({ organization_id: organizationId, events, ...extra });

  const cases: Array<[string, unknown, RegExp]> = [
    ["no events", batch([]), /at least one/],
    ["1,001 events", batch(new Array(1_001).fill(ok)), /at most 1000/],
    ["events not an array", batch({ 0: ok }), /events/],
    ["events as text", batch(JSON.stringify([ok])), /events/],
    ["events missing", { organization_id: organizationId }, /events/],
    ["an element that is not an object", batch([ok, "api_call_basic"]), /events\.1/],
    ["an element that is null", batch([ok, null]), /events\.1/],
    ["an element that is an array", batch([ok, [ok]]), /events\.1/],
    ["quantity 0 in the third event", batch([ok, ok, { ...ok, quantity: 0 }]), /events\.2\.quantity/],
    ["a fractional quantity", batch([{ ...ok, quantity: 1.5 }]), /events\.0\.quantity/],
    ["a quantity as text", batch([{ ...ok, quantity: "2" }]), /events\.0\.quantity/],
    ["a huge quantity", batch([{ ...ok, quantity: 2 ** 53 }]), /events\.0\.quantity/],
    ["an unknown field in an event", batch([{ ...ok, organization_id: organizationId }]), /events\.0/],
    ["an event key with SQL", batch([{ event_key: "x'; delete from credit_lots; --" }]), /events\.0\.event_key/],
    ["an event key as a number", batch([{ event_key: 1 }]), /events\.0\.event_key/],
    ["an empty idempotency key", batch([{ ...ok, idempotency_key: "" }]), /events\.0\.idempotency_key/],
    ["NUL in an idempotency key", batch([{ ...ok, idempotency_key: "a\u0000b" }]), /NUL/],
    ["a lone surrogate in metadata", batch([{ ...ok, metadata: { note: "\ud800" } }]), /Unicode/],
    ["metadata as an array", batch([{ ...ok, metadata: [1, 2] }]), /events\.0\.metadata/],
    ["a huge array in metadata", batch([{ ...ok, metadata: { list: new Array(10_000).fill(1) } }]), /16 KB/],
    ["an unknown top-level field", batch([ok], { dry_run: true }), /dry_run/],
    ["a non-UUID organization", { organization_id: "acme", events: [ok] }, /organization_id/],
    ["the batch as a bare array", [ok], /object/],
  ];
  for (const [what, body, message] of cases) {
    const answer = await api(owner, "POST", "/credits/consume-batch", body);
    assert.equal(answer.status, 400, `${what}: ${JSON.stringify(answer.body).slice(0, 300)}`);
    assert.equal(answer.body.error?.code, "invalid_request", what);
    assert.match(answer.body.error.message, message, what);
  }

  const json = { "Content-Type": "application/json" };
  const threeMb = hugeBody({ organization_id: organizationId, events: [ok] }, 3 * 1024 * 1024);
  const manyEvents = JSON.stringify(batch(Array.from({ length: 200_000 }, () => ok)));
  const rawCases: Array<[string, string | Uint8Array<ArrayBuffer>, Record<string, string>, number, string]> = [
    ["a 3 MB body", threeMb, json, 413, "payload_too_large"],
    ["200,000 events (over a megabyte)", manyEvents, json, 413, "payload_too_large"],
    ["malformed JSON", `{"organization_id":"${organizationId}","events":[`, json, 400, "invalid_json"],
    ["bytes that are not UTF-8", new Uint8Array([0x7b, 0x22, 0xc0, 0x80, 0x22, 0x7d]), json, 400, "invalid_request"],
    ["nesting deeper than any body needs", `{"organization_id":"${organizationId}","events":${"[".repeat(5_000)}${"]".repeat(5_000)}}`, json, 400, "invalid_request"],
    ["no content type", JSON.stringify(batch([ok])), {}, 415, "unsupported_media_type"],
    ["no body", "", json, 400, "invalid_json"],
  ];
  for (const [what, body, headers, status, code] of rawCases) {
    const answer = await rawPost(owner, "/credits/consume-batch", body, headers);
    assert.equal(answer.status, status, `${what}: ${JSON.stringify(answer.body).slice(0, 300)}`);
    assert.equal(answer.body.error?.code, code, what);
  }
  assert.deepEqual(await written(organizationId), before, "no malformed batch consumed anything");
});
