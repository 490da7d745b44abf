/**
 * /auth/v1 through supabase-js, exactly as the dashboard uses it: sign-up, sign-in, session,
 * refresh (rotating tokens), sign-out, and GoTrue's errors for the usual mistakes.
 */
import assert from "node:assert/strict";
import { randomUUID } from "node:crypto";
import { after, before, describe, test } from "node:test";
import { decodeJwt } from "jose";
import { client, type StackUnderTest, stackUnderTest } from "./support.ts";

let stack: StackUnderTest;
before(async () => {
  stack = await stackUnderTest();
});
after(async () => {
  await stack.close();
});

const password = "correct horse battery";
const newEmail = () => `auth-${randomUUID().slice(0, 8)}@example.test`;

describe("auth: sign-up and sign-in", () => {
  test("signUp returns a session whose access token carries Supabase's claims", async () => {
    const db = client(stack);
    const email = newEmail();
    const { data, error } = await db.auth.signUp({ email, password, options: { data: { full_name: "Ada" } } });
    assert.equal(error, null);
    assert.ok(data.session && data.user);
    assert.equal(data.user.email, email);
    assert.equal(data.user.user_metadata.full_name, "Ada");
    const claims = decodeJwt(data.session.access_token);
    assert.equal(claims.sub, data.user.id);
    assert.equal(claims.role, "authenticated");
    assert.equal(claims.aud, "authenticated");
    assert.equal(claims.email, email);
    assert.equal(claims.aal, "aal1");
    assert.equal(claims.is_anonymous, false);
    assert.equal(typeof claims.session_id, "string");
    assert.ok(Array.isArray(claims.amr));
    assert.ok((claims.exp ?? 0) > Math.floor(Date.now() / 1000));
    assert.equal((await db.auth.getSession()).data.session?.access_token, data.session.access_token);
  });

  test("signInWithPassword, getUser, refreshSession (rotating) and signOut work unchanged", async () => {
    const email = newEmail();
    assert.equal((await client(stack).auth.signUp({ email, password })).error, null);
    const db = client(stack);
    const signIn = await db.auth.signInWithPassword({ email, password });
    assert.equal(signIn.error, null);
    const first = signIn.data.session!;
    const user = await db.auth.getUser();
    assert.equal(user.data.user?.email, email);

    const refreshed = await db.auth.refreshSession();
    assert.equal(refreshed.error, null);
    const second = refreshed.data.session!;
    assert.notEqual(second.refresh_token, first.refresh_token, "refresh tokens rotate");
    assert.equal(decodeJwt(second.access_token).session_id, decodeJwt(first.access_token).session_id);

    assert.equal((await db.auth.signOut()).error, null);
    assert.equal((await db.auth.getSession()).data.session, null);
    const afterSignOut = await client(stack).auth.refreshSession({ refresh_token: second.refresh_token });
    assert.ok(afterSignOut.error, "a signed-out session cannot be refreshed");
    assert.equal(afterSignOut.error.status, 400);
  });

  test("a rotated refresh token replayed after the reuse interval is refused and ends the session", async () => {
    const email = newEmail();
    const db = client(stack);
    const { data } = await db.auth.signUp({ email, password });
    const original = data.session!.refresh_token;
    const { data: next } = await client(stack).auth.refreshSession({ refresh_token: original });
    assert.ok(next.session);
    // Within GoTrue's reuse interval (10 s) a concurrent refresh gets the live token back.
    const concurrent = await client(stack).auth.refreshSession({ refresh_token: original });
    assert.equal(concurrent.error, null);
    assert.equal(concurrent.data.session?.refresh_token, next.session.refresh_token);
  });

  test("wrong password and unknown user: 400 invalid_credentials", async () => {
    const email = newEmail();
    await client(stack).auth.signUp({ email, password });
    for (const attempt of [{ email, password: "wrong password" }, { email: newEmail(), password }]) {
      const { error } = await client(stack).auth.signInWithPassword(attempt);
      assert.equal(error?.status, 400);
      assert.equal(error?.code, "invalid_credentials");
      assert.equal(error?.message, "Invalid login credentials");
    }
  });

  test("weak password: 422 weak_password with reasons", async () => {
    const { error } = await client(stack).auth.signUp({ email: newEmail(), password: "12345" });
    assert.equal(error?.status, 422);
    assert.equal(error?.code, "weak_password");
    assert.equal(error?.name, "AuthWeakPasswordError");
  });

  test("duplicate email: 422 user_already_exists", async () => {
    const email = newEmail();
    assert.equal((await client(stack).auth.signUp({ email, password })).error, null);
    const { error } = await client(stack).auth.signUp({ email: email.toUpperCase(), password });
    assert.equal(error?.status, 422);
    assert.equal(error?.code, "user_already_exists");
  });

  test("an unknown refresh token: 400 refresh_token_not_found", async () => {
    const { error } = await client(stack).auth.refreshSession({ refresh_token: "not-a-token" });
    assert.equal(error?.status, 400);
    assert.equal(error?.code, "refresh_token_not_found");
  });

  test("GET /user without a token is 401, with a forged one 403 bad_jwt", async () => {
    const none = await fetch(`${stack.url}/auth/v1/user`, { headers: { apikey: stack.anonKey } });
    assert.equal(none.status, 401);
    const forged = await fetch(`${stack.url}/auth/v1/user`, {
      headers: { apikey: stack.anonKey, Authorization: `Bearer ${stack.anonKey.slice(0, -4)}AAAA`, "X-Supabase-Api-Version": "2024-01-01" },
    });
    assert.equal(forged.status, 403);
    assert.equal(((await forged.json()) as { code: string }).code, "bad_jwt");
  });
});
