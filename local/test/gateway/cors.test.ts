/**
 * The dashboard calls `/rest/v1` and `/auth/v1` from another origin (port 5173), so every
 * answer from those services, errors and a refused body included, must carry the CORS headers
 * a browser needs to hand it to the page, and a preflight must be answered.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { API_BODY_LIMIT } from "../../gateway/request-body.ts";
import { type StackUnderTest, stackUnderTest } from "./support.ts";

let stack: StackUnderTest;
before(async () => {
  stack = await stackUnderTest();
});
after(async () => {
  await stack.close();
});

const ORIGIN = "http://127.0.0.1:5173";

async function answer(path: string, init: RequestInit): Promise<{ status: number; headers: Headers; body: string }> {
  const response = await fetch(`${stack.url}${path}`, init);
  return { status: response.status, headers: response.headers, body: await response.text() };
}

function assertReadableByBrowser(result: { status: number; headers: Headers }, what: string): void {
  assert.equal(result.headers.get("access-control-allow-origin"), "*", `${what} (${result.status}): Access-Control-Allow-Origin`);
  assert.match(result.headers.get("access-control-expose-headers") ?? "", /Content-Range/, `${what} (${result.status}): Content-Range exposed`);
}

describe("CORS on /rest/v1 and /auth/v1", () => {
  test("successes, errors and a 413 all carry the CORS headers, with the service's own headers intact", async () => {
    const service = { apikey: stack.serviceRoleKey, authorization: `Bearer ${stack.serviceRoleKey}`, origin: ORIGIN };
    const read = await answer("/rest/v1/subscription_plans?select=code", { headers: service });
    assert.equal(read.status, 200);
    assertReadableByBrowser(read, "a table read");
    assert.match(read.headers.get("content-range") ?? "", /^0-\d+\/\*$/);
    assert.match(read.headers.get("content-type") ?? "", /^application\/json/);

    const rpc = await answer("/rest/v1/rpc/get_credit_balance", {
      method: "POST",
      headers: { ...service, "content-type": "application/json" },
      body: JSON.stringify({ p_organization_id: "00000000-0000-0000-0000-000000000000" }),
    });
    assert.equal(rpc.status, 200);
    assertReadableByBrowser(rpc, "an RPC call");

    const noKey = await answer("/rest/v1/rpc/get_credit_balance", { method: "POST", headers: { origin: ORIGIN }, body: "{}" });
    assert.equal(noKey.status, 401);
    assertReadableByBrowser(noKey, "a call without a key");
    assert.equal((JSON.parse(noKey.body) as { code: string }).code, "PGRST302");

    const tooLarge = await answer("/rest/v1/rpc/get_credit_balance", {
      method: "POST",
      headers: { ...service, "content-type": "application/json" },
      body: "x".repeat(API_BODY_LIMIT + 1),
    });
    assert.equal(tooLarge.status, 413);
    assertReadableByBrowser(tooLarge, "an oversized body");

    const settings = await answer("/auth/v1/settings", { headers: { apikey: stack.anonKey, origin: ORIGIN } });
    assert.equal(settings.status, 200);
    assertReadableByBrowser(settings, "auth settings");

    const badJson = await answer("/auth/v1/token?grant_type=password", {
      method: "POST",
      headers: { apikey: stack.anonKey, origin: ORIGIN, "content-type": "application/json" },
      body: "{not json",
    });
    assert.equal(badJson.status, 400);
    assertReadableByBrowser(badJson, "an unparseable auth body");
  });

  test("a preflight is answered 204 with the methods and headers supabase-js sends", async () => {
    for (const path of ["/rest/v1/rpc/consume_credits", "/auth/v1/token?grant_type=password"]) {
      const preflight = await answer(path, {
        method: "OPTIONS",
        headers: { origin: ORIGIN, "access-control-request-method": "POST", "access-control-request-headers": "apikey,authorization,content-type,x-client-info" },
      });
      assert.equal(preflight.status, 204, path);
      assert.equal(preflight.headers.get("access-control-allow-origin"), "*", path);
      assert.match(preflight.headers.get("access-control-allow-methods") ?? "", /POST/, path);
      const allowed = (preflight.headers.get("access-control-allow-headers") ?? "").split(",");
      for (const header of ["apikey", "authorization", "content-type", "x-client-info"]) assert.ok(allowed.includes(header), `${path}: ${header}`);
    }
  });
});
