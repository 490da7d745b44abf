/**
 * Our catalog in Stripe: each plan interval and credit pack has a Stripe price, created on
 * first use and remembered in our tables (the first remembered wins). Lookup keys and
 * idempotency keys are deterministic, so concurrent or repeated calls converge on one price.
 */
import type Stripe from "stripe";
import type { SupabaseClient } from "@supabase/supabase-js";
import { idOf } from "../_shared/stripe-mapping.ts";
import { rpc } from "../_shared/supabase.ts";

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

async function findOrCreatePrice(
  stripe: Stripe,
  lookupKey: string,
  create: Stripe.PriceCreateParams,
): Promise<Stripe.Price> {
  const existing = await stripe.prices.list({ lookup_keys: [lookupKey], limit: 1 });
  if (existing.data[0]) return existing.data[0];
  return await stripe.prices.create({ ...create, lookup_key: lookupKey }, { idempotencyKey: `price:${lookupKey}` });
}

/** The Stripe price of a plan for an interval, creating product and price if needed. */
export async function planPrice(
  stripe: Stripe,
  service: SupabaseClient,
  plan: PlanRow,
  interval: "month" | "year",
): Promise<string> {
  const known = interval === "month" ? plan.stripe_monthly_price_id : plan.stripe_annual_price_id;
  if (known) return known;
  const price = await findOrCreatePrice(stripe, `plan:${plan.code}:${interval}`, {
    currency: plan.currency,
    unit_amount: interval === "month" ? plan.monthly_unit_amount : plan.annual_unit_amount,
    recurring: { interval },
    product_data: { name: plan.name, metadata: { plan_code: plan.code } },
    metadata: { plan_code: plan.code, interval },
  });
  return await rpc<string>(service, "remember_stripe_price", {
    p_kind: "plan",
    p_code: plan.code,
    p_interval: interval,
    p_stripe_price_id: price.id,
    p_stripe_product_id: idOf(price.product),
  });
}

/** The Stripe price of a credit pack, creating it if needed. */
export async function productPrice(stripe: Stripe, service: SupabaseClient, product: ProductRow): Promise<string> {
  if (product.stripe_price_id) return product.stripe_price_id;
  const price = await findOrCreatePrice(stripe, `credits:${product.code}`, {
    currency: product.currency,
    unit_amount: product.unit_amount,
    product_data: { name: product.name, metadata: { product_code: product.code } },
    metadata: { product_code: product.code, credits: String(product.credits) },
  });
  return await rpc<string>(service, "remember_stripe_price", {
    p_kind: "credit_product",
    p_code: product.code,
    p_interval: null,
    p_stripe_price_id: price.id,
    p_stripe_product_id: idOf(price.product),
  });
}
