import type { ReactNode } from "react";
import { canManageBilling, MEMBER_BILLING_NOTICE } from "@/lib/roles";
import type { OrganizationRole } from "@/types/billing";

/** Renders billing controls for owners and admins; members get the reason instead. */
export function ManagerOnly({ role, children }: { role: OrganizationRole; children: ReactNode }) {
  if (canManageBilling(role)) return <>{children}</>;
  return (
    <p className="notice" role="note">
      {MEMBER_BILLING_NOTICE} (Your role: {role}.)
    </p>
  );
}
