/**
 * Two-phase consumption over HTTP (CONTRACT.md, "Reservations" and "HTTP additions"):
 * `POST /credits/reserve`, then `/credits/reservations/{id}/settle` or `/release`. Reserved
 * credits leave the spendable balance at once; a settlement spends what was used and frees
 * the rest; every refusal is a 4xx with the envelope and its own code (402, 403, 404
 * `reservation_not_found`, 409 `reservation_closed`, 410 `reservation_expired`, 429
 * `spend_limit_reached`) and writes nothing.
 */
import assert from "node:assert/strict";
import { api, ownerWithOrganization } from "./support.ts";
import { hugeBody, organizationWithCredits, rawPost, setSpendLimit, test, written } from "./credits-support.ts";

/** ai_inference costs 25 credits a unit in the seed's catalog. */
const AI = "ai_inference";

test("a reservation holds its credits until it is settled for what was used; the rest comes back", async () => {
  const { organizationId, owner, member } = await organizationWithCredits(1000);
  const reserved = await api(member, "POST", "/credits/reserve", {
    organization_id: organizationId,
    event_key: AI,
    quantity: 4,
    ttl_seconds: 600,
    metadata: { request: "r-1" },
  });
  assert.equal(reserved.status, 200, JSON.stringify(reserved.body));
  assert.equal(reserved.body.credits_reserved, 100);
  assert.equal(reserved.body.idempotent_replay, false);
  assert.ok(Date.parse(reserved.body.expires_at) > Date.now(), "expires in the future");
  assert.deepEqual(
    { total: reserved.body.balance.total, reserved: reserved.body.balance.reserved },
    { total: 900, reserved: 100 },
    "the reserved credits are no longer spendable",
  );
  const during = await api(owner, "GET", `/credits/${organizationId}`);
  assert.equal(during.body.balance.total, 900, "the balance route agrees");
  assert.equal(during.body.balance.reserved, 100);

  const settled = await api(member, "POST", `/credits/reservations/${reserved.body.reservation_id}/settle`, {
    quantity: 3,
    metadata: { tokens: 2900 },
  });
  assert.equal(settled.status, 200, JSON.stringify(settled.body));
  assert.equal(settled.body.reservation_id, reserved.body.reservation_id);
  assert.equal(settled.body.credits_consumed, 75, "3 of the 4 units were used");
  assert.equal(settled.body.credits_released, 25, "the fourth came back");
  assert.equal(settled.body.purchased_used, 75);
  assert.equal(typeof settled.body.transaction_id, "string");
  assert.deepEqual({ total: settled.body.balance.total, reserved: settled.body.balance.reserved }, { total: 925, reserved: 0 });
  const state = await written(organizationId);
  assert.equal(state.ledger_sum, 925, "the ledger sums to the balance");
  assert.equal(state.consumptions, 1, "the settlement is one consumption");
});

test("a settlement without a body spends the whole reservation; a release returns all of it", async () => {
  const { organizationId, owner } = await organizationWithCredits(500);
  const first = await api(owner, "POST", "/credits/reserve", { organization_id: organizationId, event_key: AI, quantity: 2 });
  const second = await api(owner, "POST", "/credits/reserve", { organization_id: organizationId, event_key: AI });
  assert.equal(first.status, 200, JSON.stringify(first.body));
  assert.equal(second.body.balance.total, 500 - 50 - 25);

  const settled = await rawPost(owner, `/credits/reservations/${first.body.reservation_id}/settle`, null, {});
  assert.equal(settled.status, 200, JSON.stringify(settled.body));
  assert.equal(settled.body.credits_consumed, 50, "no quantity: the reserved quantity");
  assert.equal(settled.body.credits_released, 0);

  const released = await rawPost(owner, `/credits/reservations/${second.body.reservation_id}/release`, null, {});
  assert.equal(released.status, 200, JSON.stringify(released.body));
  assert.deepEqual(
    { id: released.body.reservation_id, released: released.body.credits_released },
    { id: second.body.reservation_id, released: 25 },
  );
  assert.deepEqual(
    { total: (released.body.balance as { total: number }).total, reserved: (released.body.balance as { reserved: number }).reserved },
    { total: 450, reserved: 0 },
  );
  // An empty JSON object is as good as no body.
  const third = await api(owner, "POST", "/credits/reserve", { organization_id: organizationId, event_key: AI });
  const releasedWithObject = await api(owner, "POST", `/credits/reservations/${third.body.reservation_id}/release`, {});
  assert.equal(releasedWithObject.status, 200, JSON.stringify(releasedWithObject.body));
});

