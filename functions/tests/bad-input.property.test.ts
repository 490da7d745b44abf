/**
 * The general rule for bad input, as a property (RELIABILITY.md, "Bad input"): whatever is
 * wrong with a request to `billing` or `stripe-webhook` (its body, its path or query
 * parameters, its headers, its Unicode) the answer is a 4xx, never a 5xx, with the error
 * envelope, and nothing is written. fast-check generates the requests: one valid request per
 * route, made invalid by at least one generated fault, sent as the owner, a member, the anon
 * key (a valid JWT that is nobody's), garbage or no credentials.
 *
 * Deterministic: the seed is PROPERTY_SEED (default below). On a failure fast-check prints
 * the seed, the path and the shrunk request; run again with `PROPERTY_SEED=<seed>` to
 * reproduce it.
 *
 * Requests without a valid JWT are refused by the platform (verify_jwt) before the function
 * runs; the platform answers in its own format, `{"code": 401, "message"}` (hosted Supabase's
 * as well), which is what these tests accept for them.
 */
import assert from "node:assert/strict";
import fc from "fast-check";
import pg from "pg";
import {
  anonKey,
  type Member,
  ownerWithOrganization,
  required,
  sign,
  signUp,
  supabaseUrl,
  webhookUrl,
} from "./support.ts";

const seed = Number(Deno.env.get("PROPERTY_SEED") ?? 20261201);
/**
 * Runs per billing route and for the webhook: a few hundred requests for each family, more for
 * the routes that take a body (they have the most ways to be wrong).
 */
const RUNS_PER_READ_ROUTE = 40;
const RUNS_PER_BODY_ROUTE = 100;
const WEBHOOK_RUNS = 200;

const test = (name: string, fn: () => Promise<void>) => Deno.test({ name, sanitizeOps: false, sanitizeResources: false, fn });

// ----- what is generated ---------------------------------------------------------------------

/** Single UTF-16 units, lone surrogates and NUL included, plus the characters that break things. */
const nastyUnit = fc.oneof(
  fc.integer({ min: 0, max: 0xffff }).map((code) => String.fromCharCode(code)),
  fc.constantFrom("\u0000", "\ud800", "\udfff", "\u202e", "\ufeff", "\u0430", "'", '"', "\\", "%", "/", "?", "#", ";", "\n", "😀"),
);

const nastyString = fc.oneof(
  fc.string({ unit: nastyUnit, maxLength: 40 }),
  fc.string({ unit: "binary", maxLength: 40 }),
  fc.string({ unit: nastyUnit, minLength: 256, maxLength: 2_000 }),
  fc.constantFrom("", " ", "null", "NaN", "'; drop table credit_lots; --", "../../etc/passwd", "<script>", "-1", "1e999", "\u0000", "\ud800"),
);

const nastyNumber = fc.oneof(
  fc.double(), // NaN and the infinities become null in JSON
  fc.integer({ min: -(2 ** 31), max: 2 ** 31 }),
  fc.constantFrom(0, -1, 1.5, 1e308, -0, 2 ** 53 + 2, Number.MAX_SAFE_INTEGER),
);

/** Nesting well past anything a body needs (and past what some parsers survive). */
const deepNesting = fc.tuple(fc.integer({ min: 30, max: 4_000 }), fc.boolean()).map(([depth, arrays]) => {
  let value: unknown = 1;
  for (let i = 0; i < depth; i++) value = arrays ? [value] : { a: value };
  return value;
});

/** Any JSON value of the wrong kind for a field, including deep nesting and odd strings. */
const nastyValue: fc.Arbitrary<unknown> = fc.oneof(
  nastyString,
  nastyNumber,
  fc.constantFrom(null, true, false, [], {}),
  fc.jsonValue({ maxDepth: 3 }),
  deepNesting,
);

/** A field of a body and the values it accepts (so a generated value that happens to fit is skipped). */
interface Field {
  name: string;
  valid: unknown;
  accepts(value: unknown): boolean;
}

