/**
 * The emulated Stripe resources, organized as Stripe's API reference is: each file holds one
 * resource's routes, its hosted page where it has one, and the state changes it makes (with
 * the events they emit). They call each other through one `Resources` object: paying a
 * Checkout Session creates a customer, attaches a card, starts a subscription and bills it.
 */
import type { Api } from "../api.ts";
import type { Store } from "../store.ts";
import { BillingPortal, mountBillingPortal } from "./billing-portal.ts";
import { Catalog, mountCatalog } from "./catalog.ts";
import { Checkout, mountCheckout } from "./checkout.ts";
import { Customers, mountCustomers } from "./customers.ts";
import { mountEvents } from "./events.ts";
import { Invoices, mountInvoices } from "./invoices.ts";
import { mountPaymentIntents, PaymentIntents } from "./payment-intents.ts";
import { mountPaymentMethods, PaymentMethods } from "./payment-methods.ts";
import { mountRefunds, Refunds } from "./refunds.ts";
import { mountSubscriptionSchedules, SubscriptionSchedules } from "./subscription-schedules.ts";
import { type DunningOptions, mountSubscriptions, Subscriptions } from "./subscriptions.ts";
import { mountTestClocks, TestClocks } from "./test-clocks.ts";

/** Every resource, and what they all share. */
export interface Resources {
  store: Store;
  /** The emulator's public base URL (for `url` fields: hosted pages, receipts). */
  baseUrl: () => string;
  customers: Customers;
  catalog: Catalog;
  checkout: Checkout;
  billingPortal: BillingPortal;
  subscriptions: Subscriptions;
  subscriptionSchedules: SubscriptionSchedules;
  invoices: Invoices;
  testClocks: TestClocks;
  paymentIntents: PaymentIntents;
  paymentMethods: PaymentMethods;
  refunds: Refunds;
}

/** Builds every resource over one store. */
export function createResources(store: Store, baseUrl: () => string, dunning: DunningOptions): Resources {
  const r = { store, baseUrl } as Resources;
  r.customers = new Customers(r);
  r.catalog = new Catalog(r);
  r.checkout = new Checkout(r);
  r.billingPortal = new BillingPortal(r);
  r.subscriptions = new Subscriptions(r, dunning);
  r.subscriptionSchedules = new SubscriptionSchedules(r);
  r.invoices = new Invoices(r);
  r.testClocks = new TestClocks(r);
  r.paymentIntents = new PaymentIntents(r);
  r.paymentMethods = new PaymentMethods(r);
  r.refunds = new Refunds(r);
  return r;
}

/** Adds every resource's routes, hosted pages and emulator-only hooks. */
export function mountResources(api: Api, r: Resources): void {
  mountCustomers(api, r);
  mountCatalog(api, r);
  mountCheckout(api, r);
  mountBillingPortal(api, r);
  mountSubscriptions(api, r);
  mountSubscriptionSchedules(api, r);
  mountInvoices(api, r);
  mountTestClocks(api, r);
  mountPaymentIntents(api, r);
  mountPaymentMethods(api, r);
  mountRefunds(api, r);
  mountEvents(api, r);
}
