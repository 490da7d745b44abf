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
  alerts: Array<{ id: string; kind: string; severity: string; title: string; message: string; created_at: string; dismissed_at: string | null; resolved_at: string | null; resolved_reason: string | null }>;
  notifications: Array<{ id: string; type: string; status: string; attempts: number; last_error: string | null; created_at: string }>;
  members: Array<{ user_id: string; email: string; role: string }>;
  reservations: {
    /** Open and not past their expiry, soonest to expire first: these credits are held. */
    live: OperatorReservation[];
    /** The latest ten closed ones, newest first; one past its expiry shows as expired, swept or not. */
    recent_closed: Array<OperatorReservation & { status: "settled" | "released" | "expired"; credits_consumed: number | null; closed_at: string }>;
  };
  /** get_spend_limit's figures, as the members see them. */
  spend_limit: { monthly_credits: number | null; month_start: string; consumed_this_month: number; reserved: number; remaining: number | null };
  /** Null when auto top-up was never set up. */
  auto_top_up: {
    enabled: boolean;
    product_code: string;
    product_name: string;
    product_credits: number;
    threshold: number;
    monthly_limit: number;
    consecutive_failures: number;
    disabled_reason: string | null;
    updated_at: string;
  } | null;
  /** The card auto top-up charges; null when there is none. */
  card_on_file: { brand: string | null; last4: string; exp_month: number | null; exp_year: number | null; observed_at: string } | null;
  /** The latest 20 top-ups, newest first. */
  top_ups: Array<{
    id: string;
    credits: number;
    amount: number;
    currency: string;
    status: "pending" | "processing" | "requires_action" | "succeeded" | "failed";
    failure_code: string | null;
    failure_message: string | null;
    stripe_payment_intent_id: string | null;
    created_at: string;
    finished_at: string | null;
  }>;
}

export interface OperatorReservation {
  id: string;
  event_key: string;
  quantity: number;
  credits: number;
  expires_at: string;
  created_at: string;
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
