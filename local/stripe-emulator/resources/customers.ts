/**
 * Customers: create, retrieve, update, delete, list, search. A deleted customer stays in the
 * store, marked, so reads answer "deleted" as Stripe's do.
 */
import type Stripe from "stripe";
import { z } from "zod";
import { type Api, type Json, listOf, matchesSearch, mergeMetadata, metadataParam, parseSearchQuery, searchParams, searchResult } from "../api.ts";
import { invalidRequest, resourceMissing } from "../errors.ts";
import { expand, pagination, parseParams, str } from "../form.ts";
import { buildCustomer } from "../objects.ts";
import { newId } from "../store.ts";
import type { Resources } from "./index.ts";

/** Whether a customer was deleted (DELETE /v1/customers/:id). */
export function isDeleted(customer: Stripe.Customer): boolean {
  return (customer as { deleted?: boolean }).deleted === true;
}

/** What Stripe answers for a deleted customer. */
export function deletedCustomer(id: string): Stripe.DeletedCustomer {
  return { id, object: "customer", deleted: true };
}

/** The id of an expandable field, whether it holds the id or the object. */
export function idOf(value: string | { id: string } | null): string | null {
  return value === null ? null : typeof value === "string" ? value : value.id;
}

export class Customers {
  constructor(private readonly r: Resources) {}

  /** A live customer, or 404 `resource_missing` on `param`. */
  get(id: string, param = "id"): Stripe.Customer {
    const customer = this.r.store.customers.get(id);
    if (!customer || isDeleted(customer)) throw resourceMissing("customer", id, param);
    return customer;
  }

  create(fields: { email: string | null; name: string | null; description: string | null; phone: string | null; metadata: Stripe.Metadata }): Stripe.Customer {
    const id = newId("cus");
    const customer = buildCustomer({
      id,
      created: this.r.store.now(),
      ...fields,
      invoicePrefix: id.slice(4, 12).toUpperCase(),
    });
    this.r.store.customers.set(id, customer);
    this.r.store.emit("customer.created", customer, { customer: id });
    return customer;
  }

  /**
   * Deletes a customer as Stripe does: its live subscriptions are canceled at once, and it
   * reads back as `{id, object: "customer", deleted: true}` and can be used for nothing else.
   * Kept in the store (marked) rather than removed, so a read still says "deleted".
   */
  delete(id: string): Stripe.DeletedCustomer {
    const customer = this.get(id);
    for (const subscription of this.r.store.subscriptions.values()) {
      const live = subscription.status !== "canceled" && subscription.status !== "incomplete_expired";
      if (live && idOf(subscription.customer) === id) this.r.subscriptions.cancelNow(subscription);
    }
    this.r.store.emit("customer.deleted", customer, { customer: id });
    (customer as { deleted?: boolean }).deleted = true;
    return deletedCustomer(id);
  }
}

const customerFields = { email: str.optional(), name: str.optional(), description: str.optional(), phone: str.optional(), metadata: metadataParam, expand };
/** `invoice_settings[default_payment_method]`: a card attached to the customer, or "" to clear it. */
const invoiceSettingsParam = z.object({ default_payment_method: z.string().optional() }).strict().optional();

export function mountCustomers({ route }: Api, r: Resources): void {
  const { store } = r;

  route("POST", "/v1/customers", (raw) => {
    const p = parseParams(z.object(customerFields).strict(), raw);
    return r.customers.create({ email: p.email ?? null, name: p.name ?? null, description: p.description ?? null, phone: p.phone ?? null, metadata: mergeMetadata({}, p.metadata) });
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
    return stored && isDeleted(stored) ? deletedCustomer(id) : r.customers.get(id);
  });

  route("DELETE", "/v1/customers/:id", (raw, c) => {
    parseParams(z.object({}).strict(), raw);
    return r.customers.delete(c.req.param("id") ?? "");
  });

  route("POST", "/v1/customers/:id", (raw, c) => {
    const p = parseParams(z.object({ ...customerFields, invoice_settings: invoiceSettingsParam }).strict(), raw);
    const customer = r.customers.get(c.req.param("id") ?? "");
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
    const defaultCard = p.invoice_settings?.default_payment_method;
    if (defaultCard !== undefined) {
      const param = "invoice_settings[default_payment_method]";
      const card = defaultCard === "" ? null : r.paymentMethods.get(defaultCard, param);
      if (card && idOf(card.customer) !== customer.id) {
        throw invalidRequest(`The customer does not have a payment method with the ID ${card.id}. The payment method must be attached to the customer.`, { code: "resource_missing", param });
      }
      if (idOf(customer.invoice_settings.default_payment_method) !== (card?.id ?? null)) {
        previous.invoice_settings = { default_payment_method: customer.invoice_settings.default_payment_method };
        customer.invoice_settings.default_payment_method = card?.id ?? null;
      }
    }
    if (Object.keys(previous).length) store.emit("customer.updated", customer, { customer: customer.id, previousAttributes: previous });
    return customer;
  });
}
