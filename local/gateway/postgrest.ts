/**
 * `/rest/v1`: the subset of PostgREST that supabase-js sends for this product. Every request
 * runs in its own transaction as the JWT's role, with the request settings PostgREST sets
 * (`role`, `request.jwt.claims`, `request.method`, `request.path`, `request.headers`,
 * `search_path`), so RLS, grants and `auth.uid()` behave exactly as on hosted Supabase.
 */
import type pg from "pg";
import { bearerToken, verifyToken } from "./keys.ts";
import { runPipeline, type Statement, type StatementResult } from "./pipeline.ts";
import { fromDatabaseError, postgrestError, PostgrestHttpError, unsupported } from "./postgrest-errors.ts";
import {
  Params,
  parseFilters,
  parseNonNegativeInteger,
  parseOrder,
  parseSelect,
  requestedRange,
} from "./postgrest-query.ts";
import { EXPOSED_SCHEMA, quoteIdent, SchemaCache, type ExposedFunction } from "./schema-cache.ts";
import { hasLoneSurrogate } from "./text.ts";

export interface PostgrestOptions {
  /** Pool of connections logged in as `authenticator`. */
  pool: pg.Pool;
  jwtSecret: string;
  /** PostgREST's db-max-rows (supabase/config.toml `api.max_rows`). */
  maxRows?: number;
  /** The extra search path of supabase/config.toml (`api.extra_search_path`). */
  extraSearchPath?: string[];
}

interface Caller {
  role: string;
  claims: Record<string, unknown>;
}

const JSON_TYPE = "application/json; charset=utf-8";
const OBJECT_TYPE = "application/vnd.pgrst.object+json; charset=utf-8";

function errorResponse(error: PostgrestHttpError): Response {
  return new Response(JSON.stringify(error.body), {
    status: error.status,
    headers: { "Content-Type": JSON_TYPE, ...error.headers },
  });
}

/** The role and claims of a request, from its bearer token (or its apikey, as Kong forwards it). */
async function authenticate(request: Request, secret: string): Promise<Caller> {
  const token = bearerToken(request.headers.get("authorization") ?? undefined) ?? request.headers.get("apikey") ?? undefined;
  if (!token) {
    throw postgrestError(401, "PGRST302", "No API key found in request", null, "No `apikey` request header or url param was found.");
  }
  const verified = await verifyToken(token, secret);
  if (!verified.ok) {
    throw new PostgrestHttpError(
      401,
      verified.reason === "expired"
        ? { code: "PGRST303", message: "JWT expired", details: null, hint: null }
        : { code: "PGRST301", message: "JWT could not be decoded", details: verified.message, hint: null },
      { "WWW-Authenticate": `Bearer error="invalid_token", error_description="${verified.reason === "expired" ? "JWT expired" : "JWT invalid"}"` },
    );
  }
  const role = typeof verified.claims.role === "string" && verified.claims.role !== "" ? verified.claims.role : "anon";
  return { role, claims: verified.claims };
}

type Preferences = { count?: "exact" | "planned" | "estimated"; other: string[] };

function preferences(request: Request): Preferences {
  const result: Preferences = { other: [] };
  for (const item of (request.headers.get("prefer") ?? "").split(",")) {
    const pref = item.trim();
    if (pref === "") continue;
    const count = /^count=(exact|planned|estimated)$/.exec(pref);
    if (count) result.count = count[1] as Preferences["count"];
    else result.other.push(pref);
  }
  return result;
}

/** What the client accepts: an array (default) or a single object; null stripping. */
function acceptedShape(request: Request): { single: boolean; stripNulls: boolean } {
  const accept = (request.headers.get("accept") ?? "").toLowerCase();
  if (accept === "" || accept.includes("*/*")) return { single: false, stripNulls: false };
  const stripNulls = accept.includes("nulls=stripped");
  if (accept.includes("application/vnd.pgrst.object+json")) return { single: true, stripNulls };
  if (accept.includes("application/json") || accept.includes("application/vnd.pgrst.array+json")) {
    return { single: false, stripNulls };
  }
  throw postgrestError(406, "PGRST107", `None of these media types are available: ${accept}`);
}

/** Deeper than any argument this product takes, and well inside what Postgres parses. */
const MAX_ARGUMENT_DEPTH = 256;

/**
 * Refuses RPC arguments Postgres would not receive as sent: a lone surrogate (UTF-8 turns it
 * into U+FFFD, so two idempotency keys differing only there would become one key) and nesting
 * deep enough to exhaust the server's stack. Iterative, so the check itself cannot overflow.
 */
