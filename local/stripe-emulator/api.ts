/**
 * The `/v1` request pipeline every resource's routes run through: Stripe's request encoding,
 * authentication, the API version check, idempotency keys, `expand[]`, and the error
 * envelope. The routes themselves live with their resource in `resources/`; this file also
 * holds what their lists and searches share (pagination, the search query subset, metadata
 * updates). Parameters the emulator does not implement are rejected with a 400 naming them
 * (zod `strict` schemas), never silently ignored.
 */
import { createHash } from "node:crypto";
import { type Context, type Hono } from "hono";
import Stripe from "stripe";
import { z } from "zod";
import { invalidRequest, resourceMissing, StripeApiError } from "./errors.ts";
import { decodeForm, expand, type FormObject, metadata, pagination, str } from "./form.ts";
import { newId, snapshot, type Store } from "./store.ts";

export type Json = { [key: string]: unknown };
/** A route handler: decoded parameters in, the Stripe object to answer with out (or a thrown `StripeApiError`). */
export type Handler = (params: FormObject, c: Context) => object;

/** What a resource needs to add its routes and pages. */
export interface Api {
  /** Adds a `/v1` route run through the shared pipeline. */
  route(method: "GET" | "POST" | "DELETE", path: string, handler: Handler): void;
  /** The app itself, for hosted pages and emulator-only endpoints. */
  app: Hono;
}

// ---------------------------------------------------------------------------------------------
// What lists, searches and updates share
// ---------------------------------------------------------------------------------------------

/** Merges Stripe-style metadata updates: an empty value deletes the key; null clears everything. */
export function mergeMetadata(current: Stripe.Metadata | null, update: Record<string, string> | null | undefined): Stripe.Metadata {
  if (update === null) return {};
  const merged: Stripe.Metadata = { ...(current ?? {}) };
  for (const [key, value] of Object.entries(update ?? {})) {
    if (value === "") delete merged[key];
    else merged[key] = value;
  }
  return merged;
}

/** `metadata=""` unsets every key (null here); anything else must be the record form. */
export const metadataParam = z.union([metadata, z.literal("")]).optional().transform((v) => (v === "" ? null : v));

/** A Stripe list page, newest first, with `starting_after` / `ending_before` cursors. */
export function listOf<T extends { id: string }>(items: T[], url: string, params: { limit?: number; starting_after?: string; ending_before?: string }): Stripe.ApiList<T> {
  // Newest first, as Stripe lists.
  let ordered = [...items].reverse();
  if (params.starting_after) {
    const index = ordered.findIndex((item) => item.id === params.starting_after);
    if (index < 0) throw resourceMissing("object", params.starting_after, "starting_after");
    ordered = ordered.slice(index + 1);
  } else if (params.ending_before) {
    const index = ordered.findIndex((item) => item.id === params.ending_before);
    if (index < 0) throw resourceMissing("object", params.ending_before, "ending_before");
    ordered = ordered.slice(0, index);
    const limit = params.limit ?? 10;
    return { object: "list", data: ordered.slice(-limit), has_more: ordered.length > limit, url };
  }
  const limit = params.limit ?? 10;
  return { object: "list", data: ordered.slice(0, limit), has_more: ordered.length > limit, url };
}

export type SearchClause = { field: string; key?: string; value: string };

/**
 * The search query language, the part the product uses: clauses `field:'value'` or
 * `metadata['key']:'value'` joined by `AND`. Anything else is a 400, not a wrong answer.
 */
