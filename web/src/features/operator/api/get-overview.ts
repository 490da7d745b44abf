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
  /** outstanding: owed now across every organization, spendable or held by a live reservation. */
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

export interface MrrPoint {
  day: string;
  currency: string;
  amount: number;
}

/** The longest period the MRR trend is drawn for (operator_mrr_trend's own limit). */
export const MRR_TREND_MAX_DAYS = 400;

export interface OverviewData {
  overview: OperatorOverview;
  /** Empty when the period is longer than MRR_TREND_MAX_DAYS. */
  mrrTrend: MrrPoint[];
  consumption: ConsumptionRow[];
  topConsumers: TopConsumer[];
}

export const overviewQueryKey = (period: Period) => [...operatorKey, "overview", period.from, period.to] as const;

/** The overview figures, consumption by day and event, and the top consumers for a period. */
export async function fetchOverview(supabase: BillingSupabaseClient, period: Period): Promise<OverviewData> {
  const args = { p_from: period.from, p_to: period.to };
  const days = (new Date(period.to).getTime() - new Date(period.from).getTime()) / 86_400_000;
  const [overview, consumption, top, trend] = await Promise.all([
    supabase.rpc("operator_overview", args),
    supabase.rpc("operator_consumption", args),
    supabase.rpc("operator_top_consumers", { ...args, p_limit: 10 }),
    days <= MRR_TREND_MAX_DAYS ? supabase.rpc("operator_mrr_trend", args) : Promise.resolve({ data: [], error: null }),
  ]);
  throwIfError(overview.error);
  throwIfError(trend.error);
  throwIfError(consumption.error);
  throwIfError(top.error);
  return {
    overview: overview.data as unknown as OperatorOverview,
    mrrTrend: (trend.data ?? []).map((row) => ({ ...row, amount: Number(row.amount) })),
    consumption: (consumption.data ?? []).map((row) => ({ ...row, events: Number(row.events), credits: Number(row.credits) })),
    topConsumers: (top.data ?? []).map((row) => ({ ...row, events: Number(row.events), credits: Number(row.credits) })),
  };
}

export function useOverview(period: Period) {
  const { supabase } = useBackend();
  return useQuery({ queryKey: overviewQueryKey(period), queryFn: () => fetchOverview(supabase, period) });
}