function checkArguments(args: Record<string, unknown>): void {
  const pending: Array<[unknown, number]> = [[args, 0]];
  while (pending.length > 0) {
    const [value, depth] = pending.pop()!;
    if (typeof value === "string") {
      if (hasLoneSurrogate(value)) {
        throw postgrestError(400, "22023", "invalid Unicode in a function argument: a lone UTF-16 surrogate", "Text must be valid Unicode; it would otherwise be stored as U+FFFD.");
      }
    } else if (value !== null && typeof value === "object") {
      if (depth >= MAX_ARGUMENT_DEPTH) {
        throw postgrestError(400, "22023", `a function argument is nested too deeply (max ${MAX_ARGUMENT_DEPTH} levels)`);
      }
      for (const [key, child] of Object.entries(value)) pending.push([key, depth + 1], [child, depth + 1]);
    }
  }
}

/** A path segment, percent-decoded; malformed encoding is a path PostgREST cannot route. */
function decodeSegment(segment: string, subPath: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw postgrestError(404, "PGRST125", `Invalid path specified in request URL: ${subPath}`);
  }
}

function checkProfile(request: Request): void {
  const profile = request.headers.get("accept-profile") ?? request.headers.get("content-profile");
  if (profile && profile !== EXPOSED_SCHEMA) {
    throw postgrestError(406, "PGRST106", `The schema must be one of the following: ${EXPOSED_SCHEMA}`);
  }
}

function singleObject(body: string, rows: number): string {
  if (rows !== 1) {
    throw postgrestError(406, "PGRST116", "JSON object requested, multiple (or no) rows returned", `The result contains ${rows} rows`);
  }
  // body is a JSON array of exactly one element: strip the brackets without re-serialising.
  const parsed: unknown = JSON.parse(body);
  return JSON.stringify(Array.isArray(parsed) ? parsed[0] : parsed);
}

