import { useQuery } from "@tanstack/react-query";
import { throwIfError } from "@/lib/errors";
import { useBackend, type BillingSupabaseClient } from "@/lib/supabase";
import { operatorKey } from "./operator-keys";

/** operator_organization's answer: one organization's whole billing picture. */
export interface OrganizationDetail {
  organization: { id: string; name: string; stripe_customer_id: string | null; low_balance_threshold: number; created_at: string };
  subscriptions: Array<{
    stripe_subscription_id: string;
    status: string;
    plan_name: string | null;
    billing_interval: string;
    current_period_end: string | null;
    cancel_at_period_end: boolean;
    grace_period_end: string | null;
  }>;
  balance: { total: number; purchased: number; subscription: number; next_expiry_at: string | null; expiring_amount: number };
  lots: Array<{ id: number; source: string; granted: number; remaining: number; expires_at: string | null; reference: string | null; created_at: string }>;
  ledger: Array<{
    id: number;
    created_at: string;
    kind: string;
    source: string;
    amount: number;
    balance_after: number;
    event_key: string | null;
    reference: string | null;
    description: string;
    actor_id: string | null;
    /** Who made the movement (the operator, for an adjustment); null for the service role and the system. */
    actor_email: string | null;
  }>;
  history: Array<{ id: string; occurred_at: string; kind: string; status: string; description: string; amount: number; currency: string }>;
  alerts: Array<{ id: string; kind: string; severity: string; title: string; message: string; created_at: string; dismissed_at: string | null }>;
  notifications: Array<{ id: string; type: string; status: string; attempts: number; last_error: string | null; created_at: string }>;
  members: Array<{ user_id: string; email: string; role: string }>;
}

export const organizationQueryKey = (organizationId: string) => [...operatorKey, "organization", organizationId] as const;

export async function fetchOrganization(supabase: BillingSupabaseClient, organizationId: string): Promise<OrganizationDetail> {
  const { data, error } = await supabase.rpc("operator_organization", { p_organization_id: organizationId });
  throwIfError(error);
  return data as unknown as OrganizationDetail;
}

export function useOrganization(organizationId: string) {
  const { supabase } = useBackend();
  return useQuery({ queryKey: organizationQueryKey(organizationId), queryFn: () => fetchOrganization(supabase, organizationId) });
}
