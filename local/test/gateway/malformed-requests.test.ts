/**
 * Property: whatever malformed request reaches `/rest/v1` or `/auth/v1` (bodies, PostgREST
 * query syntax, headers, path segments, NUL, lone surrogates, overlong strings, deep nesting),
 * with the anon key, a signed-in user's token, the service role or a garbage key, the gateway
 * never answers 5xx, a 4xx carries the envelope of the service (PostgREST's
 * `{code, message, details, hint}`, GoTrue's `{code, message}`), and nothing is written.
 *
 * Deterministic: FUZZ_SEED (default below) and FUZZ_RUNS choose the run; fast-check prints the
 * seed and the shrunk counterexample on failure, so `FUZZ_SEED=<seed> node --import tsx --test
 * local/test/gateway/malformed-requests.test.ts` replays it.
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import fc from "fast-check";
import pg from "pg";
import { client, type Persona, signUp, type StackUnderTest, stackUnderTest } from "./support.ts";

const SEED = Number(process.env.FUZZ_SEED ?? 20_261_201);
const RUNS = Number(process.env.FUZZ_RUNS ?? 400);

let stack: StackUnderTest;
let db: pg.Pool;
let user: Persona;
let relations: string[] = [];
let functions: Array<{ name: string; args: Array<{ name: string; type: string }> }> = [];
let countSql: string;

before(async () => {
  stack = await stackUnderTest();
  assert.ok(process.env.TEST_DATABASE_URL, "TEST_DATABASE_URL is set");
  db = new pg.Pool({ connectionString: process.env.TEST_DATABASE_URL, max: 2 });
  user = await signUp(stack, "fuzz");
  const created = await user.db.rpc("create_organization", { p_name: "Fuzz Org" });
  assert.equal(created.error, null);

  relations = (await db.query<{ name: string; kind: string }>(
    `select c.relname as name, c.relkind as kind from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind in ('r', 'v', 'm', 'p') order by 1`,
  )).rows.map((r) => r.name);
  const fnRows = (await db.query<{ name: string; names: string[] | null; types: string[] }>(
    `select p.proname as name, p.proargnames as names,
            array(select pg_catalog.format_type(t, null) from unnest(p.proargtypes::oid[]) as t) as types
       from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname = 'public' and p.prokind = 'f' order by 1`,
  )).rows;
  functions = fnRows.map((row) => ({ name: row.name, args: row.types.map((type, i) => ({ name: row.names?.[i] ?? `arg${i}`, type })) }));
  const tables = (await db.query<{ name: string }>(
    `select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'public' and c.relkind in ('r', 'p') order by 1`,
  )).rows.map((r) => `public.${r.name}`);
  countSql = `select ${["auth.users", "auth.sessions", "auth.refresh_tokens", ...tables]
    .map((table) => `(select count(*) from ${table})::int as "${table}"`)
    .join(", ")}`;
});

after(async () => {
  await db?.end();
  await stack?.close();
});

/** Row counts of the auth tables and every table of the schema, plus the fuzz user's own row. */
async function snapshot(): Promise<string> {
  const [counts, self] = await Promise.all([
    db.query(countSql),
    db.query("select raw_user_meta_data, encrypted_password, email from auth.users where id = $1", [user.userId]),
  ]);
  return JSON.stringify([counts.rows[0], self.rows[0]]);
}

// ---------------------------------------------------------------------------
// What goes wrong in strings: every one of these is invalid wherever it lands.
// ---------------------------------------------------------------------------

const LONE_SURROGATES = ["\ud800", "\udfff", "a\udc00b", "\ud83d"];
/** Text no text column can hold intact: a NUL or a lone surrogate, anywhere in it. */
const poisonedText = fc
  .tuple(
    fc.string({ maxLength: 20 }),
    // A NUL passes the gateway and is refused by Postgres; a lone surrogate is refused by the gateway.
    fc.oneof({ arbitrary: fc.constant("\u0000"), weight: 2 }, { arbitrary: fc.constantFrom(...LONE_SURROGATES), weight: 1 }),
    fc.string({ maxLength: 20 }),
  )
  .map(([a, bad, b]) => `${a}${bad}${b}`);
