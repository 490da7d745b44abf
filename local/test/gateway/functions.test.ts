/**
 * /functions/v1: the shipped `health` function on the stack under test, and a gateway over
 * fixture functions (local/test/gateway/fixtures) for verify_jwt, raw bodies, environment,
 * CORS and start-up failures.
 */
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import { startGateway, type RunningGateway } from "../../gateway/gateway.ts";
import { apiKeys, type ApiKeys } from "../../gateway/keys.ts";
import { signToken, type StackUnderTest, stackUnderTest } from "./support.ts";

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures");

let stack: StackUnderTest;
let fixtureGateway: RunningGateway;
let keys: ApiKeys;

before(async () => {
  stack = await stackUnderTest();
  keys = await apiKeys(stack.jwtSecret);
  const databaseUrl = process.env.TEST_DATABASE_URL;
  assert.ok(databaseUrl, "TEST_DATABASE_URL is set");
  fixtureGateway = await startGateway({
    port: 0,
    databaseUrl,
    keys,
    functionsDir: path.join(fixtures, "functions"),
    configFile: path.join(fixtures, "config.toml"),
    secrets: { TEST_PROJECT_SECRET: "s3cret" },
  });
});
after(async () => {
  await fixtureGateway?.close();
  await stack.close();
});

interface Echo {
  method: string;
  path: string;
  search: string;
  headers: Record<string, string>;
  bodyBase64: string;
  env: Record<string, unknown>;
}

describe("Edge Functions", () => {
  test("health is reachable on the stack and answers {status: ok}", async () => {
    const res = await fetch(`${stack.url}/functions/v1/health`);
    assert.equal(res.status, 200);
    assert.deepEqual(await res.json(), { status: "ok" });
  });

  test("verify_jwt = true: no token or a bad token is 401; the anon key or a user token passes", async () => {
    const url = `${fixtureGateway.url}/functions/v1/echo`;
    assert.equal((await fetch(url)).status, 401);
    assert.equal((await fetch(url, { headers: { Authorization: "Bearer nope" } })).status, 401);
    const otherSecret = await signToken({ role: "authenticated" }, "another-secret-that-is-at-least-32-characters");
    assert.equal((await fetch(url, { headers: { Authorization: `Bearer ${otherSecret}` } })).status, 401);
    const expired = await signToken({ role: "authenticated" }, keys.jwtSecret, -10);
    assert.equal((await fetch(url, { headers: { Authorization: `Bearer ${expired}` } })).status, 401);
    assert.equal((await fetch(url, { headers: { Authorization: `Bearer ${keys.anonKey}` } })).status, 201);
    const user = await signToken({ role: "authenticated", sub: "00000000-0000-0000-0000-000000000001" }, keys.jwtSecret);
    assert.equal((await fetch(url, { headers: { Authorization: `Bearer ${user}` } })).status, 201);
  });

  test("verify_jwt = false: called without any token (as Stripe calls the webhook)", async () => {
    const res = await fetch(`${fixtureGateway.url}/functions/v1/open-echo`, { method: "POST", body: "x" });
    assert.equal(res.status, 201);
  });

  test("the body reaches the function byte for byte, with headers, method, path and query", async () => {
    const body = Buffer.concat([
      Buffer.from('{"id":"evt_1",  "data": {"a":1}}\r\n', "utf8"),
      Buffer.from([0x00, 0xff, 0xfe, 0x80, 0xc3, 0x28]),
      Buffer.from("  ünïcødé ✓\n", "utf8"),
    ]);
    const res = await fetch(`${fixtureGateway.url}/functions/v1/open-echo/sub/path?x=1&y=%20two`, {
      method: "POST",
      headers: { "Content-Type": "application/json", "Stripe-Signature": "t=1,v1=abc", "X-Custom": "kept" },
      body,
    });
    assert.equal(res.status, 201);
    assert.equal(res.headers.get("x-echo"), "yes");
    const echo = (await res.json()) as Echo;
    const received = Buffer.from(echo.bodyBase64, "base64");
    assert.equal(createHash("sha256").update(received).digest("hex"), createHash("sha256").update(body).digest("hex"));
    assert.equal(echo.method, "POST");
    assert.equal(echo.path, "/open-echo/sub/path");
    assert.equal(echo.search, "?x=1&y=%20two");
    assert.equal(echo.headers["stripe-signature"], "t=1,v1=abc");
    assert.equal(echo.headers["x-custom"], "kept");
    assert.equal(echo.headers["content-type"], "application/json");
  });

  test("functions get the platform environment and the project's secrets", async () => {
    const echo = (await (await fetch(`${fixtureGateway.url}/functions/v1/open-echo`)).json()) as Echo;
    assert.deepEqual(echo.env, {
      SUPABASE_URL: fixtureGateway.url,
      hasAnonKey: true,
      hasServiceRoleKey: true,
      hasDbUrl: true,
      TEST_PROJECT_SECRET: "s3cret",
    });
  });

  test("CORS preflight is answered without a JWT", async () => {
    const res = await fetch(`${fixtureGateway.url}/functions/v1/echo`, {
      method: "OPTIONS",
      headers: { Origin: "http://127.0.0.1:5173", "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "authorization, content-type" },
    });
    assert.ok(res.status < 300, `status ${res.status}`);
    assert.equal(res.headers.get("access-control-allow-origin"), "*");
    assert.match(res.headers.get("access-control-allow-headers") ?? "", /authorization/);
  });

  test("a function that fails to start is reported with its error", async () => {
    const broken = fixtureGateway.functions.find((f) => f.name === "broken");
    assert.ok(broken, "broken is listed");
    assert.equal(broken.verifyJwt, true, "verify_jwt defaults to true");
    assert.match(broken.error ?? "", /boom while loading/);
    const res = await fetch(`${fixtureGateway.url}/functions/v1/broken`, { headers: { Authorization: `Bearer ${keys.anonKey}` } });
    assert.equal(res.status, 503);
    assert.match(await res.text(), /boom while loading/);
  });

  test("an unknown function is 404", async () => {
    assert.equal((await fetch(`${fixtureGateway.url}/functions/v1/nope`)).status, 404);
  });
});
