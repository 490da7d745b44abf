import { useQuery } from "@tanstack/react-query";
import { throwIfError } from "@/lib/errors";
import { useBackend, type BillingSupabaseClient } from "@/lib/supabase";
import { operatorKey, type Period } from "./operator-keys";

/** operator_overview's answer (CONTRACT.md "Operators"), plus trials. */
export interface OperatorOverview {
  mrr: { currency: string; amount: number }[];
  subscriptions: {
    active: number;
    trialing: number;
    past_due: number;
    unpaid: number;
    canceled_in_period: number;
    new_in_period: number;
  };
  trials?: { started_in_period: number; converted: number };
  payment_success_rate: number | null;
  credits: { granted: number; consumed: number; expired: number; outstanding: number };
}

export interface ConsumptionRow {
  day: string;
  event_key: string;
  events: number;
  credits: number;
}

export interface TopConsumer {
  organization_id: string;
  name: string;
  events: number;
  credits: number;
}

export interface OverviewData {
  overview: OperatorOverview;
  consumption: ConsumptionRow[];
  topConsumers: TopConsumer[];
}

export const overviewQueryKey = (period: Period) => [...operatorKey, "overview", period.from, period.to] as const;

/** The overview figures, consumption by day and event, and the top consumers for a period. */
export async function fetchOverview(supabase: BillingSupabaseClient, period: Period): Promise<OverviewData> {
  const args = { p_from: period.from, p_to: period.to };
  const [overview, consumption, top] = await Promise.all([
    supabase.rpc("operator_overview", args),
    supabase.rpc("operator_consumption", args),
    supabase.rpc("operator_top_consumers", { ...args, p_limit: 10 }),
  ]);
  throwIfError(overview.error);
  throwIfError(consumption.error);
  throwIfError(top.error);
  return {
    overview: overview.data as unknown as OperatorOverview,
    consumption: (consumption.data ?? []).map((row) => ({ ...row, events: Number(row.events), credits: Number(row.credits) })),
    topConsumers: (top.data ?? []).map((row) => ({ ...row, events: Number(row.events), credits: Number(row.credits) })),
  };
}

export function useOverview(period: Period) {
  const { supabase } = useBackend();
  return useQuery({ queryKey: overviewQueryKey(period), queryFn: () => fetchOverview(supabase, period) });
}