/**
 * One request, as the generator builds it: method, path and query beside /billing, the
 * persona whose credentials it carries, headers, and a body (bytes, so invalid UTF-8 fits).
 */
interface Case {
  method: string;
  path: string;
  persona: Persona;
  contentType?: string;
  body?: Uint8Array<ArrayBuffer>;
  /** What was made wrong, for the failure message. */
  fault: string;
}

type Persona = "owner" | "member" | "anon_key" | "none" | { garbage: string };

const garbageAuthorization = fc.oneof(
  fc.string({ unit: "binary-ascii", maxLength: 300 }).map((s) => s.replace(/[^\x20-\x7e]/g, "")),
  fc.constantFrom("Bearer", "Bearer ", "Bearer a.b.c", "Basic dXNlcjpwYXNz", "bearer null", "Bearer eyJhbGciOiJub25lIn0.e30."),
).map((garbage): Persona => ({ garbage }));

/** Mostly the owner (who may do the most), so most requests reach the function's own checks. */
const persona: fc.Arbitrary<Persona> = fc.oneof(
  { arbitrary: fc.constant<Persona>("owner"), weight: 5 },
  { arbitrary: fc.constant<Persona>("member"), weight: 2 },
  { arbitrary: fc.constant<Persona>("anon_key"), weight: 1 },
  { arbitrary: fc.constant<Persona>("none"), weight: 1 },
  { arbitrary: garbageAuthorization, weight: 1 },
);

const encoder = new TextEncoder();
const utf8 = (text: string) => encoder.encode(text);

/** A JSON text with a string value spliced in as raw escapes (\ud800, \u0000) the encoder would not write. */
const escapeInjection = fc.constantFrom("\\ud800", "\\udfff", "\\u0000", "\\udc00\\ud800", "x\\u0000y");

/** Bytes that are not UTF-8 (a lone continuation byte, an overlong NUL, a surrogate in CESU-8). */
const invalidUtf8 = fc.constantFrom([0x80], [0xc0, 0x80], [0xed, 0xa0, 0x80], [0xff], [0xf8, 0x88, 0x80, 0x80, 0x80]);

/**
 * Bodies for a POST route, each wrong in one generated way: a field of the wrong kind, a
 * field missing, an unknown field, another JSON value altogether, escapes that decode to
 * lone surrogates or NUL (in values, keys and metadata), bytes that are not UTF-8, text that
 * is not JSON, or too much of it.
 */
