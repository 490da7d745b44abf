import { useMutation } from "@tanstack/react-query";
import { callBillingFunction } from "@/lib/billing-function";
import { useBackend, type Backend } from "@/lib/supabase";
import { redirectSchema, type BillingInterval, type BillingRedirect } from "@/types/billing";

export interface SubscriptionCheckoutRequest {
  organization_id: string;
  plan_code: string;
  interval: BillingInterval;
}

/** Asks the billing function for a Stripe Checkout URL for a plan (owners and admins only). */
export function startSubscriptionCheckout(backend: Backend, request: SubscriptionCheckoutRequest): Promise<BillingRedirect> {
  return callBillingFunction(backend, { method: "POST", path: "/subscription/checkout", body: request }, redirectSchema);
}

/** Mutation that sends the browser to Checkout on success. */
export function useStartSubscriptionCheckout(navigate: (url: string) => void = (url) => window.location.assign(url)) {
  const backend = useBackend();
  return useMutation({
    mutationFn: (request: SubscriptionCheckoutRequest) => startSubscriptionCheckout(backend, request),
    onSuccess: ({ url }) => navigate(url),
  });
}
