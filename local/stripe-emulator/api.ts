/**
 * The `/v1` REST API: the endpoints the product calls, with Stripe's request encoding,
 * authentication, idempotency keys, pagination, `expand[]`, search syntax (the subset the
 * product uses) and error envelope. Parameters the emulator does not implement are rejected
 * with a 400 naming them (zod `strict` schemas), never silently ignored.
 */
import { createHash } from "node:crypto";
import { Hono, type Context } from "hono";
import Stripe from "stripe";
import { z } from "zod";
import { type Billing, deletedCustomer, isDeleted } from "./billing.ts";
import { invalidRequest, resourceMissing, StripeApiError, unsupported } from "./errors.ts";
import { bool, decodeForm, expand, type FormObject, int, metadata, oneOf, pagination, parseParams, str } from "./form.ts";
import { buildCheckoutSession, buildPortalSession, buildPrice, buildProduct } from "./objects.ts";
import { newId, snapshot, type Store } from "./store.ts";

/** Everything a route needs. */
export interface ApiContext {
  store: Store;
  billing: Billing;
  baseUrl: () => string;
}

type Json = { [key: string]: unknown };
type Handler = (params: FormObject, c: Context) => object;

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

/** Merges Stripe-style metadata updates: an empty value deletes the key. */
function mergeMetadata(current: Stripe.Metadata | null, update: Record<string, string> | null | undefined): Stripe.Metadata {
  if (update === null) return {};
  const merged: Stripe.Metadata = { ...(current ?? {}) };
  for (const [key, value] of Object.entries(update ?? {})) {
    if (value === "") delete merged[key];
    else merged[key] = value;
  }
  return merged;
}

/** `metadata=""` unsets every key (null here); anything else must be the record form. */
const metadataParam = z.union([metadata, z.literal("")]).optional().transform((v) => (v === "" ? null : v));