function badBodies(fields: Field[], extra: Record<string, unknown> = {}): fc.Arbitrary<{ body: Uint8Array<ArrayBuffer>; fault: string }> {
  const valid = () => Object.fromEntries(fields.map((f) => [f.name, f.valid]));
  const asJson = (value: unknown, fault: string) => ({ body: utf8(JSON.stringify(value) ?? "null"), fault });
  const fieldIndex = fc.integer({ min: 0, max: fields.length - 1 });
  const wrongKind = fc.tuple(fieldIndex, nastyValue).filter(([i, value]) => !fields[i]!.accepts(value))
    .map(([i, value]) => asJson({ ...valid(), ...extra, [fields[i]!.name]: value }, `${fields[i]!.name} of the wrong kind`));
  // Fields holding objects (metadata) take free-form text, so they get the escapes as often as all the rest.
  const objectFields = fields.flatMap((f, i) => (typeof f.valid === "object" && f.valid !== null ? [i] : []));
  const escapeField = objectFields.length ? fc.oneof(fieldIndex, fc.constantFrom(...objectFields)) : fieldIndex;
  const escapes = fc.tuple(escapeField, escapeInjection, fc.boolean()).map(([i, escape, inKey]) => {
    // Spliced into a value or a key: of the field itself, or inside it when it is an object (metadata).
    const field = fields[i]!;
    const nested = typeof field.valid === "object" && field.valid !== null;
    const value = nested ? (inKey ? { "k@@": "v" } : { k: "v@@" }) : inKey ? field.valid : `${String(field.valid)}@@`;
    const body: Record<string, unknown> = { ...valid(), ...extra, [field.name]: value };
    if (inKey && !nested) {
      delete body[field.name];
      body[`${field.name}@@`] = field.valid;
    }
    return { body: utf8(JSON.stringify(body).replace("@@", escape)), fault: `${escape} in ${inKey ? "a key" : "a value"} of ${field.name}` };
  });
  const missing = fieldIndex.map((i) => {
    const body: Record<string, unknown> = { ...valid(), ...extra };
    delete body[fields[i]!.name];
    return asJson(body, `${fields[i]!.name} missing`);
  });
  const unknownField = fc.tuple(nastyString.filter((k) => !fields.some((f) => f.name === k) && !(k in extra)), nastyValue)
    .map(([key, value]) => asJson({ ...valid(), ...extra, [key]: value }, "an unknown field"));
  const notAnObject = fc.oneof(nastyValue.filter((v) => typeof v !== "object" || v === null || Array.isArray(v)), deepNesting)
    .map((value) => asJson(value, "not an object"));
  const notUtf8 = fc.tuple(fieldIndex, invalidUtf8).map(([i, bytes]) => {
    const [before, after] = JSON.stringify({ ...valid(), ...extra, [fields[i]!.name]: "@@" }).split("@@") as [string, string];
    return { body: new Uint8Array([...utf8(before), ...bytes, ...utf8(after)]), fault: "bytes that are not UTF-8" };
  });
  const notJson = fc.constantFrom("{", "{not json", "", "nul", "[1,]", '{"a":1}}', "\u0000", "1e400x", "123456789012345678901234567890")
    .map((text) => ({ body: utf8(text), fault: "text that is not JSON (or a bare number)" }));
  const tooLarge = fc.integer({ min: 17_000, max: 200_000 })
    .map((size) => asJson({ ...valid(), ...extra, metadata: { blob: "x".repeat(size) } }, "too large"));
  return fc.oneof(
    { arbitrary: wrongKind, weight: 3 },
    { arbitrary: escapes, weight: 3 },
    { arbitrary: missing, weight: 1 },
    { arbitrary: unknownField, weight: 1 },
    { arbitrary: notAnObject, weight: 1 },
    { arbitrary: notUtf8, weight: 1 },
    { arbitrary: notJson, weight: 1 },
    { arbitrary: tooLarge, weight: 1 },
  );
}

const anyString = (value: unknown) => typeof value === "string";
const exactly = (...allowed: unknown[]) => (value: unknown) => allowed.includes(value);

/** A path segment from generated text: percent-encoded, or raw escapes that are not UTF-8 (or NUL). */
const badSegment = fc.oneof(
  nastyString.filter((s) => s.isWellFormed() && s.length > 0).map((s) => encodeURIComponent(s)),
  fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 12 })
    .map((bytes) => bytes.map((b) => `%${b.toString(16).padStart(2, "0")}`).join("")),
  fc.constantFrom("%00", "%ED%A0%80", "%C0%80", "not-a-uuid", "00000000-0000-0000-0000-00000000000g", "%", "%zz"),
);

const otherMethod = fc.constantFrom("PUT", "PATCH", "DELETE");

// ----- the routes ----------------------------------------------------------------------------

interface Fixture {
  organizationId: string;
  owner: Member;
  member: Member;
}

/** The routes of the billing API (CONTRACT.md, with its "HTTP additions"). */
const ROUTES = [
  "GET /plans",
  "GET /credit-products",
  "GET /subscription/{org_id}",
  "GET /credits/{org_id}",
  "GET /summary/{org_id}",
  "GET /history/{org_id}",
  "POST /subscription/checkout",
  "POST /subscription/portal",
  "POST /credits/consume",
  "POST /credit-products/checkout",
  "POST /credits/consume-batch",
  "POST /credits/reserve",
  "POST /credits/reservations/{id}/settle",
  "POST /credits/reservations/{id}/release",
  "GET /subscription/{org_id}/upcoming",
  "POST /subscription/change/preview",
  "POST /subscription/change",
  "POST /subscription/change/cancel",
  "POST /subscription/resume",
] as const;

