import type { OrganizationManager } from "../api/get-organization-managers";

/** At most this many people are named; the rest are counted. */
const NAMED = 3;

/**
 * Whom a member asks, in one sentence: "Ask dana@example.com (owner) or abe@example.com (admin)
 * to buy credits." Owners come first (the list arrives in that order). With nobody to name
 * (the list could not be read), the sentence still says who can act.
 */
export function askManagersSentence(managers: readonly OrganizationManager[] | undefined, toDo: string): string {
  if (!managers || managers.length === 0) return `Ask an owner or admin of this organization to ${toDo}.`;
  const named = managers.slice(0, NAMED).map((m) => `${m.email} (${m.role})`);
  const others = managers.length - named.length;
  if (others > 0) named.push(`one of ${others} other ${others === 1 ? "owner or admin" : "owners and admins"}`);
  return `Ask ${new Intl.ListFormat("en", { type: "disjunction" }).format(named)} to ${toDo}.`;
}