function listOf<T extends { id: string }>(items: T[], url: string, params: { limit?: number; starting_after?: string; ending_before?: string }): Stripe.ApiList<T> {
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

/**
 * The search query language, the part the product uses: clauses `field:'value'` or
 * `metadata['key']:'value'` joined by `AND`. Anything else is a 400, not a wrong answer.
 */
function parseSearchQuery(query: string, fields: readonly string[]): Array<{ field: string; key?: string; value: string }> {
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

function matchesSearch(metadata: Stripe.Metadata | null, fields: Record<string, unknown>, clauses: ReturnType<typeof parseSearchQuery>): boolean {
  return clauses.every((clause) =>
    clause.field === "metadata" ? (metadata ?? {})[clause.key ?? ""] === clause.value : String(fields[clause.field] ?? "") === clause.value,
  );
}

function searchResult<T>(data: T[], url: string, limit = 10): Json {
  return { object: "search_result", data: data.slice(0, limit), has_more: data.length > limit, next_page: null, url, total_count: data.length };
}

const searchParams = z.object({ query: str, limit: pagination.limit, page: z.string().optional(), expand }).strict();

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
// The app
// ---------------------------------------------------------------------------------------------

/** Builds the `/v1` routes on a Hono app. */
export function mountApi(app: Hono, ctx: ApiContext): void {
  const { store, billing } = ctx;

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

  // ----- customers -------------------------------------------------------------------------

  const customerFields = { email: str.optional(), name: str.optional(), description: str.optional(), phone: str.optional(), metadata: metadataParam, expand };

  route("POST", "/v1/customers", (raw) => {
    const p = parseParams(z.object(customerFields).strict(), raw);
    return billing.createCustomer({ email: p.email ?? null, name: p.name ?? null, description: p.description ?? null, phone: p.phone ?? null, metadata: mergeMetadata({}, p.metadata) });
  });

  route("GET", "/v1/customers/search", (raw) => {
    const p = parseParams(searchParams, raw);
    const clauses = parseSearchQuery(p.query, ["email", "name", "phone"]);
    const found = [...store.customers.values()].reverse().filter((c) => !isDeleted(c) && matchesSearch(c.metadata, { email: c.email, name: c.name, phone: c.phone }, clauses));
    return searchResult(found, "/v1/customers/search", p.limit);
  });

  route("GET", "/v1/customers", (raw) => {
    const p = parseParams(z.object({ ...pagination, email: z.string().optional() }).strict(), raw);
    const all = [...store.customers.values()].filter((c) => !isDeleted(c) && (p.email === undefined || c.email === p.email));
    return listOf(all, "/v1/customers", p);
  });

  route("GET", "/v1/customers/:id", (raw, c) => {
    parseParams(z.object({ expand }).strict(), raw);
    const id = c.req.param("id") ?? "";
    const stored = store.customers.get(id);
    return stored && isDeleted(stored) ? deletedCustomer(id) : billing.customer(id);
  });

  route("DELETE", "/v1/customers/:id", (raw, c) => {
    parseParams(z.object({}).strict(), raw);
    return billing.deleteCustomer(c.req.param("id") ?? "");
  });

  route("POST", "/v1/customers/:id", (raw, c) => {
    const p = parseParams(z.object(customerFields).strict(), raw);
    const customer = billing.customer(c.req.param("id") ?? "");
    const previous: Json = {};
    for (const key of ["email", "name", "description", "phone"] as const) {
      const value = p[key];
      if (value !== undefined && value !== customer[key]) {
        previous[key] = customer[key] ?? null;
        customer[key] = value;
      }
    }
    if (p.metadata !== undefined) {
      previous.metadata = { ...customer.metadata };
      customer.metadata = mergeMetadata(customer.metadata, p.metadata);
    }
    if (Object.keys(previous).length) store.emit("customer.updated", customer, { customer: customer.id, previousAttributes: previous });
    return customer;
  });

  // ----- products and prices -----------------------------------------------------------------

  route("POST", "/v1/products", (raw) => {
    const p = parseParams(z.object({ id: str.optional(), name: str, description: str.optional(), active: bool.optional(), metadata: metadataParam, expand }).strict(), raw);
    const id = p.id ?? newId("prod");
    if (store.products.has(id)) throw invalidRequest(`Product already exists.`, { code: "resource_already_exists", param: "id" });
    const product = buildProduct({ id, created: store.now(), name: p.name, description: p.description ?? null, active: p.active ?? true, metadata: mergeMetadata({}, p.metadata) });
    store.products.set(id, product);
    store.emit("product.created", product);
    return product;
  });

  route("GET", "/v1/products", (raw) => {
    const p = parseParams(z.object({ ...pagination, active: bool.optional(), ids: z.array(str).optional() }).strict(), raw);
    const all = [...store.products.values()].filter((x) => (p.active === undefined || x.active === p.active) && (!p.ids || p.ids.includes(x.id)));
    return listOf(all, "/v1/products", p);
  });

  route("GET", "/v1/products/:id", (raw, c) => {
    parseParams(z.object({ expand }).strict(), raw);
    const id = c.req.param("id") ?? "";
    const product = store.products.get(id);
    if (!product) throw resourceMissing("product", id);
    return product;
  });

  route("POST", "/v1/products/:id", (raw, c) => {
    const p = parseParams(z.object({ name: str.optional(), description: str.optional(), active: bool.optional(), metadata: metadataParam, default_price: str.optional(), expand }).strict(), raw);
    const id = c.req.param("id") ?? "";
    const product = store.products.get(id);
    if (!product) throw resourceMissing("product", id);
    const previous: Json = {};
    if (p.name !== undefined) { previous.name = product.name; product.name = p.name; }
    if (p.description !== undefined) { previous.description = product.description; product.description = p.description; }
    if (p.active !== undefined) { previous.active = product.active; product.active = p.active; }
    if (p.default_price !== undefined) { billing.price(p.default_price, "default_price"); previous.default_price = product.default_price ?? null; product.default_price = p.default_price; }
    if (p.metadata !== undefined) { previous.metadata = { ...product.metadata }; product.metadata = mergeMetadata(product.metadata, p.metadata); }
    product.updated = store.now();
    store.emit("product.updated", product, { previousAttributes: previous });
    return product;
  });

  const recurringParam = z
    .object({
      interval: oneOf(["day", "week", "month", "year"]),
      interval_count: int.optional(),
      trial_period_days: int.optional(),
      usage_type: z.literal("licensed").optional(),
    })
    .strict();

  route("POST", "/v1/prices", (raw) => {
    const p = parseParams(
      z
        .object({
          product: str.optional(),
          product_data: z.object({ name: str, metadata: metadataParam }).strict().optional(),
          currency: z.string().regex(/^[a-z]{3}$/, { message: "Invalid currency: must be a three-letter ISO code in lowercase" }),
          unit_amount: int,
          recurring: recurringParam.optional(),
          lookup_key: str.optional(),
          transfer_lookup_key: bool.optional(),
          nickname: str.optional(),
          active: bool.optional(),
          metadata: metadataParam,
          expand,
        })
        .strict(),
      raw,
    );
    if (!p.product && !p.product_data) throw invalidRequest("Missing required param: product.", { code: "parameter_missing", param: "product" });
    let productId = p.product;
    if (productId) {
      if (!store.products.has(productId)) throw resourceMissing("product", productId, "product");
    } else if (p.product_data) {
      const product = buildProduct({ id: newId("prod"), created: store.now(), name: p.product_data.name, description: null, active: true, metadata: mergeMetadata({}, p.product_data.metadata) });
      store.products.set(product.id, product);
      store.emit("product.created", product);
      productId = product.id;
    }
    if (p.lookup_key) {
      const holder = [...store.prices.values()].find((x) => x.lookup_key === p.lookup_key);
      if (holder) {
        if (!p.transfer_lookup_key) {
          throw invalidRequest(`A price (\`${holder.id}\`) already uses that lookup key.`, { code: "lookup_key_already_exists", param: "lookup_key" });
        }
        holder.lookup_key = null;
        store.emit("price.updated", holder, { previousAttributes: { lookup_key: p.lookup_key } });
      }
    }
    const price = buildPrice({
      id: newId("price", 24),
      created: store.now(),
      product: productId ?? "",
      currency: p.currency,
      unitAmount: p.unit_amount,
      active: p.active ?? true,
      lookupKey: p.lookup_key ?? null,
      nickname: p.nickname ?? null,
      metadata: mergeMetadata({}, p.metadata),
      recurring: p.recurring ? { interval: p.recurring.interval, intervalCount: p.recurring.interval_count ?? 1, trialPeriodDays: p.recurring.trial_period_days ?? null } : null,
    });
    store.prices.set(price.id, price);
    store.emit("price.created", price);
    return price;
  });

  route("GET", "/v1/prices", (raw) => {
    const p = parseParams(
      z
        .object({
          ...pagination,
          active: bool.optional(),
          product: str.optional(),
          currency: str.optional(),
          type: oneOf(["one_time", "recurring"]).optional(),
          lookup_keys: z.array(str).optional(),
          recurring: z.object({ interval: oneOf(["day", "week", "month", "year"]).optional() }).strict().optional(),
        })
        .strict(),
      raw,
    );
    const all = [...store.prices.values()].filter(
      (x) =>
        (p.active === undefined || x.active === p.active) &&
        (p.product === undefined || x.product === p.product) &&
        (p.currency === undefined || x.currency === p.currency) &&
        (p.type === undefined || x.type === p.type) &&
        (p.lookup_keys === undefined || (x.lookup_key !== null && p.lookup_keys.includes(x.lookup_key))) &&
        (p.recurring?.interval === undefined || x.recurring?.interval === p.recurring.interval),
    );
    return listOf(all, "/v1/prices", p);
  });

  route("GET", "/v1/prices/:id", (raw, c) => {
    parseParams(z.object({ expand }).strict(), raw);
    return billing.price(c.req.param("id") ?? "", "id");
  });

  route("POST", "/v1/prices/:id", (raw, c) => {
    const p = parseParams(z.object({ active: bool.optional(), nickname: str.optional(), lookup_key: str.optional(), transfer_lookup_key: bool.optional(), metadata: metadataParam, expand }).strict(), raw);
    const price = billing.price(c.req.param("id") ?? "", "id");
    const previous: Json = {};
    if (p.active !== undefined) { previous.active = price.active; price.active = p.active; }
    if (p.nickname !== undefined) { previous.nickname = price.nickname; price.nickname = p.nickname; }
    if (p.lookup_key !== undefined) {
      const holder = [...store.prices.values()].find((x) => x.lookup_key === p.lookup_key && x.id !== price.id);
      if (holder && !p.transfer_lookup_key) throw invalidRequest(`A price (\`${holder.id}\`) already uses that lookup key.`, { code: "lookup_key_already_exists", param: "lookup_key" });
      if (holder) holder.lookup_key = null;
      previous.lookup_key = price.lookup_key;
      price.lookup_key = p.lookup_key;
    }
    if (p.metadata !== undefined) { previous.metadata = { ...price.metadata }; price.metadata = mergeMetadata(price.metadata, p.metadata); }
    store.emit("price.updated", price, { previousAttributes: previous });
    return price;
  });

  // ----- checkout sessions ---------------------------------------------------------------------

  const lineItemParam = z
    .object({
      price: str,
      quantity: int.refine((n) => n >= 1, { message: "Invalid integer: quantity must be at least 1" }).optional(),
    })
    .strict();

  route("POST", "/v1/checkout/sessions", (raw) => {
    const p = parseParams(
      z
        .object({
          mode: oneOf(["payment", "setup", "subscription"]),
          line_items: z.array(lineItemParam).min(1, { message: "line_items must have at least one item" }),
          customer: str.optional(),
          customer_email: str.optional(),
          customer_creation: oneOf(["always", "if_required"]).optional(),
          client_reference_id: str.max(200).optional(),
          metadata: metadataParam,
          success_url: str.optional(),
          cancel_url: str.optional(),
          ui_mode: z.literal("hosted").optional(),
          payment_method_types: z.array(z.literal("card")).optional(),
          subscription_data: z.object({ trial_period_days: int.optional(), metadata: metadataParam, description: str.optional() }).strict().optional(),
          payment_intent_data: z.object({ metadata: metadataParam, description: str.optional() }).strict().optional(),
          expires_at: int.optional(), // checked below: 30 minutes to 24 hours ahead
          expand,
        })
        .strict(),
      raw,
    );
    if (p.mode === "setup") throw unsupported("Checkout Sessions in setup mode", "mode");
    if (p.line_items.length > 1) throw unsupported("more than one line item per Checkout Session", "line_items[1]");
    if (p.customer && p.customer_email) throw invalidRequest("You may only specify one of these parameters: customer, customer_email.", { code: "parameters_exclusive", param: "customer_email" });
    if (p.customer) billing.customer(p.customer, "customer");
    if (p.mode === "subscription" && p.customer_creation) throw invalidRequest("`customer_creation` can only be used in `payment` mode.", { param: "customer_creation" });
    if (p.mode === "payment" && p.subscription_data) throw invalidRequest("You can only pass subscription_data in subscription mode.", { param: "subscription_data" });
    if (p.mode === "subscription" && p.payment_intent_data) throw invalidRequest("You can not pass `payment_intent_data` in `subscription` mode.", { param: "payment_intent_data" });
    const line = p.line_items[0] as { price: string; quantity?: number };
    const price = billing.price(line.price, "line_items[0][price]");
    if (!price.active) throw invalidRequest(`The price specified is inactive. This field only accepts active prices.`, { param: "line_items[0][price]" });
    if (p.mode === "subscription" && !price.recurring) {
      throw invalidRequest("You must provide at least one recurring price in `subscription` mode when using prices.", { param: "line_items[0][price]" });
    }
    if (p.mode === "payment" && price.recurring) {
      throw invalidRequest("You specified `payment` mode but passed a recurring price. Either switch to `subscription` mode or use only one-time prices.", { param: "line_items[0][price]" });
    }
    const trial = p.subscription_data?.trial_period_days;
    if (trial !== undefined && trial < 1) throw invalidRequest("The trial period must be at least 1 day.", { param: "subscription_data[trial_period_days]" });
    const quantity = line.quantity ?? 1;
    const id = newId("cs_test", 58);
    const now = store.now(p.customer);
    if (p.expires_at !== undefined && (p.expires_at < now + 1800 || p.expires_at > now + 86_400)) {
      throw invalidRequest("The `expires_at` timestamp must be between 30 minutes and 24 hours from Checkout Session creation.", { param: "expires_at" });
    }
    const session = buildCheckoutSession({
      id,
      created: now,
      expiresAt: p.expires_at ?? now + 24 * 3600,
      mode: p.mode,
      customer: p.customer ?? null,
      customerEmail: p.customer_email ?? null,
      clientReferenceId: p.client_reference_id ?? null,
      metadata: mergeMetadata({}, p.metadata),
      successUrl: p.success_url ?? null,
      cancelUrl: p.cancel_url ?? null,
      currency: price.currency,
      amountTotal: (price.unit_amount ?? 0) * quantity,
      url: `${ctx.baseUrl()}/checkout/${id}`,
    });
    if (p.mode === "payment") session.customer_creation = p.customer ? null : (p.customer_creation ?? "if_required");
    store.checkoutSessions.set(id, session);
    store.checkoutPlans.set(id, {
      price: price.id,
      quantity,
      trialPeriodDays: trial ?? null,
      subscriptionMetadata: mergeMetadata({}, p.subscription_data?.metadata),
      paymentIntentMetadata: mergeMetadata({}, p.payment_intent_data?.metadata),
    });
    return session;
  });

  function checkoutSession(id: string): Stripe.Checkout.Session {
    const session = billing.findCheckoutSession(id);
    if (!session) throw resourceMissing("checkout.session", id, "session");
    return session;
  }

  function lineItems(session: Stripe.Checkout.Session): Stripe.ApiList<Stripe.LineItem> {
    const plan = store.checkoutPlans.get(session.id);
    const price = plan ? store.prices.get(plan.price) : undefined;
    if (!plan || !price) return { object: "list", data: [], has_more: false, url: `/v1/checkout/sessions/${session.id}/line_items` };
    const product = store.products.get(String(price.product));
    const amount = (price.unit_amount ?? 0) * plan.quantity;
    return {
      object: "list",
      has_more: false,
      url: `/v1/checkout/sessions/${session.id}/line_items`,
      data: [{ id: `li_${session.id.slice(8, 32)}`, object: "item", adjustable_quantity: null, amount_discount: 0, amount_subtotal: amount, amount_tax: 0, amount_total: amount, currency: price.currency, description: product?.name ?? null, metadata: {}, price, quantity: plan.quantity }],
    };
  }

  route("GET", "/v1/checkout/sessions", (raw) => {
    const p = parseParams(z.object({ ...pagination, customer: str.optional(), subscription: str.optional(), payment_intent: str.optional(), status: oneOf(["open", "complete", "expired"]).optional() }).strict(), raw);
    for (const session of store.checkoutSessions.values()) billing.expireIfDue(session);
    const all = [...store.checkoutSessions.values()].filter(
      (s) => (p.customer === undefined || s.customer === p.customer) && (p.subscription === undefined || s.subscription === p.subscription) && (p.payment_intent === undefined || s.payment_intent === p.payment_intent) && (p.status === undefined || s.status === p.status),
    );
    return listOf(all, "/v1/checkout/sessions", p);
  });

  route("GET", "/v1/checkout/sessions/:id", (raw, c) => {
    const p = parseParams(z.object({ expand }).strict(), raw);
    const session = checkoutSession(c.req.param("id") ?? "");
    if (p.expand?.includes("line_items")) {
      // line_items is not stored on the session: expanding it means attaching the list.
      const copy = snapshot(session) as Json;
      copy.line_items = lineItems(session);
      return copy;
    }
    return session;
  });

  route("GET", "/v1/checkout/sessions/:id/line_items", (raw, c) => {
    parseParams(z.object({ ...pagination }).strict(), raw);
    return lineItems(checkoutSession(c.req.param("id") ?? ""));
  });

  route("POST", "/v1/checkout/sessions/:id/expire", (raw, c) => {
    parseParams(z.object({ expand }).strict(), raw);
    return billing.expireCheckout(c.req.param("id") ?? "");
  });

  // ----- billing portal ------------------------------------------------------------------------

  route("POST", "/v1/billing_portal/sessions", (raw) => {
    const p = parseParams(z.object({ customer: str, return_url: str.optional(), expand }).strict(), raw);
    const customer = billing.customer(p.customer, "customer");
    const id = newId("bps", 24);
    const session = buildPortalSession({ id, created: store.now(customer.id), customer: customer.id, returnUrl: p.return_url ?? null, url: `${ctx.baseUrl()}/portal/${id}` });
    store.portalSessions.set(id, session);
    return session;
  });

  // ----- subscriptions -------------------------------------------------------------------------

  const subscriptionStatuses = ["active", "all", "canceled", "ended", "incomplete", "incomplete_expired", "past_due", "paused", "trialing", "unpaid"] as const;

  route("GET", "/v1/subscriptions/search", (raw) => {
    const p = parseParams(searchParams, raw);
    const clauses = parseSearchQuery(p.query, ["status", "customer"]);
    const found = [...store.subscriptions.values()].reverse().filter((s) => matchesSearch(s.metadata, { status: s.status, customer: s.customer }, clauses));
    return searchResult(found, "/v1/subscriptions/search", p.limit);
  });

  route("GET", "/v1/subscriptions", (raw) => {
    const p = parseParams(z.object({ ...pagination, customer: str.optional(), price: str.optional(), status: oneOf(subscriptionStatuses).optional() }).strict(), raw);
    const all = [...store.subscriptions.values()].filter((s) => {
      const statusOk =
        p.status === undefined ? s.status !== "canceled" && s.status !== "incomplete_expired"
        : p.status === "all" ? true
        : p.status === "ended" ? s.status === "canceled" || s.status === "incomplete_expired"
        : s.status === p.status;
      return statusOk && (p.customer === undefined || s.customer === p.customer) && (p.price === undefined || s.items.data.some((i) => i.price.id === p.price));
    });
    return listOf(all, "/v1/subscriptions", p);
  });

  route("GET", "/v1/subscriptions/:id", (raw, c) => {
    parseParams(z.object({ expand }).strict(), raw);
    return billing.subscription(c.req.param("id") ?? "");
  });

  route("POST", "/v1/subscriptions/:id", (raw, c) => {
    const p = parseParams(
      z
        .object({
          items: z.array(z.object({ id: str.optional(), price: str.optional(), quantity: int.optional() }).strict()).max(1, { message: "Invalid items: the emulator supports one subscription item" }).optional(),
          proration_behavior: oneOf(["create_prorations", "always_invoice", "none"]).optional(),
          cancel_at_period_end: bool.optional(),
          metadata: metadataParam,
          default_payment_method: str.optional(),
          payment_behavior: oneOf(["allow_incomplete"]).optional(),
          expand,
        })
        .strict(),
      raw,
    );
    const subscription = billing.subscription(c.req.param("id") ?? "");
    if (subscription.status === "canceled" && (p.items || p.cancel_at_period_end !== undefined || p.default_payment_method)) {
      throw invalidRequest("A canceled subscription can only update its cancellation_details and metadata.");
    }
    if (p.metadata !== undefined) {
      const previous = { ...subscription.metadata };
      subscription.metadata = mergeMetadata(subscription.metadata, p.metadata);
      store.emit("customer.subscription.updated", subscription, { customer: String(subscription.customer), previousAttributes: { metadata: previous } });
    }
    if (p.default_payment_method) {
      const pm = store.paymentMethods.get(p.default_payment_method);
      if (!pm) throw resourceMissing("payment_method", p.default_payment_method, "default_payment_method");
      const previous = subscription.default_payment_method;
      subscription.default_payment_method = pm.id;
      store.emit("customer.subscription.updated", subscription, { customer: String(subscription.customer), previousAttributes: { default_payment_method: previous } });
    }
    const item = p.items?.[0];
    if (item) {
      const current = subscription.items.data[0];
      if (item.id && item.id !== current?.id) throw resourceMissing("subscription item", item.id, "items[0][id]");
      if (!item.id && item.price) {
        throw unsupported("adding a second item to a subscription (pass items[0][id] to change the existing item's price)", "items[0][id]");
      }
      if (item.price || item.quantity !== undefined) {
        const price = billing.price(item.price ?? current?.price.id ?? "", "items[0][price]");
        billing.changePrice(subscription, price, p.proration_behavior ?? "create_prorations", item.quantity);
      }
    }
    if (p.cancel_at_period_end !== undefined) billing.setCancelAtPeriodEnd(subscription, p.cancel_at_period_end);
    return subscription;
  });

  route("DELETE", "/v1/subscriptions/:id", (raw, c) => {
    const p = parseParams(
      z
        .object({
          invoice_now: z.literal("false").optional(),
          prorate: z.literal("false").optional(),
          cancellation_details: z.object({ comment: z.string().optional(), feedback: z.string().optional() }).strict().optional(),
          expand,
        })
        .strict(),
      raw,
    );
    const subscription = billing.subscription(c.req.param("id") ?? "");
    if (subscription.status === "canceled") {
      throw invalidRequest(`No such subscription: '${subscription.id}'; it has already been canceled.`, { code: "resource_missing", param: "id" });
    }
    billing.cancelNow(subscription);
    if (p.cancellation_details?.comment) subscription.cancellation_details = { ...(subscription.cancellation_details ?? { feedback: null, feedback_option: null, reason: null }), comment: p.cancellation_details.comment };
    return subscription;
  });

  route("POST", "/v1/subscriptions/:id/resume", () => {
    throw unsupported("pausing and resuming subscriptions (to undo a scheduled cancellation, update with cancel_at_period_end=false)");
  });

  // ----- invoices, payment intents, charges, refunds ---------------------------------------------

  route("GET", "/v1/invoices", (raw) => {
    const p = parseParams(z.object({ ...pagination, customer: str.optional(), subscription: str.optional(), status: oneOf(["draft", "open", "paid", "uncollectible", "void"]).optional() }).strict(), raw);
    const all = [...store.invoices.values()].filter(
      (i) => (p.customer === undefined || i.customer === p.customer) && (p.subscription === undefined || i.parent?.subscription_details?.subscription === p.subscription) && (p.status === undefined || i.status === p.status),
    );
    return listOf(all, "/v1/invoices", p);
  });

  function invoice(id: string): Stripe.Invoice {
    const found = store.invoices.get(id);
    if (!found) throw resourceMissing("invoice", id);
    return found;
  }

  route("GET", "/v1/invoices/:id", (raw, c) => {
    parseParams(z.object({ expand }).strict(), raw);
    return invoice(c.req.param("id") ?? "");
  });

  route("GET", "/v1/invoices/:id/lines", (raw, c) => {
    const p = parseParams(z.object({ ...pagination }).strict(), raw);
    const found = invoice(c.req.param("id") ?? "");
    return listOf([...found.lines.data].reverse(), found.lines.url, p);
  });

  route("GET", "/v1/payment_intents", (raw) => {
    const p = parseParams(z.object({ ...pagination, customer: str.optional() }).strict(), raw);
    return listOf([...store.paymentIntents.values()].filter((x) => p.customer === undefined || x.customer === p.customer), "/v1/payment_intents", p);
  });

  route("GET", "/v1/payment_intents/:id", (raw, c) => {
    parseParams(z.object({ expand, client_secret: str.optional() }).strict(), raw);
    const id = c.req.param("id") ?? "";
    const found = store.paymentIntents.get(id);
    if (!found) throw resourceMissing("payment_intent", id);
    return found;
  });

  route("GET", "/v1/charges", (raw) => {
    const p = parseParams(z.object({ ...pagination, customer: str.optional(), payment_intent: str.optional() }).strict(), raw);
    return listOf([...store.charges.values()].filter((x) => (p.customer === undefined || x.customer === p.customer) && (p.payment_intent === undefined || x.payment_intent === p.payment_intent)), "/v1/charges", p);
  });

  function charge(id: string, param = "id"): Stripe.Charge {
    const found = store.charges.get(id);
    if (!found) throw resourceMissing("charge", id, param);
    return found;
  }

  route("GET", "/v1/charges/:id", (raw, c) => {
    parseParams(z.object({ expand }).strict(), raw);
    return charge(c.req.param("id") ?? "");
  });

  route("GET", "/v1/payment_methods/:id", (raw, c) => {
    parseParams(z.object({ expand }).strict(), raw);
    const id = c.req.param("id") ?? "";
    const found = store.paymentMethods.get(id);
    if (!found) throw resourceMissing("payment_method", id);
    return found;
  });

  route("POST", "/v1/refunds", (raw) => {
    const p = parseParams(
      z
        .object({
          charge: str.optional(),
          payment_intent: str.optional(),
          amount: int.refine((n) => n >= 1, { message: "Invalid integer: amount must be at least 1" }).optional(),
          reason: oneOf(["duplicate", "fraudulent", "requested_by_customer"]).optional(),
          metadata: metadataParam,
          expand,
        })
        .strict(),
      raw,
    );
    let target: Stripe.Charge;
    if (p.charge) target = charge(p.charge, "charge");
    else if (p.payment_intent) {
      const intent = store.paymentIntents.get(p.payment_intent);
      if (!intent) throw resourceMissing("payment_intent", p.payment_intent, "payment_intent");
      const latest = typeof intent.latest_charge === "string" ? intent.latest_charge : null;
      if (!latest || intent.status !== "succeeded") throw invalidRequest(`This PaymentIntent (${intent.id}) does not have a successful charge to refund.`, { code: "charge_not_refundable", param: "payment_intent" });
      target = charge(latest, "payment_intent");
    } else throw invalidRequest("One of the following params should be provided for this request: payment_intent or charge.", { code: "parameter_missing", param: "charge" });
    return billing.refund(target, p.amount, p.reason ?? null, mergeMetadata({}, p.metadata));
  });

  route("GET", "/v1/refunds", (raw) => {
    const p = parseParams(z.object({ ...pagination, charge: str.optional(), payment_intent: str.optional() }).strict(), raw);
    return listOf([...store.refunds.values()].filter((x) => (p.charge === undefined || x.charge === p.charge) && (p.payment_intent === undefined || x.payment_intent === p.payment_intent)), "/v1/refunds", p);
  });

  route("GET", "/v1/refunds/:id", (raw, c) => {
    parseParams(z.object({ expand }).strict(), raw);
    const id = c.req.param("id") ?? "";
    const found = store.refunds.get(id);
    if (!found) throw resourceMissing("refund", id);
    return found;
  });

  // ----- events --------------------------------------------------------------------------------

  /** The event as the API shows it, with the emulator's delivery log beside Stripe's fields. */
  function eventView(stored: { event: Stripe.EventBase; deliveries: unknown[] }): Json {
    return { ...stored.event, emulator_delivery_attempts: stored.deliveries };
  }

  route("GET", "/v1/events", (raw) => {
    const p = parseParams(z.object({ ...pagination, type: str.optional(), types: z.array(str).optional(), delivery_success: bool.optional() }).strict(), raw);
    const matchType = (type: string, pattern: string) => (pattern.endsWith(".*") ? type.startsWith(pattern.slice(0, -1)) : type === pattern);
    const all = store.events
      .filter(
        (s) =>
          (p.type === undefined || matchType(s.event.type, p.type)) &&
          (p.types === undefined || p.types.some((t) => matchType(s.event.type, t))) &&
          (p.delivery_success === undefined || (s.event.pending_webhooks === 0) === p.delivery_success),
      )
      .map((s) => ({ id: s.event.id, view: eventView(s) }));
    const list = listOf(all, "/v1/events", p);
    return { ...list, data: list.data.map((x) => x.view) };
  });

  route("GET", "/v1/events/:id", (raw, c) => {
    parseParams(z.object({ expand }).strict(), raw);
    const id = c.req.param("id") ?? "";
    const stored = store.eventsById.get(id);
    if (!stored) throw resourceMissing("event", id);
    return eventView(stored);
  });

  // Anything else under /v1 is not emulated: say so the way Stripe does for an unknown URL.
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
