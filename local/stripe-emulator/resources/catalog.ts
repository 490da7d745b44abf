/**
 * The product catalog: Products and Prices (create, retrieve, update, list), lookup keys and
 * their transfer, and how a price is described on invoice lines and hosted pages.
 */
import type Stripe from "stripe";
import { z } from "zod";
import { type Api, type Json, listOf, mergeMetadata, metadataParam } from "../api.ts";
import { invalidRequest, resourceMissing } from "../errors.ts";
import { bool, expand, int, oneOf, pagination, parseParams, str } from "../form.ts";
import { buildPrice, buildProduct } from "../objects.ts";
import { newId } from "../store.ts";
import type { Resources } from "./index.ts";

export class Catalog {
  constructor(private readonly r: Resources) {}

  /** A price, or 404 `resource_missing` on `param`. */
  price(id: string, param = "price"): Stripe.Price {
    const price = this.r.store.prices.get(id);
    if (!price) throw resourceMissing("price", id, param);
    return price;
  }

  /** `2 × Pro`: the price's nickname, else its product's name. */
  priceLabel(price: Stripe.Price, quantity: number): string {
    const productId = typeof price.product === "string" ? price.product : price.product.id;
    return `${quantity} × ${price.nickname ?? this.r.store.products.get(productId)?.name ?? productId}`;
  }

  /** An invoice line's description, worded as Stripe words it. */
  lineDescription(price: Stripe.Price, quantity: number, trial: boolean): string {
    const label = this.priceLabel(price, quantity);
    const amount = ((price.unit_amount ?? 0) / 100).toFixed(2);
    return trial ? `Trial period for ${label}` : price.recurring ? `${label} (at ${amount} ${price.currency.toUpperCase()} / ${price.recurring.interval})` : label;
  }
}

const recurringParam = z
  .object({
    interval: oneOf(["day", "week", "month", "year"]),
    interval_count: int.optional(),
    trial_period_days: int.optional(),
    usage_type: z.literal("licensed").optional(),
  })
  .strict();

export function mountCatalog({ route }: Api, r: Resources): void {
  const { store } = r;

  // ----- products ------------------------------------------------------------------------------

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
    if (p.default_price !== undefined) { r.catalog.price(p.default_price, "default_price"); previous.default_price = product.default_price ?? null; product.default_price = p.default_price; }
    if (p.metadata !== undefined) { previous.metadata = { ...product.metadata }; product.metadata = mergeMetadata(product.metadata, p.metadata); }
    product.updated = store.now();
    store.emit("product.updated", product, { previousAttributes: previous });
    return product;
  });

  // ----- prices --------------------------------------------------------------------------------

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
    return r.catalog.price(c.req.param("id") ?? "", "id");
  });

  route("POST", "/v1/prices/:id", (raw, c) => {
    const p = parseParams(z.object({ active: bool.optional(), nickname: str.optional(), lookup_key: str.optional(), transfer_lookup_key: bool.optional(), metadata: metadataParam, expand }).strict(), raw);
    const price = r.catalog.price(c.req.param("id") ?? "", "id");
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
}
