import { useMutation } from "@tanstack/react-query";
import { callBillingFunction } from "@/lib/billing-function";
import { useBackend, type Backend } from "@/lib/supabase";
import { redirectSchema, type BillingRedirect } from "@/types/billing";

export interface CreditCheckoutRequest {
  organization_id: string;
  product_code: string;
}

/** Asks the billing function for a Stripe Checkout URL for a credit pack (owners and admins only). */
export function startCreditCheckout(backend: Backend, request: CreditCheckoutRequest): Promise<BillingRedirect> {
  return callBillingFunction(backend, { method: "POST", path: "/credit-products/checkout", body: request }, redirectSchema);
}

export function useStartCreditCheckout(navigate: (url: string) => void = (url) => window.location.assign(url)) {
  const backend = useBackend();
  return useMutation({
    mutationFn: (request: CreditCheckoutRequest) => startCreditCheckout(backend, request),
    onSuccess: ({ url }) => navigate(url),
  });
}