/** Garbage for any typed (non-text) parameter: never a uuid, a number, a date or a boolean. */
const garbageScalar = fc.oneof(
  poisonedText,
  fc.constantFrom("", " ", "null", "NaN", "Infinity", "-", "1e999", "99999999999999999999999", "1.5.6", "not-a-uuid", "0x1F", "true false", "2026-13-45", "'; drop table x; --", "(", ")", "{", "\\"),
  fc.string({ minLength: 1, maxLength: 5 }).map((s) => `zz${s}`),
);
const nested = (min: number, max: number) => fc.integer({ min, max }).map((depth) => JSON.parse(`${"[".repeat(depth)}1${"]".repeat(depth)}`) as unknown);
/** Deeper than any argument may be: refused by the gateway. */
const deepJson = nested(300, 3000);
/** A value for an argument of `type` that the call must refuse. */
function badValue(type: string): fc.Arbitrary<unknown> {
  if (/^(text|character varying|citext|character)/.test(type)) return poisonedText;
  if (type === "jsonb" || type === "json") {
    return fc.oneof(deepJson, poisonedText.map((s) => ({ [s]: 1 })), poisonedText.map((s) => ({ note: s })), poisonedText.map((s) => [s]));
  }
  if (type.endsWith("[]")) return fc.oneof(poisonedText.map((s) => [s]), garbageScalar);
  // Nesting the gateway lets through reaches Postgres, which cannot cast it to a scalar.
  return fc.oneof(garbageScalar, deepJson, nested(1, 200), fc.constant({ nested: { object: true } }), fc.constant([1, 2, 3]));
}

// ---------------------------------------------------------------------------
// Callers
// ---------------------------------------------------------------------------

type Caller = "anon" | "user" | "service" | "garbage" | "none";
/** Mostly real callers, so most requests get past authentication to the parsers and Postgres. */
const callerArb = fc.oneof(
  { arbitrary: fc.constantFrom<Caller>("anon", "user", "service"), weight: 5 },
  { arbitrary: fc.constantFrom<Caller>("garbage", "none"), weight: 1 },
);
const garbageToken = fc.oneof(
  fc.string({ maxLength: 40 }).map((s) => s.replace(/[^\x21-\x7e]/g, "x")),
  fc.constantFrom("eyJhbGciOiJub25lIn0.e30.", "a.b.c", "Bearer", "null", "x".repeat(5000)),
);

function authHeaders(caller: Caller, garbage: string): Record<string, string> {
  switch (caller) {
    case "anon":
      return { apikey: stack.anonKey };
    case "user":
      return { apikey: stack.anonKey, Authorization: `Bearer ${user.accessToken}` };
    case "service":
      return { apikey: stack.serviceRoleKey, Authorization: `Bearer ${stack.serviceRoleKey}` };
    case "garbage":
      return { apikey: garbage, Authorization: `Bearer ${garbage}` };
    case "none":
      return {};
  }
}

const headerGarbage = fc.string({ maxLength: 30 }).map((s) => s.replace(/[^\x20-\x7e]/g, "?"));
/** Mostly a value a client sends, sometimes one it never would. */
function usually(valid: string[], garbage = headerGarbage): fc.Arbitrary<string> {
  return fc.oneof({ arbitrary: fc.constantFrom(...valid), weight: 4 }, { arbitrary: garbage, weight: 1 });
}
/** A header that is sometimes sent (one request in `1 + absentWeight`). */
function sometimes(value: fc.Arbitrary<string>, absentWeight: number): fc.Arbitrary<string | undefined> {
  return fc.oneof({ arbitrary: fc.constant(undefined), weight: absentWeight }, { arbitrary: value, weight: 1 });
}
/**
 * Optional PostgREST/GoTrue-relevant headers. The profile headers are rare: a wrong profile
 * is refused before anything else is looked at, which would hide the rest of the request.
 */
