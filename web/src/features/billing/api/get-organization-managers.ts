import { useQuery } from "@tanstack/react-query";
import { throwIfError } from "@/lib/errors";
import { useBackend, type BillingSupabaseClient } from "@/lib/supabase";
import { billingKey } from "./billing-keys";

export interface OrganizationManager {
  user_id: string;
  email: string;
  role: "owner" | "admin";
}

export const managersQueryKey = (organizationId: string) => [...billingKey(organizationId), "managers"] as const;

/**
 * The owners and admins of the organization with their emails (owners first), through
 * `organization_managers`: members cannot read other users' emails any other way.
 */
export async function fetchOrganizationManagers(supabase: BillingSupabaseClient, organizationId: string): Promise<OrganizationManager[]> {
  const { data, error } = await supabase.rpc("organization_managers", { p_organization_id: organizationId });
  throwIfError(error);
  return (data ?? []).flatMap((row) =>
    row.role === "owner" || row.role === "admin" ? [{ user_id: row.user_id, email: row.email, role: row.role }] : []);
}

export function useOrganizationManagers(organizationId: string, enabled = true) {
  const { supabase } = useBackend();
  return useQuery({
    queryKey: managersQueryKey(organizationId),
    queryFn: () => fetchOrganizationManagers(supabase, organizationId),
    enabled,
    // Who runs billing changes rarely; read it once per visit.
    staleTime: 5 * 60_000,
  });
}
