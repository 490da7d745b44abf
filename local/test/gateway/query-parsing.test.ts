/**
 * The pure parts of the REST gateway, without a database: the PostgREST grammar pieces and
 * how values become parameters.
 */
import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { toParameterText } from "../../gateway/pipeline.ts";
import { Params, parseFilters, parseOrder, requestedRange, splitTopLevel } from "../../gateway/postgrest-query.ts";
import { PostgrestHttpError } from "../../gateway/postgrest-errors.ts";
import { parseFunctionSections } from "../../gateway/edge-functions.ts";
import type { Relation } from "../../gateway/schema-cache.ts";

const relation: Relation = { name: "t", columns: new Map([["a", "integer"], ["b", "text"], ["weird \"name", "text"]]) };

function rejects(run: () => unknown, status: number, code?: string): void {
  assert.throws(run, (error: unknown) => error instanceof PostgrestHttpError && error.status === status && (!code || error.body.code === code));
}

describe("PostgREST grammar", () => {
  test("top-level splitting respects parentheses and double quotes", () => {
    assert.deepEqual(splitTopLevel('a.eq.1,and(b.eq.2,c.eq.3),d.in.("x,y",z)'), ["a.eq.1", "and(b.eq.2,c.eq.3)", 'd.in.("x,y",z)']);
  });

  test("filters become quoted identifiers and bound parameters only", () => {
    const params = new Params();
    const query = new URLSearchParams([["a", "gte.5"], ["b", "in.(x,\"y,z\")"], ["or", "(a.is.null,b.not.ilike.*Q*)"]]);
    assert.deepEqual(parseFilters(relation, query, params), [
      '"a" >= $1',
      '"b" = any($2)',
      '("a" is null or not ("b"::text ilike $3))',
    ]);
    assert.deepEqual(params.values, ["5", ["x", "y,z"], "%Q%"]);
  });

  test("an unknown column, an unknown operator and an embedded filter are refused", () => {
    rejects(() => parseFilters(relation, new URLSearchParams([["nope", "eq.1"]]), new Params()), 400, "42703");
    rejects(() => parseFilters(relation, new URLSearchParams([["a", "eqq.1"]]), new Params()), 400, "PGRST100");
    rejects(() => parseFilters(relation, new URLSearchParams([["a", "cs.{1}"]]), new Params()), 400, "PGRST127");
    rejects(() => parseFilters(relation, new URLSearchParams([["rel.a", "eq.1"]]), new Params()), 400, "PGRST127");
  });

  test("order terms with direction and nulls placement", () => {
    assert.equal(parseOrder(relation, "a.desc.nullslast,b"), '"a" desc nulls last, "b" asc');
    rejects(() => parseOrder(relation, "a.sideways"), 400, "PGRST100");
  });

  test("Range header and limit/offset intersect", () => {
    assert.deepEqual(requestedRange("0-9", 5, 2), { from: 2, to: 6 });
    assert.deepEqual(requestedRange("items=10-", undefined, undefined), { from: 10, to: undefined });
    rejects(() => requestedRange("9-1", undefined, undefined), 416, "PGRST103");
  });
});

describe("parameters", () => {
  test("arrays become Postgres array literals with quotes and backslashes escaped", () => {
    assert.equal(toParameterText(["a", 'b"c', "d\\e", null]), '{"a","b\\"c","d\\\\e",NULL}');
    assert.equal(toParameterText({ x: 1 }), '{"x":1}');
    assert.equal(toParameterText(null), null);
    assert.equal(toParameterText(12), "12");
  });
});

describe("config.toml", () => {
  test("function sections give verify_jwt and entrypoint; other tables are ignored", () => {
    const sections = parseFunctionSections(`
[api]
port = 54321
[functions.billing]
verify_jwt = true # comment
entrypoint = "../functions/billing/index.ts"
[functions."stripe-webhook"]
verify_jwt = false
`);
    assert.deepEqual(Object.fromEntries(sections), {
      billing: { verify_jwt: true, entrypoint: "../functions/billing/index.ts" },
      "stripe-webhook": { verify_jwt: false },
    });
  });

  test("a config.toml that is not TOML is an error, not a silently ignored section", () => {
    assert.throws(() => parseFunctionSections("[functions.billing\nverify_jwt = "));
  });
});
