import { useQuery } from "@tanstack/react-query";
import { throwIfError } from "@/lib/errors";
import { useBackend, type BillingSupabaseClient } from "@/lib/supabase";
import type { Membership } from "@/types/billing";

/** Query key of the signed-in user's memberships. */
export const membershipsQueryKey = (userId: string) => ["memberships", userId] as const;

/**
 * The organizations the user belongs to, with their role in each. Two plain reads rather
 * than an embedded select: RLS scopes both to the user's organizations anyway.
 */
export async function fetchMemberships(supabase: BillingSupabaseClient, userId: string): Promise<Membership[]> {
  const members = await supabase.from("organization_members").select("organization_id, role").eq("user_id", userId);
  throwIfError(members.error);
  const ids = (members.data ?? []).map((row) => row.organization_id);
  if (ids.length === 0) return [];
  const organizations = await supabase
    .from("organizations")
    .select("id, name, low_balance_threshold, credit_precedence")
    .in("id", ids)
    .order("name");
  throwIfError(organizations.error);
  const roleById = new Map((members.data ?? []).map((row) => [row.organization_id, row.role]));
  return (organizations.data ?? []).flatMap((organization) => {
    const role = roleById.get(organization.id);
    return role ? [{ organization, role }] : [];
  });
}

/** The user's memberships, cached per user. */
export function useMemberships(userId: string) {
  const { supabase } = useBackend();
  return useQuery({ queryKey: membershipsQueryKey(userId), queryFn: () => fetchMemberships(supabase, userId) });
}
