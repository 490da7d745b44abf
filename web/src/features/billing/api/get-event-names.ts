import { useQuery } from "@tanstack/react-query";
import { throwIfError } from "@/lib/errors";
import { useBackend, type BillingSupabaseClient } from "@/lib/supabase";

/** credit_events.event_key → credit_events.name: how the catalog calls each kind of usage. */
export type EventNames = ReadonlyMap<string, string>;

// The catalog is the same for every organization, so the key is not per organization.
export const eventNamesQueryKey = ["catalog", "event-names"] as const;

/** The catalog's name for every event key (inactive events too: old usage still names them). */
export async function fetchEventNames(supabase: BillingSupabaseClient): Promise<Map<string, string>> {
  const { data, error } = await supabase.from("credit_events").select("event_key, name");
  throwIfError(error);
  return new Map((data ?? []).map((event) => [event.event_key, event.name]));
}

export function useEventNames() {
  const { supabase } = useBackend();
  return useQuery({ queryKey: eventNamesQueryKey, queryFn: () => fetchEventNames(supabase), staleTime: 5 * 60_000 });
}