/** A valid batch event has a key in the event key format; anything else the generator makes is wrong. */
const isValidEvents = (value: unknown) =>
  Array.isArray(value) && value.length > 0 && value.every((event) =>
    event !== null && typeof event === "object" && !Array.isArray(event) &&
    typeof (event as { event_key?: unknown }).event_key === "string" &&
    /^[a-z][a-z0-9_.:-]{0,63}$/.test((event as { event_key: string }).event_key)
  );

/** Every billing route with the ways its requests are generated wrong. */
function routes(f: Fixture): Record<(typeof ROUTES)[number], fc.Arbitrary<Omit<Case, "persona">>> {
  const org = f.organizationId;
  const unknownReservation = "7d0c3a52-5b1e-4f4a-9c36-2f1e0b8d6a91";
  const json = "application/json";
  const organizationField: Field = { name: "organization_id", valid: org, accepts: exactly(org) };
  // Whatever plan and interval pass, the fixture has no subscription to change (409).
  const planChangeFields: Field[] = [
    { name: "plan_code", valid: "professional", accepts: () => false },
    { name: "interval", valid: "month", accepts: () => false },
  ];
  const post = (path: string, fields: Field[], extra?: Record<string, unknown>) =>
    fc.oneof(
      { arbitrary: badBodies(fields, extra).map(({ body, fault }) => ({ method: "POST", path, contentType: json, body, fault })), weight: 6 },
      {
        arbitrary: fc.oneof(nastyString.filter((s) => !s.toLowerCase().trim().startsWith("application/json")), fc.constant(undefined))
          .filter((type) => type === undefined || /^[\x20-\x7e]*$/.test(type))
          .map((type) => ({
            method: "POST",
            path,
            contentType: type,
            body: utf8(JSON.stringify(Object.fromEntries(fields.map((x) => [x.name, x.valid])))),
            fault: "a content type that is not JSON",
          })),
        weight: 1,
      },
      { arbitrary: otherMethod.map((method) => ({ method, path, fault: `${method} on a POST route` })), weight: 1 },
    );
  const read = (prefix: string) =>
    fc.oneof(
      badSegment.map((segment) => ({ method: "GET", path: `${prefix}/${segment}`, fault: "an organization id that is not a UUID" })),
      fc.uuid().filter((id) => id !== org).map((id) => ({ method: "GET", path: `${prefix}/${id}`, fault: "someone else's organization" })),
      otherMethod.map((method) => ({ method, path: `${prefix}/${org}`, fault: `${method} on a GET route` })),
    );
  const listing = (path: string) =>
    fc.oneof(
      badSegment.map((segment) => ({ method: "GET", path: `${path}/${segment}`, fault: "a path below a listing" })),
      fc.constantFrom("POST", "PUT", "PATCH", "DELETE").map((method) => ({ method, path, fault: `${method} on a listing` })),
    );
  const badPaging = fc.oneof(
    fc.tuple(fc.constantFrom("limit", "offset"), fc.oneof(badSegment, fc.constantFrom("0", "-1", "101", "1.5", "1e3", "1e400", "Infinity", "0x10", "")))
      .filter(([key, value]) => !(key === "offset" && /^\d+$/.test(value) && Number(value) <= 1_000_000))
      .filter(([key, value]) => !(key === "limit" && /^\d+$/.test(value) && Number(value) >= 1 && Number(value) <= 100))
      .map(([key, value]) => `${key}=${value}`),
    fc.tuple(badSegment.filter((k) => k !== "limit" && k !== "offset" && !k.startsWith("%")), badSegment)
      .map(([key, value]) => `${key}=${value}`),
  );
  return {
    "GET /plans": listing("/plans"),
    "GET /credit-products": listing("/credit-products"),
    "GET /subscription/{org_id}": read("/subscription"),
    "GET /credits/{org_id}": read("/credits"),
    "GET /summary/{org_id}": read("/summary"),
    "GET /history/{org_id}": fc.oneof(
      read("/history"),
      badPaging.map((query) => ({ method: "GET", path: `/history/${org}?${query}`, fault: `paging ${query}` })),
    ),
    "POST /subscription/checkout": post("/subscription/checkout", [
      organizationField,
      { name: "plan_code", valid: "starter", accepts: exactly("starter", "professional", "enterprise") },
      { name: "interval", valid: "month", accepts: exactly("month", "year") },
    ]),
    "POST /subscription/portal": post("/subscription/portal", [organizationField]),
    "POST /credits/consume": post("/credits/consume", [
      organizationField,
      { name: "event_key", valid: "api_call_basic", accepts: anyString },
      // Any quantity or key the schema takes still fails: the organization has no credits (402).
      { name: "quantity", valid: 1, accepts: () => false },
      { name: "idempotency_key", valid: "property-key", accepts: () => false },
      { name: "metadata", valid: { source: "property" }, accepts: () => false },
    ]),
    "POST /credit-products/checkout": post("/credit-products/checkout", [
      organizationField,
      { name: "product_code", valid: "credits_1000", accepts: exactly("credits_1000", "credits_5000", "credits_20000") },
    ]),
    "POST /credits/consume-batch": post("/credits/consume-batch", [
      organizationField,
      // A well-formed batch would be a 200 with per-event results, so the generator never counts one as a fault.
      { name: "events", valid: [{ event_key: "api_call_basic" }, { event_key: "ai_inference", quantity: 2 }], accepts: isValidEvents },
    ]),
    "POST /credits/reserve": post("/credits/reserve", [
      organizationField,
      { name: "event_key", valid: "ai_inference", accepts: anyString },
      // As for consume: whatever the schema takes still fails, the organization has no credits (402).
      { name: "quantity", valid: 1, accepts: () => false },
      { name: "idempotency_key", valid: "property-reservation", accepts: () => false },
      { name: "ttl_seconds", valid: 60, accepts: () => false },
      { name: "metadata", valid: { source: "property" }, accepts: () => false },
    ]),
    // A reservation id nobody holds: even a body that passes is a 404.
    "POST /credits/reservations/{id}/settle": fc.oneof(
      post(`/credits/reservations/${unknownReservation}/settle`, [
        { name: "quantity", valid: 1, accepts: () => false },
        { name: "metadata", valid: { source: "property" }, accepts: () => false },
      ]),
      badSegment.map((segment) => ({ method: "POST", path: `/credits/reservations/${segment}/settle`, fault: "a reservation id that is not a UUID" })),
    ),
    "POST /credits/reservations/{id}/release": fc.oneof(
      post(`/credits/reservations/${unknownReservation}/release`, [
        { name: "reservation_id", valid: unknownReservation, accepts: () => false },
      ]),
      badSegment.map((segment) => ({ method: "POST", path: `/credits/reservations/${segment}/release`, fault: "a reservation id that is not a UUID" })),
    ),
    // The fixture has no subscription: even a request that passes every check is a 409.
    "GET /subscription/{org_id}/upcoming": fc.oneof(
      badSegment.map((segment) => ({ method: "GET", path: `/subscription/${segment}/upcoming`, fault: "an organization id that is not a UUID" })),
      fc.uuid().filter((id) => id !== org).map((id) => ({ method: "GET", path: `/subscription/${id}/upcoming`, fault: "someone else's organization" })),
      otherMethod.map((method) => ({ method, path: `/subscription/${org}/upcoming`, fault: `${method} on a GET route` })),
    ),
    "POST /subscription/change/preview": post("/subscription/change/preview", [organizationField, ...planChangeFields]),
    "POST /subscription/change": post("/subscription/change", [
      organizationField,
      ...planChangeFields,
      { name: "proration_date", valid: 1_800_000_000, accepts: () => false },
    ]),
    "POST /subscription/change/cancel": post("/subscription/change/cancel", [organizationField]),
    "POST /subscription/resume": post("/subscription/resume", [organizationField]),
  };
}

