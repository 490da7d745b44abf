import { useMutation, useQuery, useQueryClient } from "@tanstack/react-query";
import { throwIfError } from "@/lib/errors";
import { useBackend, type BillingSupabaseClient } from "@/lib/supabase";
import type { Database } from "@/types/database";
import { billingKey } from "../../api/billing-keys";

type Args = Database["public"]["Functions"]["set_auto_top_up"]["Args"];

export const autoTopUpQueryKey = (organizationId: string) => [...billingKey(organizationId), "auto-top-up"] as const;
export const cardOnFileQueryKey = (organizationId: string) => [...billingKey(organizationId), "card-on-file"] as const;

/** The auto top-up setting as members read it (RLS), with the pack named by its code. */
export interface AutoTopUpSetting {
  enabled: boolean;
  productId: string;
  threshold: number;
  monthlyLimit: number;
  disabledReason: string | null;
}

/** The card auto top-up charges, or null when the organization has none. */
export interface CardOnFile {
  brand: string | null;
  last4: string;
  expMonth: number | null;
  expYear: number | null;
}

/** The organization's auto top-up setting, or null when it was never set. */
export async function fetchAutoTopUp(supabase: BillingSupabaseClient, organizationId: string): Promise<AutoTopUpSetting | null> {
  const { data, error } = await supabase
    .from("auto_top_up_settings")
    .select("enabled, credit_product_id, threshold, monthly_limit, disabled_reason")
    .eq("organization_id", organizationId)
    .maybeSingle();
  throwIfError(error);
  if (!data) return null;
  return {
    enabled: data.enabled,
    productId: data.credit_product_id,
    threshold: data.threshold,
    monthlyLimit: data.monthly_limit,
    disabledReason: data.disabled_reason,
  };
}

/** The card on file as the webhook last read it from Stripe. */
export async function fetchCardOnFile(supabase: BillingSupabaseClient, organizationId: string): Promise<CardOnFile | null> {
  const { data, error } = await supabase
    .from("cards_on_file")
    .select("stripe_payment_method_id, brand, last4, exp_month, exp_year")
    .eq("organization_id", organizationId)
    .maybeSingle();
  throwIfError(error);
  if (!data?.stripe_payment_method_id || !data.last4) return null;
  return { brand: data.brand, last4: data.last4, expMonth: data.exp_month, expYear: data.exp_year };
}

/** What `set_auto_top_up` takes: a pack code turns it on; null turns it off. */
export type AutoTopUpChange = { productCode: string; threshold: number; monthlyLimit: number } | null;

/** Turns auto top-up on, changes it, or turns it off (owners and admins). */
export async function setAutoTopUp(supabase: BillingSupabaseClient, organizationId: string, change: AutoTopUpChange): Promise<void> {
  const args: Args = change
    ? { p_organization_id: organizationId, p_product_code: change.productCode, p_threshold: change.threshold, p_monthly_limit: change.monthlyLimit }
    // The generated types cannot say that a null pack (which turns auto top-up off) is allowed.
    : ({ p_organization_id: organizationId, p_product_code: null, p_threshold: null } as unknown as Args);
  const { error } = await supabase.rpc("set_auto_top_up", args);
  throwIfError(error);
}

export function useAutoTopUp(organizationId: string) {
  const { supabase } = useBackend();
  return useQuery({ queryKey: autoTopUpQueryKey(organizationId), queryFn: () => fetchAutoTopUp(supabase, organizationId) });
}

export function useCardOnFile(organizationId: string) {
  const { supabase } = useBackend();
  return useQuery({ queryKey: cardOnFileQueryKey(organizationId), queryFn: () => fetchCardOnFile(supabase, organizationId) });
}

export function useSetAutoTopUp(organizationId: string) {
  const { supabase } = useBackend();
  const queryClient = useQueryClient();
  return useMutation({
    mutationFn: (change: AutoTopUpChange) => setAutoTopUp(supabase, organizationId, change),
    onSuccess: () => queryClient.invalidateQueries({ queryKey: autoTopUpQueryKey(organizationId) }),
  });
}
