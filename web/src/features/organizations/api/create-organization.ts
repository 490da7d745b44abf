import { useMutation, useQueryClient } from "@tanstack/react-query";
import { throwIfError } from "@/lib/errors";
import { useBackend, type BillingSupabaseClient } from "@/lib/supabase";

/** Creates an organization through the `create_organization` RPC; the caller becomes its owner. */
export async function createOrganization(supabase: BillingSupabaseClient, name: string): Promise<string> {
  const { data, error } = await supabase.rpc("create_organization", { p_name: name });
  throwIfError(error);
  if (typeof data !== "string") throw new Error("The new organization's id was missing.");
  return data;
}

/** Mutation hook; refreshes the membership list so the new organization appears. */
export function useCreateOrganization() {
  const { supabase } = useBackend();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (name: string) => createOrganization(supabase, name),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: ["memberships"] }),
  });
}