export function createPostgrest(options: PostgrestOptions) {
  const cache = new SchemaCache(options.pool);
  const maxRows = options.maxRows ?? 1000;
  const searchPath = [EXPOSED_SCHEMA, ...(options.extraSearchPath ?? ["extensions"])]
    .filter((s, i, all) => all.indexOf(s) === i)
    .map(quoteIdent)
    .join(", ");
  const typeNames = new Map<string, string | undefined>();

  /**
   * Runs the statements in a transaction set up exactly as PostgREST sets one up (BEGIN, the
   * request settings, the statements, COMMIT), pipelined into one round trip. Returns the
   * statements' results.
   */
  async function inTransaction(
    request: Request,
    path: string,
    caller: Caller,
    readOnly: boolean,
    statements: Statement[],
  ): Promise<StatementResult[]> {
    const headers: Record<string, string> = {};
    request.headers.forEach((value, key) => {
      headers[key] = value;
    });
    const client = await options.pool.connect();
    let broken: Error | undefined;
    try {
      const results = await runPipeline(client, [
        { text: readOnly ? "begin isolation level read committed read only" : "begin isolation level read committed" },
        {
          text: `select pg_catalog.set_config('search_path', $1, true),
                        pg_catalog.set_config('role', $2, true),
                        pg_catalog.set_config('request.jwt.claims', $3, true),
                        pg_catalog.set_config('request.method', $4, true),
                        pg_catalog.set_config('request.path', $5, true),
                        pg_catalog.set_config('request.headers', $6, true),
                        pg_catalog.set_config('request.cookies', '{}', true)`,
          values: [searchPath, caller.role, JSON.stringify(caller.claims), request.method, path, JSON.stringify(headers)],
        },
        ...statements,
        { text: "commit" },
      ]);
      return results.slice(2, 2 + statements.length);
    } catch (error) {
      // The pipeline stopped at the error; end the transaction it left open, if any. A
      // connection that cannot even roll back is dropped rather than returned to the pool.
      broken = await client.query("rollback").then(() => undefined, (rollbackError: Error) => rollbackError);
      throw error;
    } finally {
      client.release(broken);
    }
  }

  async function resolveType(name: string): Promise<string | undefined> {
    if (!typeNames.has(name)) {
      const { rows } = await options.pool.query<{ type: string | null }>(
        "select pg_catalog.format_type(pg_catalog.to_regtype($1), null) as type",
        [name],
      );
      typeNames.set(name, rows[0]?.type ?? undefined);
    }
    return typeNames.get(name);
  }

  async function read(request: Request, url: URL, name: string, caller: Caller): Promise<Response> {
    const relation = await cache.relation(name);
    if (!relation) {
      throw postgrestError(404, "PGRST205", `Could not find the table '${EXPOSED_SCHEMA}.${name}' in the schema cache`);
    }
    const shape = acceptedShape(request);
    const prefs = preferences(request);
    if (prefs.count === "planned") throw unsupported("Prefer: count=planned");
    const query = url.searchParams;
    const params = new Params();
    const columns = await parseSelect(relation, query.get("select"), resolveType);
    const where = parseFilters(relation, query, params);
    const order = parseOrder(relation, query.get("order"));
    const range = requestedRange(
      request.headers.get("range") ?? undefined,
      parseNonNegativeInteger("limit", query.get("limit")),
      parseNonNegativeInteger("offset", query.get("offset")),
    );
    const limit = Math.min(range.to === undefined ? maxRows : range.to - range.from + 1, maxRows);
    const from = `${quoteIdent(EXPOSED_SCHEMA)}.${quoteIdent(relation.name)}`;
    const whereSql = where.length ? ` where ${where.join(" and ")}` : "";
    const countParams = [...params.values];
    const rows = `select ${columns} from ${from}${whereSql}${order ? ` order by ${order}` : ""} limit ${params.add(limit)} offset ${params.add(range.from)}`;
    const aggregate = shape.stripNulls ? "json_strip_nulls(coalesce(json_agg(_r), '[]'))" : "coalesce(json_agg(_r), '[]')";
    const sql = `select ${aggregate}::text as body, count(*)::int as rows from (${rows}) _r`;

    const statements: Statement[] = [{ text: sql, values: params.values }];
    if (prefs.count) statements.push({ text: `select count(*) as total from ${from}${whereSql}`, values: countParams });
    const [result, counted] = await inTransaction(request, url.pathname, caller, true, statements);
    const body = result?.rows[0]?.[0] ?? "[]";
    const returned = Number(result?.rows[0]?.[1] ?? 0);
    const total = counted ? Number(counted.rows[0]?.[0] ?? 0) : undefined;

    if (total !== undefined && range.from > 0 && range.from >= total && returned === 0) {
      throw postgrestError(416, "PGRST103", "Requested range not satisfiable", `An offset of ${range.from} was requested, but there are only ${total} rows.`);
    }
    const contentRange = returned === 0 ? `*/${total ?? "*"}` : `${range.from}-${range.from + returned - 1}/${total ?? "*"}`;
    const partial = total !== undefined && returned > 0 && (range.from > 0 || range.from + returned < total);
    const payload = shape.single ? singleObject(body, returned) : body;
    return new Response(request.method === "HEAD" ? null : payload, {
      status: partial ? 206 : 200,
      headers: { "Content-Type": shape.single ? OBJECT_TYPE : JSON_TYPE, "Content-Range": contentRange },
    });
  }

  /** Picks the overload whose named arguments match the ones given (PostgREST's rule). */
  function chooseFunction(name: string, candidates: ExposedFunction[], given: string[]): ExposedFunction {
    const matches = candidates.filter(
      (fn) =>
        given.every((arg) => fn.args.some((a) => a.name === arg)) &&
        fn.args.every((a) => a.hasDefault || given.includes(a.name)),
    );
    if (matches.length === 1) return matches[0]!;
    const signature = `${EXPOSED_SCHEMA}.${name}(${[...given].sort().join(", ")})`;
    if (matches.length > 1) {
      throw postgrestError(300, "PGRST203", `Could not choose the best candidate function between: ${matches.map((m) => `${EXPOSED_SCHEMA}.${m.name}(${m.args.map((a) => `${a.name} => ${a.type}`).join(", ")})`).join(", ")}`);
    }
    throw postgrestError(
      404,
      "PGRST202",
      `Could not find the function ${signature} in the schema cache`,
      `Searched for the function ${EXPOSED_SCHEMA}.${name} with parameters ${given.length ? [...given].sort().join(", ") : "(none)"}, but no matches were found in the schema cache.`,
    );
  }

  /** A JSON argument as the text Postgres casts to the argument's type. */
  function argumentValue(value: unknown, type: string): unknown {
    if (value === null || value === undefined) return null;
    if (type === "json" || type === "jsonb") return JSON.stringify(value);
    if (Array.isArray(value) && type.endsWith("[]")) return value;
    if (typeof value === "object") return JSON.stringify(value);
    return String(value);
  }

  async function rpc(request: Request, url: URL, name: string, caller: Caller): Promise<Response> {
    const shape = acceptedShape(request);
    let args: Record<string, unknown>;
    if (request.method === "POST") {
      const prefs = preferences(request);
      if (prefs.other.some((p) => p.startsWith("params="))) throw unsupported(`Prefer: ${prefs.other.join(", ")}`);
      const text = await request.text();
      let parsed: unknown;
      try {
        parsed = text.trim() === "" ? {} : JSON.parse(text);
      } catch {
        throw postgrestError(400, "PGRST102", "Empty or invalid json");
      }
      if (Array.isArray(parsed)) throw unsupported("calling a function with a JSON array (bulk call)");
      if (parsed === null || typeof parsed !== "object") throw postgrestError(400, "PGRST102", "Empty or invalid json");
      args = parsed as Record<string, unknown>;
      for (const key of url.searchParams.keys()) throw unsupported(`query parameter "${key}" on a function call`);
      checkArguments(args);
    } else {
      args = {};
      for (const [key, value] of url.searchParams) args[key] = value;
    }
    const candidates = await cache.functionsNamed(name);
    const fn = chooseFunction(name, candidates, Object.keys(args));
    if (request.method !== "POST" && fn.volatility === "v") {
      throw postgrestError(405, "25006", "cannot execute a volatile function in a read-only transaction (GET)", null, "Call it with POST.");
    }
    const params = new Params();
    const namedArgs = fn.args
      .filter((a) => a.name in args)
      .map((a) => `${quoteIdent(a.name)} := ${params.add(argumentValue(args[a.name], a.type))}::${a.type}`)
      .join(", ");
    const call = `${quoteIdent(EXPOSED_SCHEMA)}.${quoteIdent(fn.name)}(${namedArgs})`;
    let sql: string;
    if (fn.returnsVoid) sql = `select ${call}`;
    else if (fn.returnsSet) sql = `select coalesce(json_agg(_r), '[]')::text as body, count(*)::int as rows from ${call} _r`;
    else if (fn.returnsComposite) sql = `select to_json(_r)::text as body, 1 as rows from ${call} _r`;
    else sql = `select to_json(${call})::text as body, 1 as rows`;

    const [result] = await inTransaction(request, url.pathname, caller, request.method !== "POST", [{ text: sql, values: params.values }]);
    if (fn.returnsVoid) return new Response(null, { status: 204 });
    let body = result?.rows[0]?.[0] ?? "null";
    if (shape.single && fn.returnsSet) body = singleObject(body, Number(result?.rows[0]?.[1] ?? 0));
    return new Response(request.method === "HEAD" ? null : body, {
      status: 200,
      headers: { "Content-Type": shape.single ? OBJECT_TYPE : JSON_TYPE },
    });
  }

  /** Handles a request whose path (after `/rest/v1`) is `subPath`. */
  async function handle(request: Request, subPath: string): Promise<Response> {
    let role = "anon";
    try {
      const url = new URL(request.url);
      const caller = await authenticate(request, options.jwtSecret);
      role = caller.role;
      checkProfile(request);
      const segments = subPath.split("/").filter(Boolean).map((segment) => decodeSegment(segment, subPath));
      if (segments.length === 2 && segments[0] === "rpc") {
        if (!["GET", "HEAD", "POST"].includes(request.method)) {
          throw postgrestError(405, "PGRST117", `Unsupported HTTP method: ${request.method}`);
        }
        return await rpc(request, url, segments[1]!, caller);
      }
      if (segments.length !== 1) {
        if (segments.length === 0) throw unsupported("the OpenAPI root document");
        throw postgrestError(404, "PGRST125", `Invalid path specified in request URL: ${subPath}`);
      }
      if (request.method === "GET" || request.method === "HEAD") return await read(request, url, segments[0]!, caller);
      if (["POST", "PATCH", "PUT", "DELETE"].includes(request.method)) {
        return errorResponse(
          postgrestError(405, "PGRST117", `Unsupported HTTP method: ${request.method}`, "The local gateway serves table reads only; the product writes through functions.", null),
        );
      }
      throw postgrestError(405, "PGRST117", `Unsupported HTTP method: ${request.method}`);
    } catch (error) {
      return errorResponse(fromDatabaseError(error, role));
    }
  }

  return { handle, cache };
}
