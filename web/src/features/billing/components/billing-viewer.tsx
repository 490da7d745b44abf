/**
 * Which organization the Billing page shows and the viewer's role in it, for the parts deep
 * inside a tab (empty states, notices) that offer an action to owners and admins and name
 * whom to ask to members, without threading the role through every card.
 */
import { createContext, useContext } from "react";
import type { OrganizationRole } from "@/types/billing";

export interface BillingViewer {
  organizationId: string;
  role: OrganizationRole;
}

const BillingViewerContext = createContext<BillingViewer | null>(null);

export const BillingViewerProvider = BillingViewerContext.Provider;

/** The viewer, or null outside a Billing page (a card rendered on its own). */
export function useBillingViewer(): BillingViewer | null {
  return useContext(BillingViewerContext);
}
