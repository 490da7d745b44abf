/**
 * Our catalog in Stripe: each plan interval and credit pack has a Stripe price, created on
 * first use and remembered in our tables (the first remembered wins). Lookup keys and
 * idempotency keys are deterministic, so concurrent or repeated calls converge on one price.
 *
 * A remembered price is checked before use: one that Stripe no longer has (another account
 * or mode, an emulator that lost its state), that was archived, or that no longer matches our
 * catalog (amount, currency, interval) is replaced by a new price made from our catalog, and
 * the replacement remembered. The old id stays known to the database, so subscriptions
 * still on it keep being recognised.
 */
import type Stripe from "stripe";
import { idOf } from "../_shared/stripe-mapping.ts";
import { type DatabaseClient, rpc } from "../_shared/supabase.ts";
import { isStripeMissing } from "./api-error.ts";

export interface PlanRow {
  id: string;
  code: string;
  name: string;
  currency: string;
  monthly_unit_amount: number;
  annual_unit_amount: number;
  stripe_product_id: string | null;
  stripe_monthly_price_id: string | null;
  stripe_annual_price_id: string | null;
  trial_days: number;
}

export interface ProductRow {
  id: string;
  code: string;
  name: string;
  credits: number;
  currency: string;
  unit_amount: number;
  stripe_product_id: string | null;
  stripe_price_id: string | null;
}

/** What our catalog says a price must be. */
interface Wanted {
  lookupKey: string;
  currency: string;
  unitAmount: number;
  interval: "month" | "year" | null;
  productName: string;
  metadata: Record<string, string>;
}

function matches(price: Stripe.Price, wanted: Wanted): boolean {
  return price.active && price.currency === wanted.currency && price.unit_amount === wanted.unitAmount &&
    (price.recurring?.interval ?? null) === wanted.interval;
}

/** Whether Stripe has the remembered price, active and as our catalog says. */
async function usable(stripe: Stripe, id: string, wanted: Wanted): Promise<boolean> {
  try {
    return matches(await stripe.prices.retrieve(id), wanted);
  } catch (error) {
    if (isStripeMissing(error)) return false;
    throw error;
  }
}

/**
 * An active price under our lookup key that matches the catalog, or a new one that takes the
 * lookup key over (transfer_lookup_key), under an idempotency key naming the price it replaces.
 */
async function findOrCreatePrice(stripe: Stripe, wanted: Wanted, replacing: string | null): Promise<Stripe.Price> {
  const existing = await stripe.prices.list({ lookup_keys: [wanted.lookupKey], active: true, limit: 1 });
  const found = existing.data[0];
  if (found && matches(found, wanted)) return found;
  const params: Stripe.PriceCreateParams = {
    currency: wanted.currency,
    unit_amount: wanted.unitAmount,
    ...(wanted.interval && { recurring: { interval: wanted.interval } }),
    product_data: { name: wanted.productName, metadata: wanted.metadata },
    metadata: wanted.metadata,
    lookup_key: wanted.lookupKey,
    transfer_lookup_key: true,
  };
  const key = `price:${wanted.lookupKey}:${wanted.currency}:${wanted.unitAmount}:${replacing ?? "first"}`;
  return await stripe.prices.create(params, { idempotencyKey: key });
}

/**
 * The usable price for a catalog entry: the remembered one, or a new one remembered in its
 * place (first use: remember_stripe_price; replacement: replace_stripe_price, compare-and-set
 * on the id we found unusable, so concurrent repairs agree on one price).
 */
async function ensurePrice(
  stripe: Stripe,
  service: DatabaseClient,
  entry: { kind: "plan" | "credit_product"; code: string; interval: "month" | "year" | null },
  remembered: string | null,
  wanted: Wanted,
): Promise<string> {
  if (remembered && await usable(stripe, remembered, wanted)) return remembered;
  const price = await findOrCreatePrice(stripe, wanted, remembered);
  const args = {
    p_kind: entry.kind,
    p_code: entry.code,
    p_interval: entry.interval,
    p_stripe_price_id: price.id,
    p_stripe_product_id: idOf(price.product),
  };
  if (!remembered) return await rpc(service, "remember_stripe_price", args);
  return await rpc(service, "replace_stripe_price", { ...args, p_previous_price_id: remembered });
}

/** The Stripe price of a plan for an interval, creating (or re-creating) product and price if needed. */
export async function planPrice(
  stripe: Stripe,
  service: DatabaseClient,
  plan: PlanRow,
  interval: "month" | "year",
): Promise<string> {
  const remembered = interval === "month" ? plan.stripe_monthly_price_id : plan.stripe_annual_price_id;
  return await ensurePrice(stripe, service, { kind: "plan", code: plan.code, interval }, remembered, {
    lookupKey: `plan:${plan.code}:${interval}`,
    currency: plan.currency,
    unitAmount: interval === "month" ? plan.monthly_unit_amount : plan.annual_unit_amount,
    interval,
    productName: plan.name,
    metadata: { plan_code: plan.code, interval },
  });
}

/** The Stripe price of a credit pack, creating (or re-creating) it if needed. */
export async function productPrice(stripe: Stripe, service: DatabaseClient, product: ProductRow): Promise<string> {
  return await ensurePrice(
    stripe,
    service,
    { kind: "credit_product", code: product.code, interval: null },
    product.stripe_price_id,
    {
      lookupKey: `credits:${product.code}`,
      currency: product.currency,
      unitAmount: product.unit_amount,
      interval: null,
      productName: product.name,
      metadata: { product_code: product.code, credits: String(product.credits) },
    },
  );
}