// ----- sending and checking ------------------------------------------------------------------

function authorizationOf(persona: Persona, f: Fixture): Record<string, string> {
  if (persona === "owner") return { Authorization: `Bearer ${f.owner.token}` };
  if (persona === "member") return { Authorization: `Bearer ${f.member.token}` };
  if (persona === "anon_key") return { Authorization: `Bearer ${anonKey}` };
  if (persona === "none") return {};
  return { Authorization: persona.garbage };
}

async function send(url: string, method: string, headers: Record<string, string>, body?: Uint8Array<ArrayBuffer>) {
  const response = await fetch(url, { method, headers, body: method === "GET" || method === "HEAD" ? undefined : body });
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = text;
  }
  return { status: response.status, body: parsed, retryAfter: response.headers.get("retry-after") };
}

/** Our envelope, or (for a request the platform refused before the function ran) the platform's 401. */
function checkAnswer(status: number, body: unknown, what: string) {
  assert.ok(status >= 400 && status < 500, `${what}: a 4xx, not ${status} ${JSON.stringify(body)}`);
  const error = (body as { error?: { code?: unknown; message?: unknown } } | null)?.error;
  if (error) {
    assert.equal(typeof error.code, "string", `${what}: the envelope has a code`);
    assert.equal(typeof error.message, "string", `${what}: and a message`);
    assert.deepEqual(Object.keys(body as object), ["error"], `${what}: nothing beside the envelope`);
    return;
  }
  const platform = body as { code?: unknown; message?: unknown } | null;
  assert.ok(
    status === 401 && platform?.code === 401 && typeof platform.message === "string",
    `${what}: the error envelope (or the platform's own 401), not ${JSON.stringify(body)}`,
  );
}

