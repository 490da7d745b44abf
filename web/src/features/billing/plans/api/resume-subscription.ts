import { useMutation } from "@tanstack/react-query";
import { z } from "zod/mini";
import { callBillingFunction } from "@/lib/billing-function";
import { useBackend, type Backend } from "@/lib/supabase";

const resumedSchema = z.object({ cancel_at_period_end: z.literal(false) });

/** `POST /subscription/resume`: undoes a cancellation scheduled for the period's end (owners and admins). */
export function resumeSubscription(backend: Backend, organizationId: string): Promise<z.infer<typeof resumedSchema>> {
  return callBillingFunction(
    backend,
    { method: "POST", path: "/subscription/resume", body: { organization_id: organizationId } },
    resumedSchema,
  );
}

export function useResumeSubscription() {
  const backend = useBackend();
  return useMutation({ mutationFn: (organizationId: string) => resumeSubscription(backend, organizationId) });
}
