import { useMutation } from "@tanstack/react-query";
import { callBillingFunction } from "@/lib/billing-function";
import { useBackend, type Backend } from "@/lib/supabase";
import { redirectSchema, type BillingRedirect } from "@/types/billing";

/** Asks the billing function for a Stripe customer portal session URL (owners and admins only). */
export function openCustomerPortal(backend: Backend, organizationId: string): Promise<BillingRedirect> {
  return callBillingFunction(
    backend,
    { method: "POST", path: "/subscription/portal", body: { organization_id: organizationId } },
    redirectSchema,
  );
}

export function useOpenCustomerPortal(navigate: (url: string) => void = (url) => window.location.assign(url)) {
  const backend = useBackend();
  return useMutation({
    mutationFn: (organizationId: string) => openCustomerPortal(backend, organizationId),
    onSuccess: ({ url }) => navigate(url),
  });
}
