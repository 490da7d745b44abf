/**
 * /auth/v1 holds GoTrue's rules where the product relies on them: one rule for email case on
 * sign-up and sign-in, bcrypt cost 10, passwords over 72 bytes refused rather than cut, bounded
 * user metadata, and input Postgres cannot store refused with a 4xx in GoTrue's shape.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { createUser } from "../../gateway/gotrue.ts";
import { client, type StackUnderTest, stackUnderTest } from "./support.ts";

let stack: StackUnderTest;
let db: pg.Pool;
before(async () => {
  stack = await stackUnderTest();
  assert.ok(process.env.TEST_DATABASE_URL, "TEST_DATABASE_URL is set");
  db = new pg.Pool({ connectionString: process.env.TEST_DATABASE_URL, max: 2 });
});
after(async () => {
  await db?.end();
  await stack.close();
});

const password = "correct horse battery";
const tag = () => randomUUID().slice(0, 8);

/** A raw request to /auth/v1 with a JSON text body, as supabase-js sends it. */
async function auth(path: string, body: string, init: { method?: string; token?: string } = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${stack.url}/auth/v1${path}`, {
    method: init.method ?? "POST",
    headers: {
      apikey: stack.anonKey,
      "Content-Type": "application/json",
      "X-Supabase-Api-Version": "2024-01-01",
      ...(init.token ? { Authorization: `Bearer ${init.token}` } : {}),
    },
    body,
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function userCount(): Promise<number> {
  const { rows } = await db.query<{ n: number }>("select count(*)::int as n from auth.users");
  return rows[0]!.n;
}

describe("auth: GoTrue's rules", () => {
  test("email case is one rule on sign-up and sign-in: any capitalisation, Unicode included, finds the same user", async () => {
    const ascii = `Mixed-${tag()}@Example.TEST`;
    const { data, error } = await client(stack).auth.signUp({ email: ascii, password });
    assert.equal(error, null);
    assert.equal(data.user?.email, ascii.toLowerCase(), "stored lower-cased, as GoTrue stores it");
    for (const spelling of [ascii.toLowerCase(), ascii.toUpperCase()]) {
      assert.equal((await client(stack).auth.signInWithPassword({ email: spelling, password })).error, null, spelling);
    }

    // GoTrue's sign-up refuses a non-ASCII address; one made by an admin tool signs in by the same rule.
    const id = tag();
    const unicode = `ÉVE-${id}@EXAMPLE.TEST`;
    const refused = await auth("/signup", JSON.stringify({ email: unicode, password }));
    assert.equal(refused.status, 400);
    assert.equal(refused.body.code, "validation_failed");
    const created = await db.connect().then(async (c) => {
      try {
        return await createUser(c, unicode, password);
      } finally {
        c.release();
      }
    });
    assert.equal(created.email, `éve-${id}@example.test`);
    for (const spelling of [unicode, `éve-${id}@example.test`, `Éve-${id}@Example.Test`]) {
      const signIn = await client(stack).auth.signInWithPassword({ email: spelling, password });
      assert.equal(signIn.error, null, spelling);
      assert.equal(signIn.data.user?.id, created.id);
    }
    const duplicate = await auth("/signup", JSON.stringify({ email: `eve-${id}@EXAMPLE.test`, password }));
    assert.equal(duplicate.status, 200, "a different address (e without accent) is a different user");
  });

  test("passwords are bcrypt hashes of cost 10, as GoTrue makes them", async () => {
    const { data } = await client(stack).auth.signUp({ email: `cost-${tag()}@example.test`, password });
    const { rows } = await db.query<{ hash: string }>("select encrypted_password as hash from auth.users where id = $1", [data.user!.id]);
    assert.match(rows[0]!.hash, /^\$2[aby]\$10\$/);
  });

  test("a password over 72 bytes (UTF-8) is refused at sign-up, never cut; at sign-in it matches nothing", async () => {
    const before = await userCount();
    const long = "é".repeat(37); // 37 characters, 74 bytes
    const refused = await auth("/signup", JSON.stringify({ email: `long-${tag()}@example.test`, password: long }));
    assert.equal(refused.status, 400);
    assert.equal(refused.body.code, "validation_failed");
    assert.match(String(refused.body.message), /72/);
    assert.equal(await userCount(), before, "nothing written");

    const exact = "é".repeat(36); // 72 bytes: accepted
    const email = `exact-${tag()}@example.test`;
    assert.equal((await client(stack).auth.signUp({ email, password: exact })).error, null);
    const longer = await client(stack).auth.signInWithPassword({ email, password: `${exact}x` });
    assert.equal(longer.error?.code, "invalid_credentials", "bcrypt would read only the first 72 bytes; the longer password is refused");
    assert.equal((await client(stack).auth.signInWithPassword({ email, password: exact })).error, null);
  });

  test("user metadata is bounded on sign-up and PUT /user; PUT /user merges keys and null removes one", async () => {
    const before = await userCount();
    const big = { notes: "x".repeat(17 * 1024) };
    const refused = await auth("/signup", JSON.stringify({ email: `big-${tag()}@example.test`, password, data: big }));
    assert.equal(refused.status, 400);
    assert.equal(refused.body.code, "validation_failed");
    assert.equal(await userCount(), before, "nothing written");
    const deep = await auth("/signup", JSON.stringify({ email: `deep-${tag()}@example.test`, password, data: JSON.parse(`${"{\"a\":".repeat(100)}1${"}".repeat(100)}`) }));
    assert.equal(deep.status, 400);

    const session = client(stack);
    const { data } = await session.auth.signUp({ email: `meta-${tag()}@example.test`, password, options: { data: { full_name: "Ada", team: "core" } } });
    const token = data.session!.access_token;
    const tooBig = await auth("/user", JSON.stringify({ data: big }), { method: "PUT", token });
    assert.equal(tooBig.status, 400);
    assert.equal(tooBig.body.code, "validation_failed");
    const updated = await session.auth.updateUser({ data: { team: null, city: "Paris" } });
    assert.equal(updated.error, null);
    assert.equal(updated.data.user?.user_metadata.full_name, "Ada");
    assert.equal(updated.data.user?.user_metadata.city, "Paris");
    assert.equal("team" in (updated.data.user?.user_metadata ?? {}), false);
  });

  test("an email over 255 characters, a NUL in email or password, a lone surrogate anywhere: 400 in GoTrue's shape, nothing written", async () => {
    const before = await userCount();
    const cases = [
      `{"email": "${"a".repeat(250)}@example.test", "password": "${password}"}`,
      `{"email": "nul\\u0000-${tag()}@example.test", "password": "${password}"}`,
      `{"email": "nul-${tag()}@example.test", "password": "correct\\u0000horse"}`,
      `{"email": "lone-${tag()}@example.test", "password": "correct \\ud800 horse"}`,
      `{"email": "lone-${tag()}@example.test", "password": "${password}", "data": {"name": "\\udc00"}}`,
      `{"email": "lone-${tag()}@example.test", "password": "${password}", "data": {"\\ud800": 1}}`,
      `{"email": "nul-${tag()}@example.test", "password": "${password}", "data": {"name": "a\\u0000b"}}`,
      `{"email": 42, "password": "${password}"}`,
      `{"email": "x-${tag()}@example.test", "password": "${password}", "data": "not an object"}`,
    ];
    for (const body of cases) {
      for (const path of ["/signup", "/token?grant_type=password"]) {
        const answer = await auth(path, body);
        assert.ok(answer.status >= 400 && answer.status < 500, `${path} ${body.slice(0, 60)}: ${answer.status}`);
        assert.equal(typeof answer.body.code, "string", `${path}: GoTrue's shape`);
        assert.equal(typeof answer.body.message, "string", `${path}: GoTrue's shape`);
      }
    }
    const refresh = await auth("/token?grant_type=refresh_token", `{"refresh_token": "a\\u0000b"}`);
    assert.equal(refresh.status, 400);
    assert.equal(await userCount(), before, "nothing written");
  });
});