/** What a request could have written, counted with the database owner's view. */
async function writes(organizationId: string, runTag: string) {
  const client = new pg.Client({ connectionString: required("TEST_DATABASE_URL") });
  await client.connect();
  try {
    const { rows } = await client.query(
      `select (select count(*) from public.credit_transactions where organization_id = $1)::int as credit_transactions,
              (select count(*) from public.credit_consumptions where organization_id = $1)::int as credit_consumptions,
              (select count(*) from public.credit_reservations where organization_id = $1)::int as credit_reservations,
              (select count(*) from public.billing_history where organization_id = $1)::int as billing_history,
              (select count(*) from public.stripe_events where organization_id = $1 or payload->>'x_property_run' = $2)::int as stripe_events,
              (select stripe_customer_id from public.organizations where id = $1) as stripe_customer_id`,
      [organizationId, runTag],
    );
    return rows[0];
  } finally {
    await client.end();
  }
}

async function fixture(): Promise<Fixture> {
  const { owner, organizationId } = await ownerWithOrganization("Property Inc");
  const member = await signUp();
  const { error } = await owner.client.rpc("add_organization_member", { p_organization_id: organizationId, p_user_id: member.userId, p_role: "member" });
  if (error) throw new Error(error.message);
  return { organizationId, owner, member };
}

const fixtures = fixture();

for (const name of ROUTES) {
  // One test per route, so a failure names the route.
  test(`billing ${name}: generated bad requests get a 4xx with the envelope and write nothing`, async () => {
    const f = await fixtures;
    const before = await writes(f.organizationId, "");
    await fc.assert(
      fc.asyncProperty(routes(f)[name], persona, async (request, who) => {
        const headers: Record<string, string> = { apikey: anonKey, ...authorizationOf(who, f) };
        if (request.contentType !== undefined) headers["Content-Type"] = request.contentType;
        const answer = await send(`${supabaseUrl}/functions/v1/billing${request.path}`, request.method, headers, request.body);
        checkAnswer(answer.status, answer.body, `${request.method} ${request.path.slice(0, 200)} as ${JSON.stringify(who).slice(0, 80)} (${request.fault})`);
      }),
      { seed, numRuns: name.startsWith("POST") ? RUNS_PER_BODY_ROUTE : RUNS_PER_READ_ROUTE, verbose: 1 },
    );
    assert.deepEqual(await writes(f.organizationId, ""), before, `${name}: nothing was written`);
  });
}

