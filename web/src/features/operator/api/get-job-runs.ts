import { useQuery } from "@tanstack/react-query";
import { throwIfError } from "@/lib/errors";
import { useBackend, type BillingSupabaseClient } from "@/lib/supabase";
import { operatorKey } from "./operator-keys";

export interface JobRun {
  id: number;
  job_name: string;
  started_at: string;
  duration_ms: number;
  outcome: string;
  error: string | null;
}

export interface JobRuns {
  jobs: Array<{ name: string; schedule: string; description: string; enabled: boolean; last_run: JobRun | null }>;
  runs: JobRun[];
}

export const jobRunsQueryKey = [...operatorKey, "job-runs"] as const;

/** Every scheduled job with its last run, and the latest runs. */
export async function fetchJobRuns(supabase: BillingSupabaseClient): Promise<JobRuns> {
  const { data, error } = await supabase.rpc("operator_job_runs", { p_limit: 50 });
  throwIfError(error);
  return data as unknown as JobRuns;
}

export function useJobRuns() {
  const { supabase } = useBackend();
  return useQuery({ queryKey: jobRunsQueryKey, queryFn: () => fetchJobRuns(supabase) });
}