export function parseSearchQuery(query: string, fields: readonly string[]): SearchClause[] {
  const clauses = query.split(/\s+AND\s+/);
  return clauses.map((clause) => {
    const meta = /^metadata\[(['"])(.+?)\1\]:(['"])(.*)\3$/.exec(clause.trim());
    if (meta) return { field: "metadata", key: meta[2] as string, value: meta[4] as string };
    const plain = /^([a-z_]+):(['"])(.*)\2$/.exec(clause.trim());
    if (plain && fields.includes(plain[1] as string)) return { field: plain[1] as string, value: plain[3] as string };
    throw invalidRequest(
      `The Stripe emulator supports search clauses metadata['key']:'value'${fields.map((f) => ` and ${f}:'value'`).join("")} joined by AND; it cannot run: ${clause}`,
      { param: "query" },
    );
  });
}

export function matchesSearch(metadata: Stripe.Metadata | null, fields: Record<string, unknown>, clauses: SearchClause[]): boolean {
  return clauses.every((clause) =>
    clause.field === "metadata" ? (metadata ?? {})[clause.key ?? ""] === clause.value : String(fields[clause.field] ?? "") === clause.value,
  );
}

export function searchResult<T>(data: T[], url: string, limit = 10): Json {
  return { object: "search_result", data: data.slice(0, limit), has_more: data.length > limit, next_page: null, url, total_count: data.length };
}

export const searchParams = z.object({ query: str, limit: pagination.limit, page: z.string().optional(), expand }).strict();

// ---------------------------------------------------------------------------------------------
// expand[]
// ---------------------------------------------------------------------------------------------

function lookupById(store: Store, id: string): object | undefined {
  const prefix = id.slice(0, id.indexOf("_"));
  const maps: Record<string, Map<string, object>> = {
    cus: store.customers,
    prod: store.products,
    price: store.prices,
    cs: store.checkoutSessions,
    sub: store.subscriptions,
    in: store.invoices,
    pi: store.paymentIntents,
    ch: store.charges,
    re: store.refunds,
    pm: store.paymentMethods,
  };
  return maps[prefix]?.get(id);
}

function expandPath(store: Store, node: unknown, path: string[], full: string): void {
  if (node === null || typeof node !== "object") return;
  const [head, ...rest] = path;
  if (head === undefined) return;
  const record = node as Record<string, unknown>;
  if (head === "data" && Array.isArray(record.data)) {
    for (const entry of record.data) expandPath(store, entry, rest, full);
    return;
  }
  if (head === "payments" && record.object === "invoice" && !(head in record)) {
    // Includable on every invoice: an invoice nobody has tried to charge has no payments yet.
    record.payments = { object: "list", data: [], has_more: false, url: `/v1/invoice_payments?invoice=${String(record.id)}` };
    return;
  }
  if (!(head in record)) throw invalidRequest(`This property cannot be expanded (${full}).`, { param: "expand" });
  const value = record[head];
  if (rest.length === 0) {
    if (typeof value === "string") {
      const found = lookupById(store, value);
      if (!found) throw invalidRequest(`This property cannot be expanded (${full}).`, { param: "expand" });
      record[head] = snapshot(found);
    } else if (value !== null && typeof value !== "object") {
      throw invalidRequest(`This property cannot be expanded (${full}).`, { param: "expand" });
    }
    return;
  }
  if (typeof value === "string") {
    const found = lookupById(store, value);
    if (found) record[head] = snapshot(found);
  }
  expandPath(store, record[head], rest, full);
}

function applyExpand(store: Store, body: object, expansions: unknown): object {
  if (!Array.isArray(expansions) || expansions.length === 0) return body;
  const copy = snapshot(body);
  for (const path of expansions) if (typeof path === "string") expandPath(store, copy, path.split("."), path);
  return copy;
}

// ---------------------------------------------------------------------------------------------
// The pipeline
// ---------------------------------------------------------------------------------------------

async function readParams(c: Context): Promise<FormObject> {
  if (c.req.method === "GET" || c.req.method === "DELETE") {
    const url = new URL(c.req.url);
    const fromQuery = decodeForm(url.searchParams);
    if (c.req.method === "DELETE") {
      const text = await c.req.text();
      return { ...fromQuery, ...decodeForm(new URLSearchParams(text)) };
    }
    return fromQuery;
  }
  const type = c.req.header("content-type") ?? "";
  const text = await c.req.text();
  if (text && !type.includes("application/x-www-form-urlencoded")) {
    throw invalidRequest("Invalid request: Stripe's API takes application/x-www-form-urlencoded bodies.");
  }
  return decodeForm(new URLSearchParams(text));
}

function authenticate(c: Context): void {
  const header = c.req.header("authorization") ?? "";
  const key = header.startsWith("Bearer ") ? header.slice(7) : header.startsWith("Basic ") ? Buffer.from(header.slice(6), "base64").toString().split(":")[0] : "";
  if (!key) {
    throw new StripeApiError(401, { type: "invalid_request_error", message: "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY')." });
  }
  if (!/^(sk|rk)_test_/.test(key ?? "")) {
    throw new StripeApiError(401, { type: "invalid_request_error", code: "api_key_expired", message: `Invalid API Key provided: ${(key ?? "").slice(0, 8)}****. The Stripe emulator accepts test-mode keys (sk_test_...) only.` });
  }
}

/**
 * Objects are shaped for one API version (the pinned one of the `stripe` package here); a
 * client asking for another would get shapes it does not expect, so it is refused.
 */
function checkVersion(c: Context): void {
  const version = c.req.header("stripe-version");
  if (version && version !== Stripe.API_VERSION) {
    throw invalidRequest(`The Stripe emulator serves API version ${Stripe.API_VERSION} only; this request asked for ${version}.`, { param: "Stripe-Version" });
  }
}

/** The shared pipeline on a Hono app: what resources add their routes through. */
export function createApi(app: Hono, store: Store): Api {
  /**
   * Runs a handler; `replayable` is false for parameter validation failures, which Stripe does
   * not store under the idempotency key (the endpoint never started executing).
   */
  function run(handler: Handler, params: FormObject, c: Context, idempotencyKey: string | null, requestId: string): { status: number; body: string; replayable: boolean } {
    store.currentRequest = { id: requestId, idempotency_key: idempotencyKey };
    try {
      const result = handler(params, c);
      return { status: 200, body: JSON.stringify(applyExpand(store, result, params.expand), null, 2), replayable: true };
    } catch (error) {
      if (error instanceof StripeApiError) {
        const validation = error.status === 400 && (error.body.code ?? "").startsWith("parameter_");
        return { status: error.status, body: JSON.stringify(error.toJSON(), null, 2), replayable: !validation };
      }
      throw error;
    } finally {
      store.currentRequest = null;
    }
  }

  function route(method: "GET" | "POST" | "DELETE", path: string, handler: Handler): void {
    app.on(method, path, async (c) => {
      try {
        authenticate(c);
        checkVersion(c);
        const params = await readParams(c);
        const idempotencyKey = c.req.header("idempotency-key") ?? null;
        const requestId = newId("req");
        if (method === "POST" && idempotencyKey) {
          const fingerprint = createHash("sha256").update(`${method} ${new URL(c.req.url).pathname} ${JSON.stringify(params)}`).digest("hex");
          const saved = store.idempotency.get(idempotencyKey);
          if (saved) {
            if (saved.fingerprint !== fingerprint) {
              throw new StripeApiError(400, {
                type: "idempotency_error",
                message: `Keys for idempotent requests can only be used with the same parameters they were first used with. Try using a key other than '${idempotencyKey}' if you meant to execute a different request.`,
              });
            }
            return new Response(saved.body, {
              status: saved.status,
              headers: { "content-type": "application/json", "idempotent-replayed": "true", "idempotency-key": idempotencyKey, "request-id": newId("req") },
            });
          }
          const { status, body, replayable } = run(handler, params, c, idempotencyKey, requestId);
          if (replayable) store.idempotency.set(idempotencyKey, { fingerprint, status, body });
          return new Response(body, { status, headers: { "content-type": "application/json", "idempotency-key": idempotencyKey, "request-id": requestId } });
        }
        const { status, body } = run(handler, params, c, null, requestId);
        return new Response(body, { status, headers: { "content-type": "application/json", "request-id": requestId } });
      } catch (error) {
        return errorResponse(error);
      }
    });
  }

  return { route, app };
}

/** Anything else under /v1 is not emulated: says so the way Stripe does for an unknown URL. Mount last. */
export function mountUnknownEndpoints(app: Hono): void {
  app.all("/v1/*", (c) =>
    errorResponse(
      new StripeApiError(404, {
        type: "invalid_request_error",
        message: `Unrecognized request URL (${c.req.method}: ${new URL(c.req.url).pathname}). The Stripe emulator does not implement this endpoint; see local/stripe-emulator/README.md.`,
      }),
    ),
  );
}

/** Turns anything thrown into Stripe's envelope; unexpected errors are a 500 `api_error`. */
export function errorResponse(error: unknown): Response {
  const apiError =
    error instanceof StripeApiError
      ? error
      : new StripeApiError(500, { type: "api_error", message: `The Stripe emulator failed: ${error instanceof Error ? error.message : String(error)}` });
  if (!(error instanceof StripeApiError)) console.error("[stripe-emulator]", error);
  return new Response(JSON.stringify(apiError.toJSON(), null, 2), { status: apiError.status, headers: { "content-type": "application/json", "request-id": newId("req") } });
}
