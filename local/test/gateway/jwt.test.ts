/**
 * Tokens the gateway must refuse with 401 on REST (and on functions with verify_jwt):
 * forged, expired, `alg: none`, signed with another secret, or missing.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { signToken, type StackUnderTest, stackUnderTest } from "./support.ts";

let stack: StackUnderTest;
before(async () => {
  stack = await stackUnderTest();
});
after(async () => {
  await stack.close();
});

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url");

async function badTokens(): Promise<Record<string, string>> {
  const [header, , signature] = stack.serviceRoleKey.split(".");
  const now = Math.floor(Date.now() / 1000);
  return {
    "a forged payload (anon key's signature on a service_role payload)": `${stack.anonKey.split(".")[0]}.${b64({ role: "service_role", iss: "supabase-demo" })}.${stack.anonKey.split(".")[2]}`,
    "a tampered signature": `${header}.${stack.serviceRoleKey.split(".")[1]}.${signature!.slice(0, -3)}abc`,
    "an expired token": await signToken({ role: "authenticated", sub: "00000000-0000-0000-0000-000000000001" }, stack.jwtSecret, -60),
    "alg: none": `${b64({ alg: "none", typ: "JWT" })}.${b64({ role: "service_role", exp: now + 3600 })}.`,
    "a token signed with another secret": await signToken({ role: "service_role" }, "another-secret-that-is-at-least-32-characters"),
    "garbage": "not-a-jwt",
  };
}

describe("JWT verification", () => {
  test("REST answers 401 with PostgREST's JWT error codes", async () => {
    for (const [label, token] of Object.entries(await badTokens())) {
      const res = await fetch(`${stack.url}/rest/v1/credit_events?select=event_key`, {
        headers: { apikey: stack.anonKey, Authorization: `Bearer ${token}` },
      });
      assert.equal(res.status, 401, label);
      const body = (await res.json()) as { code: string };
      assert.match(body.code, /^PGRST30[13]$/, label);
    }
  });

  test("an expired token is reported as expired", async () => {
    const expired = await signToken({ role: "authenticated" }, stack.jwtSecret, -60);
    const res = await fetch(`${stack.url}/rest/v1/credit_events`, { headers: { apikey: stack.anonKey, Authorization: `Bearer ${expired}` } });
    assert.deepEqual(await res.json(), { code: "PGRST303", message: "JWT expired", details: null, hint: null });
  });

  test("a request with no key at all is 401", async () => {
    const res = await fetch(`${stack.url}/rest/v1/credit_events`);
    assert.equal(res.status, 401);
  });

  test("a valid token naming a role the gateway may not become is refused", async () => {
    const token = await signToken({ role: "postgres" }, stack.jwtSecret);
    const res = await fetch(`${stack.url}/rest/v1/credit_events`, { headers: { apikey: stack.anonKey, Authorization: `Bearer ${token}` } });
    assert.ok(res.status >= 400 && res.status < 500, `status ${res.status}`);
  });
});