test("the same idempotency key returns the first reservation; with other parameters it is a 409 conflict", async () => {
  const { organizationId, member } = await organizationWithCredits(300);
  const body = { organization_id: organizationId, event_key: AI, quantity: 2, idempotency_key: "stream-42" };
  const first = await api(member, "POST", "/credits/reserve", body);
  const again = await api(member, "POST", "/credits/reserve", body);
  assert.equal(again.status, 200, JSON.stringify(again.body));
  assert.equal(again.body.reservation_id, first.body.reservation_id, "the same reservation");
  assert.equal(again.body.idempotent_replay, true);
  const before = await written(organizationId);
  assert.equal(before.reservations, 1, "one reservation for two calls");

  const other = await api(member, "POST", "/credits/reserve", { ...body, quantity: 3 });
  assert.equal(other.status, 409, JSON.stringify(other.body));
  assert.equal(other.body.error.code, "conflict");
  assert.deepEqual(await written(organizationId), before, "the conflicting call wrote nothing");
});

test("settling or releasing a closed reservation is 409 reservation_closed, an unknown one 404 reservation_not_found", async () => {
  const { organizationId, owner } = await organizationWithCredits(300);
  const reserved = await api(owner, "POST", "/credits/reserve", { organization_id: organizationId, event_key: AI });
  const id = reserved.body.reservation_id;
  assert.equal((await api(owner, "POST", `/credits/reservations/${id}/settle`, { quantity: 1 })).status, 200);
  const before = await written(organizationId);

  for (const action of ["settle", "release"]) {
    const closed = await api(owner, "POST", `/credits/reservations/${id}/${action}`, {});
    assert.equal(closed.status, 409, `${action} after settle: ${JSON.stringify(closed.body)}`);
    assert.equal(closed.body.error.code, "reservation_closed");
    const unknown = await api(owner, "POST", `/credits/reservations/${crypto.randomUUID()}/${action}`, {});
    assert.equal(unknown.status, 404, `${action} of an unknown id: ${JSON.stringify(unknown.body)}`);
    assert.equal(unknown.body.error.code, "reservation_not_found");
  }
  assert.deepEqual(await written(organizationId), before, "no refused call wrote anything");
});

test("another organization's reservation id is 404 reservation_not_found, and the reservation stays live", async () => {
  const victim = await organizationWithCredits(300);
  const reserved = await api(victim.owner, "POST", "/credits/reserve", { organization_id: victim.organizationId, event_key: AI });
  const id = reserved.body.reservation_id;
  const { owner: intruder } = await ownerWithOrganization("Intruder Inc");
  const before = await written(victim.organizationId);

  for (const who of [intruder, victim.stranger]) {
    for (const [action, body] of [["settle", { quantity: 0 }], ["settle", {}], ["release", {}]] as const) {
      const answer = await api(who, "POST", `/credits/reservations/${id}/${action}`, body);
      assert.equal(answer.status, 404, `${action} by an outsider: ${JSON.stringify(answer.body)}`);
      assert.equal(answer.body.error.code, "reservation_not_found", "indistinguishable from an id that never existed");
    }
  }
  assert.deepEqual(await written(victim.organizationId), before, "the outsiders changed nothing");
  const released = await api(victim.member, "POST", `/credits/reservations/${id}/release`, {});
  assert.equal(released.status, 200, "a member of the organization can still release it");
});

test("a reservation past its TTL is 410 reservation_expired and holds nothing, with no sweep run", async () => {
  const { organizationId, owner } = await organizationWithCredits(100);
  const reserved = await api(owner, "POST", "/credits/reserve", { organization_id: organizationId, event_key: AI, quantity: 4, ttl_seconds: 1 });
  assert.equal(reserved.status, 200, JSON.stringify(reserved.body));
  assert.equal(reserved.body.balance.total, 0, "all 100 credits are held");
  // Wait until the expiry has passed (plus a margin for clock granularity); no sweep runs in the test stack.
  const expiresAt = Date.parse(reserved.body.expires_at);
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiresAt - Date.now()) + 1_000));

  const balance = await api(owner, "GET", `/credits/${organizationId}`);
  assert.deepEqual({ total: balance.body.balance.total, reserved: balance.body.balance.reserved }, { total: 100, reserved: 0 });
  for (const action of ["settle", "release"]) {
    const answer = await api(owner, "POST", `/credits/reservations/${reserved.body.reservation_id}/${action}`, {});
    assert.equal(answer.status, 410, `${action}: ${JSON.stringify(answer.body)}`);
    assert.equal(answer.body.error.code, "reservation_expired");
  }
  const spent = await api(owner, "POST", "/credits/consume", { organization_id: organizationId, event_key: AI, quantity: 4 });
  assert.equal(spent.status, 200, "the credits it held are spendable again");
});

