/**
 * The organization's Stripe customer: created once (deterministic idempotency key) and
 * claimed in our table, and re-created when Stripe no longer has the one we remember (deleted
 * in the Dashboard, another Stripe account or mode, an emulator that lost its state), as long
 * as nothing live is billed to it. A live subscription on a customer Stripe does not know is
 * not ours to paper over: that is a 409 for a person to sort out, never a second customer.
 */
import type Stripe from "stripe";
import { type Database, type DatabaseClient, dataOf, DatabaseFailure, rpc } from "../_shared/supabase.ts";
import { ApiError, isStripeMissing } from "./api-error.ts";

/** Subscription statuses that still bill (or may bill) the customer. */
export const LIVE_STATUSES: Database["public"]["Enums"]["subscription_status"][] = ["trialing", "active", "past_due", "unpaid", "incomplete", "paused"];

/** Whether Stripe still has this customer (a deleted customer reads back as `deleted: true`). */
async function customerExists(stripe: Stripe, id: string): Promise<boolean> {
  try {
    const customer = await stripe.customers.retrieve(id);
    return !(customer as Stripe.DeletedCustomer).deleted;
  } catch (error) {
    if (isStripeMissing(error)) return false;
    throw error;
  }
}

export async function hasLiveSubscription(service: DatabaseClient, organization: string): Promise<boolean> {
  const live = dataOf(await service.from("organization_subscriptions").select("id")
    .eq("organization_id", organization).in("status", LIVE_STATUSES).limit(1));
  return (live?.length ?? 0) > 0;
}

/** The organization's Stripe customer id, creating (or re-creating) the customer as needed. */
export async function customerFor(stripe: Stripe, service: DatabaseClient, organization: string): Promise<string> {
  return (await resolveCustomer(stripe, service, organization, true))!;
}

/**
 * The organization's Stripe customer id if it ever had one (re-created if Stripe lost it),
 * or null: for the portal, which has nothing to show a customer that never bought anything.
 */
export async function existingCustomerFor(stripe: Stripe, service: DatabaseClient, organization: string): Promise<string | null> {
  return await resolveCustomer(stripe, service, organization, false);
}

async function resolveCustomer(
  stripe: Stripe,
  service: DatabaseClient,
  organization: string,
  createFirst: boolean,
): Promise<string | null> {
  const data = dataOf(await service.from("organizations").select("id, name, stripe_customer_id")
    .eq("id", organization).single());
  const remembered: string | null = data.stripe_customer_id;
  if (remembered && await customerExists(stripe, remembered)) return remembered;
  if (!remembered && !createFirst) return null;
  if (remembered && await hasLiveSubscription(service, organization)) {
    throw new ApiError(
      409,
      "customer_missing",
      "The organization's subscription is billed to a Stripe customer that no longer exists; contact support to reconnect billing.",
    );
  }
  // A replacement has a key of its own (the first key would replay the customer that is gone),
  // still deterministic so concurrent repairs make one customer.
  const customer = await stripe.customers.create(
    { name: data.name, metadata: { organization_id: organization } },
    { idempotencyKey: remembered ? `customer:${organization}:replacing:${remembered}` : `customer:${organization}` },
  );
  if (remembered) {
    // Compare-and-set: the first repair wins and everyone uses its customer.
    return await rpc(service, "replace_stripe_customer", {
      p_organization_id: organization,
      p_previous_customer_id: remembered,
      p_stripe_customer_id: customer.id,
    });
  }
  try {
    await rpc(service, "link_stripe_customer", {
      p_event_id: null,
      p_organization_id: organization,
      p_stripe_customer_id: customer.id,
    });
    return customer.id;
  } catch (error) {
    // Someone linked another customer first (an older key, a manual link): use theirs.
    if (error instanceof DatabaseFailure && error.code === "PT409") {
      const again = dataOf(await service.from("organizations").select("stripe_customer_id").eq("id", organization).single());
      if (again.stripe_customer_id) return again.stripe_customer_id;
    }
    throw error;
  }
}