test("billing history: a page at or past the end is 200 with no rows and the total", async () => {
  const { owner, organizationId } = await ownerWithOrganization("Paged Inc");
  const client = new pg.Client({ connectionString: required("TEST_DATABASE_URL") });
  await client.connect();
  try {
    // Three payments, as the webhook would have recorded them.
    await client.query(
      `insert into public.billing_history (organization_id, stripe_reference, kind, status, amount, currency, occurred_at)
       select $1::uuid, 'in_paged_' || $1::text || '_' || n, 'subscription_invoice', 'paid', 1900, 'usd', now() - n * interval '1 day'
         from generate_series(1, 3) n`,
      [organizationId],
    );
  } finally {
    await client.end();
  }
  const page = async (query: string) => {
    const answer = await send(`${supabaseUrl}/functions/v1/billing/history/${organizationId}?${query}`, "GET", {
      apikey: anonKey,
      Authorization: `Bearer ${owner.token}`,
    });
    assert.equal(answer.status, 200, `${query}: ${JSON.stringify(answer.body)}`);
    return answer.body as { history: unknown[]; total: number; limit: number; offset: number };
  };
  assert.equal((await page("offset=0")).history.length, 3);
  const last = await page("limit=2&offset=2");
  assert.deepEqual([last.history.length, last.total], [1, 3], "the last, partial page");
  for (const offset of [3, 4, 1_000_000]) {
    assert.deepEqual(await page(`offset=${offset}`), { history: [], total: 3, limit: 20, offset }, `offset ${offset}: an empty page with the total`);
  }
});

test("idempotency keys that differ only in invalid Unicode, and NUL in metadata, are refused with 400, not merged or a 500", async () => {
  const f = await fixtures;
  const consume = (extra: string) => `{"organization_id":"${f.organizationId}","event_key":"api_call_basic",${extra}}`;
  const bodies = [
    ...["\\ud800", "\\udfff", "k\\ud800", "k\\udfff"].map((key) => consume(`"idempotency_key":"${key}"`)),
    // NUL cannot be stored by Postgres: in metadata values and keys it is refused up front.
    consume(`"metadata":{"note":"a\\u0000b"}`),
    consume(`"metadata":{"a\\u0000b":1}`),
    consume(`"metadata":{"deep":[{"x":"\\ud800"}]}`),
  ];
  for (const body of bodies) {
    const answer = await send(`${supabaseUrl}/functions/v1/billing/credits/consume`, "POST", {
      apikey: anonKey,
      Authorization: `Bearer ${f.owner.token}`,
      "Content-Type": "application/json",
    }, utf8(body));
    assert.equal(answer.status, 400, `${body}: ${JSON.stringify(answer.body)}`);
    assert.equal((answer.body as { error: { code: string } }).error.code, "invalid_request");
  }
});

// ----- the webhook ---------------------------------------------------------------------------

/** A Stripe event envelope with the marker this run counts its writes by. */
function event(runTag: string, overrides: Record<string, unknown> = {}) {
  return {
    id: `evt_property${crypto.randomUUID().replaceAll("-", "").slice(0, 16)}`,
    object: "event",
    type: "invoice.paid",
    created: Math.floor(Date.now() / 1000),
    livemode: false,
    api_version: "2026-10-28.endive",
    data: { object: { id: "in_property", object: "invoice" } },
    x_property_run: runTag,
    ...overrides,
  };
}