test("a reservation needs the credits (402) and fits the spend limit (429 spend_limit_reached), else writes nothing", async () => {
  const { organizationId, owner, admin } = await organizationWithCredits(200);
  const before = await written(organizationId);
  const tooMuch = await api(owner, "POST", "/credits/reserve", { organization_id: organizationId, event_key: AI, quantity: 9 });
  assert.equal(tooMuch.status, 402, JSON.stringify(tooMuch.body));
  assert.equal(tooMuch.body.error.code, "insufficient_credits");

  await setSpendLimit(owner, organizationId, 60);
  const held = await api(admin, "POST", "/credits/reserve", { organization_id: organizationId, event_key: AI, quantity: 2 });
  assert.equal(held.status, 200, "50 of the 60 allowed this month");
  const afterHold = await written(organizationId);
  const overLimit = await api(admin, "POST", "/credits/reserve", { organization_id: organizationId, event_key: AI });
  assert.equal(overLimit.status, 429, `a live reservation counts against the limit: ${JSON.stringify(overLimit.body)}`);
  assert.equal(overLimit.body.error.code, "spend_limit_reached");
  const consumeOver = await api(admin, "POST", "/credits/consume", { organization_id: organizationId, event_key: AI });
  assert.equal(consumeOver.status, 429, "consume answers the same code");
  assert.equal(consumeOver.body.error.code, "spend_limit_reached");
  assert.deepEqual(await written(organizationId), afterHold, "the refused calls wrote nothing");
  assert.equal(afterHold.ledger_rows > before.ledger_rows, true);
});

test("who may reserve: members of the organization (as for consume); a stranger gets 403 and an unknown event 404", async () => {
  const { organizationId, owner, admin, member, stranger } = await organizationWithCredits(500);
  for (const who of [owner, admin, member]) {
    const answer = await api(who, "POST", "/credits/reserve", { organization_id: organizationId, event_key: "api_call_basic" });
    assert.equal(answer.status, 200, JSON.stringify(answer.body));
  }
  const before = await written(organizationId);
  const outsider = await api(stranger, "POST", "/credits/reserve", { organization_id: organizationId, event_key: "api_call_basic" });
  assert.equal(outsider.status, 403, JSON.stringify(outsider.body));
  assert.equal(outsider.body.error.code, "forbidden");
  const unknown = await api(owner, "POST", "/credits/reserve", { organization_id: organizationId, event_key: "no_such_event" });
  assert.equal(unknown.status, 404, JSON.stringify(unknown.body));
  assert.equal(unknown.body.error.code, "not_found", "as consume answers an unknown event");
  assert.deepEqual(await written(organizationId), before);
});