const extraHeaders = fc
  .record({
    prefer: sometimes(usually(["count=exact", "count=planned", "return=representation", "params=single-object", "count=exact, tx=rollback", "missing=default", "count=estimated"]), 1),
    range: sometimes(usually(["0-9", "items=5-2", "-1-3", "0-", "999999999999999999999-1", "a-b", "0-99999999999999999999", "5-5"]), 1),
    accept: sometimes(usually(["application/json", "application/vnd.pgrst.object+json", "text/csv", "application/vnd.pgrst.object+json;nulls=stripped", "*/*", "application/openapi+json"]), 2),
    "accept-profile": sometimes(usually(["public", "auth", "extensions", "pg_catalog", ""]), 8),
    "content-profile": sometimes(usually(["public", "auth"]), 8),
    "content-type": sometimes(usually(["application/json", "application/json", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data", "application/json; charset=latin1"]), 1),
    "x-supabase-api-version": sometimes(fc.constantFrom("2024-01-01", "2020-01-01", "garbage"), 1),
  })
  .map((headers) => Object.fromEntries(Object.entries(headers).filter((entry): entry is [string, string] => entry[1] !== undefined)));

// ---------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------

interface FuzzRequest {
  service: "rest" | "auth";
  method: string;
  path: string;
  headers: Record<string, string>;
  body?: string;
}

/** A query-string piece of PostgREST syntax, well-formed or not. */
const queryPiece = fc.oneof(
  fc.constantFrom(
    "select=", "select=*", "select=id,name", "select=id::text", "select=id::notatype", "select=(", "select=a(b(c(d)))", "select=count()", "select=*,organization_members(*)",
    "order=", "order=id.desc.nullsfirst", "order=nope.asc", "order=id.sideways", "order=id,id,id",
    "id=eq.", "id=eq.not-a-uuid", "id=in.(", "id=in.()", "id=in.(1,2", "id=is.maybe", "id=like.%25", "id=cs.{1}", "id=fts.x", "id=not.eq.", "id=eq.%00",
    "or=(", "or=()", "or=(id.eq.1", "and=(or(and(or(id.eq.1))))", "not.or=(id.eq.1,name.eq.2)",
    "limit=-1", "limit=1e3", "limit=99999999999999999999", "offset=99999999999999999999", "offset=-5", "limit=abc", "offset=",
    "%zz=1", "%E0%A4%A=1", "a=%ED%A0%80", "=", "&&&", "select=%00", "name=eq.%F0%9F%98",
  ),
  fc.integer({ min: 1, max: 400 }).map((depth) => `or=${"(".repeat(depth)}id.eq.1${")".repeat(depth)}`),
  fc.integer({ min: 1, max: 200 }).map((depth) => `select=${"a(".repeat(depth)}id${")".repeat(depth)}`),
  fc.string({ maxLength: 8000 }).map((s) => `name=eq.${encodeURIComponent(s.replace(/[\ud800-\udfff]/g, "x"))}`),
  fc.tuple(fc.string({ maxLength: 12 }), fc.string({ maxLength: 12 })).map(([k, v]) => `${encodeURIComponent(k.replace(/[\ud800-\udfff]/g, "x"))}=${encodeURIComponent(v.replace(/[\ud800-\udfff]/g, "x"))}`),
);

const pathSegment = fc.oneof(
  fc.constantFrom("%00", "%zz", "%E0%A4%A", "..", "rpc", "rpc%2Fconsume_credits", "a%2Fb", "%ED%A0%80", "x".repeat(3000), "organizations%00", "pg_catalog.pg_authid", "auth.users"),
  fc.string({ maxLength: 20 }).map((s) => encodeURIComponent(s.replace(/[\ud800-\udfff]/g, "x"))),
);

function restRead(): fc.Arbitrary<FuzzRequest> {
  return fc
    .record({
      target: fc.oneof(fc.constantFrom(...relations), pathSegment, fc.tuple(fc.constantFrom(...relations), pathSegment).map(([a, b]) => `${a}/${b}`)),
      method: fc.constantFrom("GET", "GET", "HEAD", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"),
      query: fc.array(queryPiece, { maxLength: 5 }),
      caller: callerArb,
      garbage: garbageToken,
      headers: extraHeaders,
      body: fc.option(fc.string({ maxLength: 200 }), { nil: undefined }),
    })
    .map((r) => ({
      service: "rest" as const,
      method: r.method,
      path: `/rest/v1/${r.target}${r.query.length ? `?${r.query.join("&")}` : ""}`,
      headers: { ...r.headers, ...authHeaders(r.caller, r.garbage) },
      body: r.method === "GET" || r.method === "HEAD" || r.method === "OPTIONS" ? undefined : r.body,
    }));
}

/** A JSON body text that is not a valid call: broken JSON, wrong shape, or deep nesting. */
const brokenJsonText = fc.oneof(
  fc.constantFrom("", "{", "[]", "[1,2]", "null", "42", "\"text\"", "{\"a\":}", "{'a':1}", "{\"a\":1,}", "\u0000", "{\"\\ud800\":1}", "{\"a\":\"\\udc00\"}", "{\"a\": 1e999999}", "\ufeff{}"),
  fc.integer({ min: 1000, max: 200_000 }).map((depth) => `{"p":${"[".repeat(depth)}${"]".repeat(depth)}}`),
  fc.string({ maxLength: 300 }),
);

function restRpc(): fc.Arbitrary<FuzzRequest> {
  const call = fc.constantFrom(...functions).chain((fn) =>
    fc.record({
      fn: fc.constant(fn),
      // Every argument sent is one the call must refuse, and at least one is always sent
      // (an unknown name when the function takes none), so no call can succeed and write.
      args: fn.args.length === 0
        ? fc.constant([["p_unknown", 1] as [string, unknown]])
        : fc.uniqueArray(fc.constantFrom(...fn.args), { minLength: 1, selector: (a) => a.name }).chain((chosen) =>
            fc.tuple(...chosen.map((arg) => badValue(arg.type).map((value) => [arg.name, value] as [string, unknown])))),
      rawBody: fc.option(brokenJsonText, { nil: undefined, freq: 4 }),
      method: fc.constantFrom("POST", "POST", "POST", "GET", "PUT"),
      // PostgREST refuses a query string on a POST call before it looks at the arguments: rare.
      query: fc.oneof({ arbitrary: fc.constant([]), weight: 6 }, { arbitrary: fc.array(queryPiece, { minLength: 1, maxLength: 2 }), weight: 1 }),
      caller: callerArb,
      garbage: garbageToken,
      headers: extraHeaders,
    }),
  );
  return call.map((r) => {
    const body = r.rawBody ?? safeStringify(Object.fromEntries(r.args as Array<[string, unknown]>));
    const query = r.method === "GET"
      ? (r.args as Array<[string, unknown]>).map(([name, value]) => `${urlText(name)}=${urlText(typeof value === "string" ? value : safeStringify(value))}`)
      : r.query;
    return {
      service: "rest" as const,
      method: r.method,
      path: `/rest/v1/rpc/${r.fn.name}${query.length ? `?${query.join("&")}` : ""}`,
      headers: { ...r.headers, ...authHeaders(r.caller, r.garbage) },
      body: r.method === "GET" ? undefined : body,
    };
  });
}

/** Text for a query string: a URL cannot carry a lone surrogate, so it becomes a NUL (as bad). */
function urlText(text: string): string {
  return encodeURIComponent(text.replace(/[\ud800-\udfff]/g, "\u0000"));
}

/** JSON text of a value; deep arrays are written by hand (JSON.stringify would recurse). */
function safeStringify(value: unknown): string {
  try {
    return JSON.stringify(value);
  } catch {
    return "{\"p\":[[[[[[]]]]]]}";
  }
}

/** A value for a GoTrue field that no sign-up, sign-in or update can accept. */
const badAuthValue = fc.oneof(
  poisonedText,
  fc.constantFrom("", "no-at-sign", "@", "a@", "@b.c", "a@b", "a b@example.test", "ÉVE@EXAMPLE.TEST", "x".repeat(300), `${"a".repeat(250)}@example.test`, "12345", "é".repeat(40)),
  fc.constantFrom<unknown>(42, true, null, [], {}, [1, 2], { $gt: "" }),
);
const badMetadata = fc.oneof(
  poisonedText.map((s) => ({ name: s })),
  poisonedText.map((s) => ({ [s]: 1 })),
  deepJson.map((d) => ({ deep: d })),
  fc.constant({ big: "x".repeat(20_000) }),
  fc.constantFrom<unknown>("string", 42, [1, 2], true),
);

function authRequest(): fc.Arbitrary<FuzzRequest> {
  const jsonBody = fc
    .record(
      {
        email: badAuthValue,
        password: badAuthValue,
        phone: badAuthValue,
        refresh_token: badAuthValue,
        data: badMetadata,
        gotrue_meta_security: fc.constant({ captcha_token: "\u0000" }),
      },
      { requiredKeys: [] },
    )
    .map(safeStringify);
  return fc
    .record({
      route: fc.constantFrom(
        "POST /signup",
        "POST /token?grant_type=password",
        "POST /token?grant_type=refresh_token",
        "POST /token?grant_type=%00",
        "POST /token",
        "GET /user",
        "PUT /user",
        "POST /logout",
        "POST /logout?scope=%00",
        "GET /settings",
        "DELETE /user",
        "POST /recover",
        "GET /%ED%A0%80",
      ),
      body: fc.oneof(jsonBody, brokenJsonText),
      caller: callerArb,
      garbage: garbageToken,
      headers: extraHeaders,
    })
    .map((r) => {
      const [method, path] = r.route.split(" ") as [string, string];
      // The user's own token may read itself; it never logs out or updates with a valid body.
      const caller: Caller = r.caller === "user" && method === "POST" && path.startsWith("/logout") ? "anon" : r.caller;
      let body = method === "GET" ? undefined : r.body;
      // PUT /user with the user's own token always carries an invalid password, so it can
      // never succeed and change the user.
      if (caller === "user" && method === "PUT" && body !== undefined) {
        try {
          const parsed: unknown = JSON.parse(body);
          if (parsed !== null && typeof parsed === "object" && !Array.isArray(parsed)) body = JSON.stringify({ ...parsed, password: "12345" });
        } catch {
          // Not JSON: refused as it is.
        }
      }
      return {
        service: "auth" as const,
        method,
        path: `/auth/v1${path}`,
        headers: { ...r.headers, ...authHeaders(caller, r.garbage) },
        body,
      };
    });
}

// ---------------------------------------------------------------------------
// The property
// ---------------------------------------------------------------------------

async function perform(request: FuzzRequest): Promise<{ status: number; text: string }> {
  const headers = new Headers();
  for (const [name, value] of Object.entries(request.headers)) {
    try {
      headers.set(name, value);
    } catch {
      // A value fetch itself refuses to send; the request goes without it.
    }
  }
  const response = await fetch(`${stack.url}${request.path}`, { method: request.method, headers, body: request.body });
  return { status: response.status, text: await response.text() };
}

function checkEnvelope(request: FuzzRequest, status: number, text: string): void {
  if (status < 400 || request.method === "HEAD") return;
  let body: Record<string, unknown>;
  try {
    body = JSON.parse(text) as Record<string, unknown>;
  } catch {
    assert.fail(`${status} without a JSON body: ${text.slice(0, 200)}`);
  }
  // The URL as the gateway sees it (`/rest/v1/..` is `/rest/`, which no service owns).
  const pathname = new URL(request.path, stack.url).pathname;
  if (status === 431 || !/^\/(rest|auth)\/v1\//.test(pathname)) {
    // Refused before any service saw it (URL or headers too long, no such service): Kong's shape.
    assert.equal(typeof body.message, "string", `the gateway's own envelope: ${text.slice(0, 300)}`);
  } else if (request.service === "rest") {
    assert.deepEqual(Object.keys(body).sort(), ["code", "details", "hint", "message"], `PostgREST's envelope: ${text.slice(0, 300)}`);
    assert.equal(typeof body.code, "string");
    assert.equal(typeof body.message, "string");
  } else if (typeof body.code === "string") {
    assert.equal(typeof body.message, "string", `GoTrue's envelope: ${text.slice(0, 300)}`);
  } else {
    assert.equal(body.code, status, `GoTrue's legacy envelope: ${text.slice(0, 300)}`);
    assert.equal(typeof body.error_code, "string");
    assert.equal(typeof body.msg, "string");
  }
}

describe("malformed requests (property-based)", () => {
  test(`never a 5xx, always the service's error envelope, never a write (seed ${SEED}, ${RUNS} runs)`, { timeout: 300_000 }, async () => {
    const arbitrary = fc.oneof({ arbitrary: restRead(), weight: 3 }, { arbitrary: restRpc(), weight: 4 }, { arbitrary: authRequest(), weight: 3 });
    const before = await snapshot();
    if (process.env.FUZZ_DUMP) {
      const sample = fc.sample(arbitrary, { seed: SEED, numRuns: Number(process.env.FUZZ_DUMP) });
      for (const [i, r] of sample.entries()) console.log(i, r.method, r.path.slice(0, 150), JSON.stringify(r.headers).slice(0, 200), String(r.body).slice(0, 150));
    }
    await fc.assert(
      fc.asyncProperty(arbitrary, async (request) => {
        const { status, text } = await perform(request);
        assert.ok(status < 500, `${request.method} ${request.path.slice(0, 200)} answered ${status}: ${text.slice(0, 300)}`);
        checkEnvelope(request, status, text);
        assert.equal(await snapshot(), before, `${request.method} ${request.path.slice(0, 200)} (${status}) wrote something`);
      }),
      { seed: SEED, numRuns: RUNS, endOnFailure: true },
    );
  });

  test("two idempotency keys that differ only in invalid Unicode are refused with 22023, never merged into one", async () => {
    const orgs = await user.db.from("organizations").select("id");
    const organization = (orgs.data as Array<{ id: string }>)[0]!.id;
    const service = client(stack, stack.serviceRoleKey);
    for (const key of ["key-\ud800", "key-\udbff"]) {
      const { error, status } = await service.rpc("consume_credits", { p_organization_id: organization, p_event_key: "api_call_basic", p_idempotency_key: key });
      assert.equal(status, 400, JSON.stringify(error));
      assert.equal(error?.code, "22023");
    }
  });
});
