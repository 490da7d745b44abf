import type { EventNames } from "../api/get-event-names";

/**
 * What a member reads for an event key: the catalog's name ("AI inference"), or the key made
 * readable ("ai inference") for an event no longer in the catalog. The ledger and the usage
 * chart both speak this way, so one event has one name across the dashboard.
 */
export function eventName(eventKey: string, names: EventNames): string {
  return names.get(eventKey) ?? eventKey.replace(/[_.:-]+/g, " ");
}
