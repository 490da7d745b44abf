import { useMutation } from "@tanstack/react-query";
import { z } from "zod/mini";
import { callBillingFunction } from "@/lib/billing-function";
import { useBackend, type Backend } from "@/lib/supabase";

const cancelledSchema = z.object({ scheduled_change: z.null() });

/** `POST /subscription/change/cancel`: drops a scheduled plan change, keeping the current plan (owners and admins). */
export function cancelScheduledChange(backend: Backend, organizationId: string): Promise<z.infer<typeof cancelledSchema>> {
  return callBillingFunction(
    backend,
    { method: "POST", path: "/subscription/change/cancel", body: { organization_id: organizationId } },
    cancelledSchema,
  );
}

export function useCancelScheduledChange() {
  const backend = useBackend();
  return useMutation({ mutationFn: (organizationId: string) => cancelScheduledChange(backend, organizationId) });
}
