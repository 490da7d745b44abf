import type { OrganizationRole } from "@/types/billing";

/** Checkout, the customer portal and the low-balance threshold are for owners and admins (CONTRACT.md). */
export function canManageBilling(role: OrganizationRole): boolean {
  return role === "owner" || role === "admin";
}

/** Why a member cannot see a control, in words. */
export const MEMBER_BILLING_NOTICE =
  "Only owners and admins of this organization can change billing. Ask one of them to make this change.";
