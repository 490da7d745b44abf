import { useQuery } from "@tanstack/react-query";
import { throwIfError } from "@/lib/errors";
import { useBackend, type BillingSupabaseClient } from "@/lib/supabase";
import { billingKey } from "./billing-keys";

/**
 * What the page was opened with after Stripe Checkout. The billing function's success URL
 * carries `?checkout=success&kind=subscription|credits&session_id={CHECKOUT_SESSION_ID}`
 * (Stripe fills in the session id); only `checkout=success` is required.
 */
export interface CheckoutReturn {
  kind: "subscription" | "credits";
  sessionId: string | null;
}

/** Reads the checkout-return parameters from a URL's query string. */
export function parseCheckoutReturn(search: string): CheckoutReturn | null {
  const params = new URLSearchParams(search);
  if (params.get("checkout") !== "success") return null;
  return {
    kind: params.get("kind") === "credits" ? "credits" : "subscription",
    sessionId: params.get("session_id"),
  };
}

/**
 * Every way Stripe sends a member back to the dashboard (the billing function builds these
 * URLs from APP_URL): a paid checkout, a cancelled one, or the customer portal's return link.
 */
export type ReturnFromStripe =
  | { type: "checkout-paid"; checkout: CheckoutReturn }
  | { type: "checkout-cancelled"; kind: CheckoutReturn["kind"] }
  | { type: "portal" };

/** The query parameters the return URLs add; removed from the address bar once handled. */
export const RETURN_FROM_STRIPE_PARAMS = ["checkout", "kind", "session_id", "portal"] as const;

/** Reads any of the three return URLs from a query string. */
export function parseReturnFromStripe(search: string): ReturnFromStripe | null {
  const paid = parseCheckoutReturn(search);
  if (paid) return { type: "checkout-paid", checkout: paid };
  const params = new URLSearchParams(search);
  if (params.get("checkout") === "cancelled") {
    return { type: "checkout-cancelled", kind: params.get("kind") === "credits" ? "credits" : "subscription" };
  }
  if (params.get("portal") === "returned") return { type: "portal" };
  return null;
}

export const checkoutOutcomeQueryKey = (organizationId: string, ret: CheckoutReturn) =>
  [...billingKey(organizationId), "checkout-outcome", ret.kind, ret.sessionId] as const;

/**
 * Whether the webhook has applied a subscription checkout: a trialing or active
 * subscription whose first period's credits have been granted. The webhook writes the
 * subscription row (customer.subscription.created) before the invoice that carries the
 * credits (invoice.paid), so the row alone would announce credits that are not there yet.
 * A plan without credits has nothing more to wait for.
 */
async function subscriptionCheckoutApplied(supabase: BillingSupabaseClient, organizationId: string): Promise<boolean> {
  const subscriptions = await supabase
    .from("organization_subscriptions")
    .select("id, plan_id, billing_interval")
    .eq("organization_id", organizationId)
    .in("status", ["trialing", "active"])
    .order("created_at", { ascending: false })
    .limit(1);
  throwIfError(subscriptions.error);
  const subscription = subscriptions.data?.[0];
  if (!subscription) return false;
  const lots = await supabase
    .from("credit_lots")
    .select("id")
    .eq("organization_id", organizationId)
    .eq("subscription_id", subscription.id)
    .limit(1);
  throwIfError(lots.error);
  if ((lots.data ?? []).length > 0) return true;
  if (!subscription.plan_id) return true; // a plan we do not sell any more: no allowance to wait for
  const plans = await supabase.from("subscription_plans").select("monthly_credits, annual_credits").eq("id", subscription.plan_id).limit(1);
  throwIfError(plans.error);
  const plan = plans.data?.[0];
  return plan !== undefined && (subscription.billing_interval === "year" ? plan.annual_credits : plan.monthly_credits) === 0;
}

/**
 * Whether the webhook has applied the checkout yet: for a credit pack, the payment row of
 * that checkout session (or, without a session id, any credit purchase since `since`);
 * for a subscription, see subscriptionCheckoutApplied.
 */
export async function fetchCheckoutApplied(
  supabase: BillingSupabaseClient,
  organizationId: string,
  ret: CheckoutReturn,
  since: string,
): Promise<boolean> {
  if (ret.kind === "subscription") return subscriptionCheckoutApplied(supabase, organizationId);
  let query = supabase
    .from("billing_history")
    .select("id")
    .eq("organization_id", organizationId)
    .eq("kind", "credit_purchase")
    .eq("status", "paid");
  query = ret.sessionId ? query.eq("stripe_checkout_session_id", ret.sessionId) : query.gte("occurred_at", since);
  const { data, error } = await query.limit(1);
  throwIfError(error);
  return (data ?? []).length > 0;
}

/** Polls every `intervalMs` until the checkout shows up as applied. */
export function useCheckoutApplied(organizationId: string, ret: CheckoutReturn, since: string, intervalMs = 2000) {
  const { supabase } = useBackend();
  return useQuery({
    queryKey: checkoutOutcomeQueryKey(organizationId, ret),
    queryFn: () => fetchCheckoutApplied(supabase, organizationId, ret, since),
    refetchInterval: (query) => (query.state.data === true ? false : intervalMs),
    staleTime: 0,
  });
}
