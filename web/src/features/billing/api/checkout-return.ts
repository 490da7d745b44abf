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

export const checkoutOutcomeQueryKey = (organizationId: string, ret: CheckoutReturn) =>
  [...billingKey(organizationId), "checkout-outcome", ret.kind, ret.sessionId] as const;

/**
 * Whether the webhook has applied the checkout yet: for a credit pack, the payment row of
 * that checkout session (or, without a session id, any credit purchase since `since`);
 * for a subscription, a subscription that is trialing or active.
 */
export async function fetchCheckoutApplied(
  supabase: BillingSupabaseClient,
  organizationId: string,
  ret: CheckoutReturn,
  since: string,
): Promise<boolean> {
  if (ret.kind === "credits") {
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
  const { data, error } = await supabase
    .from("organization_subscriptions")
    .select("id")
    .eq("organization_id", organizationId)
    .in("status", ["trialing", "active"])
    .limit(1);
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