test("hostile input to the reservation routes is a 4xx with the envelope and writes nothing", async () => {
  const { organizationId, owner } = await organizationWithCredits(500);
  const reserved = await api(owner, "POST", "/credits/reserve", { organization_id: organizationId, event_key: AI, quantity: 2 });
  const id = reserved.body.reservation_id as string;
  const before = await written(organizationId);
  const reserve = (extra: Record<string, unknown>) => ({ organization_id: organizationId, event_key: AI, ...extra });
  const settle = `/credits/reservations/${id}/settle`;
  const release = `/credits/reservations/${id}/release`;

  const cases: Array<[string, string, unknown, number]> = [
    ["/credits/reserve", "ttl 0", reserve({ ttl_seconds: 0 }), 400],
    ["/credits/reserve", "ttl over a day", reserve({ ttl_seconds: 86_401 }), 400],
    ["/credits/reserve", "fractional ttl", reserve({ ttl_seconds: 1.5 }), 400],
    ["/credits/reserve", "ttl as text", reserve({ ttl_seconds: "600" }), 400],
    ["/credits/reserve", "quantity 0", reserve({ quantity: 0 }), 400],
    ["/credits/reserve", "negative quantity", reserve({ quantity: -1 }), 400],
    ["/credits/reserve", "huge quantity", reserve({ quantity: 1e12 }), 400],
    ["/credits/reserve", "quantity as an array", reserve({ quantity: [1, 2, 3] }), 400],
    ["/credits/reserve", "a huge array for a field", reserve({ event_key: new Array(1_000).fill("a") }), 400],
    ["/credits/reserve", "metadata as an array", reserve({ metadata: [1] }), 400],
    ["/credits/reserve", "NUL in the key", reserve({ idempotency_key: "a\u0000b" }), 400],
    ["/credits/reserve", "NUL in metadata", reserve({ metadata: { note: "a\u0000b" } }), 400],
    ["/credits/reserve", "an unknown field", reserve({ price: 0 }), 400],
    ["/credits/reserve", "SQL in the event key", reserve({ event_key: "'; drop table credit_lots; --" }), 400],
    ["/credits/reserve", "not an object", [reserve({})], 400],
    ["/credits/reserve", "a non-UUID organization", reserve({ organization_id: "org-1" }), 400],
    [settle, "more than was reserved", { quantity: 3 }, 400],
    [settle, "negative quantity", { quantity: -1 }, 400],
    [settle, "fractional quantity", { quantity: 0.5 }, 400],
    [settle, "quantity as text", { quantity: "1" }, 400],
    [settle, "an unknown field", { quantity: 1, organization_id: organizationId }, 400],
    [settle, "NUL in metadata", { metadata: { "k\u0000": 1 } }, 400],
    [settle, "not an object", "settle", 400],
    [release, "any field", { quantity: 1 }, 400],
    [release, "null", null, 400],
    ["/credits/reservations/not-a-uuid/settle", "a non-UUID id", {}, 400],
    ["/credits/reservations/not-a-uuid/release", "a non-UUID id", {}, 400],
  ];
  for (const [path, what, body, status] of cases) {
    const answer = await api(owner, "POST", path, body);
    assert.equal(answer.status, status, `${path} ${what}: ${JSON.stringify(answer.body).slice(0, 300)}`);
    assert.equal(typeof answer.body.error?.code, "string", `${what}: the envelope has a code`);
    assert.equal(typeof answer.body.error?.message, "string", `${what}: and a message`);
  }

  const json = { "Content-Type": "application/json" };
  const rawCases: Array<[string, string, string | Uint8Array<ArrayBuffer>, Record<string, string>, number, string]> = [
    ["/credits/reserve", "a 3 MB body", hugeBody(reserve({}), 3 * 1024 * 1024), json, 413, "payload_too_large"],
    [settle, "a 3 MB body", hugeBody({}, 3 * 1024 * 1024), json, 413, "payload_too_large"],
    ["/credits/reserve", "malformed JSON", "{\"organization_id\":", json, 400, "invalid_json"],
    [settle, "malformed JSON", "{", json, 400, "invalid_json"],
    ["/credits/reserve", "bytes that are not UTF-8", new Uint8Array([0x7b, 0xff, 0x7d]), json, 400, "invalid_request"],
    ["/credits/reserve", "an escaped NUL", `{"organization_id":"${organizationId}","event_key":"${AI}","idempotency_key":"\\u0000"}`, json, 400, "invalid_request"],
    ["/credits/reserve", "a form body", "organization_id=x", { "Content-Type": "application/x-www-form-urlencoded" }, 415, "unsupported_media_type"],
    [settle, "a body that is not JSON", "quantity=1", { "Content-Type": "text/plain" }, 415, "unsupported_media_type"],
  ];
  for (const [path, what, body, headers, status, code] of rawCases) {
    const answer = await rawPost(owner, path, body, headers);
    assert.equal(answer.status, status, `${path} ${what}: ${JSON.stringify(answer.body).slice(0, 300)}`);
    assert.equal(answer.body.error?.code, code, `${path} ${what}`);
  }
  for (const method of ["GET", "PUT", "DELETE"]) {
    const answer = await api(owner, method, settle);
    assert.equal(answer.status, 404, `${method} on settle`);
    assert.equal(answer.body.error.code, "not_found");
  }

  assert.deepEqual(await written(organizationId), before, "nothing hostile wrote anything");
  const still = await api(owner, "POST", settle, { quantity: 2 });
  assert.equal(still.status, 200, "and the reservation is still live and whole");
  assert.equal(still.body.credits_consumed, 50);
});