/** A field of the envelope and a value it cannot take (checked by Stripe's rules, not our schema). */
const envelopeFault = fc.oneof(
  nastyValue.filter((v) => !(typeof v === "string" && /^evt_[A-Za-z0-9_]+$/.test(v))).map((v) => ({ id: v })),
  nastyValue.filter((v) => !(typeof v === "string" && /^[a-z0-9_]+(\.[a-z0-9_]+)*$/.test(v) && v.length <= 100)).map((v) => ({ type: v })),
  nastyValue.filter((v) => !(typeof v === "number" && Number.isInteger(v) && v >= 0 && v < 253_402_300_800)).map((v) => ({ created: v })),
  nastyValue.filter((v) => typeof v !== "boolean").map((v) => ({ livemode: v })),
  nastyValue.filter((v) => v === null || typeof v !== "object" || Array.isArray(v)).map((v) => ({ data: v })),
  nastyValue.filter((v) => v === null || typeof v !== "object" || Array.isArray(v)).map((v) => ({ data: { object: v } })),
  nastyValue.filter((v) => typeof v !== "string" && v !== undefined).map((v) => ({ data: { object: { id: v, object: "invoice" } } })),
  nastyValue.map((v) => ({ type: "customer.subscription.updated", data: { object: { object: "subscription", metadata: { note: v } } } })),
  deepNesting.map((v) => ({ data: { object: { id: "in_deep", object: "invoice", lines: v } } })),
);

test("stripe-webhook: generated bad deliveries get a 4xx with the envelope and store nothing", async () => {
  const f = await fixtures;
  const runTag = `run_${crypto.randomUUID()}`;
  const before = await writes(f.organizationId, runTag);
  const delivery = fc.oneof(
    // Signed with our secret, but not a Stripe event we can store.
    envelopeFault.map((override) => ({ text: JSON.stringify(event(runTag, override)), signed: true as const, fault: `envelope ${JSON.stringify(override).slice(0, 120)}` })),
    fc.tuple(escapeInjection, fc.constantFrom("type", "id", "metadata")).map(([escape, where]) => {
      const base = JSON.stringify(event(runTag, { type: "customer.updated", data: { object: { id: "cus_x", metadata: { note: "@@" } } } }));
      const text = where === "metadata" ? base.replace("@@", escape) : base.replace(`"${where}":"`, `"${where}":"${escape}`);
      return { text, signed: true as const, fault: `${escape} in ${where}` };
    }),
    fc.constantFrom("{", "", "[]", "null", '"evt"', "1e400", "{\"id\":").map((text) => ({ text, signed: true as const, fault: "signed text that is not an event object" })),
    // Not signed by Stripe: no header, garbage, a signature for another body, a stale one.
    fc.tuple(nastyString, fc.constantFrom("none", "garbage", "other body", "stale")).map(([noise, how]) => ({
      text: JSON.stringify(event(runTag, { data: { object: { id: "in_x", note: noise.isWellFormed() ? noise : "x" } } })),
      signed: how as "none" | "garbage" | "other body" | "stale",
      fault: `signature: ${how}`,
    })),
  );
  await fc.assert(
    fc.asyncProperty(delivery, fc.constantFrom("POST", "POST", "POST", "GET", "PUT"), async (d, method) => {
      const headers: Record<string, string> = { "Content-Type": "application/json" };
      if (d.signed === true) headers["Stripe-Signature"] = await sign(d.text);
      else if (d.signed === "garbage") headers["Stripe-Signature"] = "t=1,v1=deadbeef";
      else if (d.signed === "other body") headers["Stripe-Signature"] = await sign(`${d.text} `);
      else if (d.signed === "stale") headers["Stripe-Signature"] = await sign(d.text, { timestamp: Math.floor(Date.now() / 1000) - 3_600 });
      const answer = await send(webhookUrl, method, headers, utf8(d.text));
      checkAnswer(answer.status, answer.body, `${method} webhook (${d.fault})`);
    }),
    { seed, numRuns: WEBHOOK_RUNS, verbose: 1 },
  );
  assert.deepEqual(await writes(f.organizationId, runTag), before, "no delivery stored an event or changed anything");
});
