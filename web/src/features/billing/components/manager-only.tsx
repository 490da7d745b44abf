import type { ReactNode } from "react";
import { canManageBilling, MEMBER_BILLING_NOTICE } from "@/lib/roles";
import type { OrganizationRole } from "@/types/billing";
import { AskManagers } from "./ask-managers";
import { useBillingViewer } from "./billing-viewer";

/**
 * Renders billing controls for owners and admins; members get the reason instead, naming the
 * owners and admins to ask (by email) when the page knows the organization.
 */
export function ManagerOnly({ role, children, toDo = "make this change", organizationId }: {
  role: OrganizationRole;
  children: ReactNode;
  toDo?: string;
  /** Whose owners to name; the Billing page's organization when not given. */
  organizationId?: string;
}) {
  const viewer = useBillingViewer();
  const named = organizationId ?? viewer?.organizationId;
  if (canManageBilling(role)) return <>{children}</>;
  return (
    <p className="notice" role="note">
      {named ? (
        <>
          Only owners and admins of this organization can change billing.{" "}
          <AskManagers organizationId={named} toDo={toDo} />
        </>
      ) : (
        MEMBER_BILLING_NOTICE
      )}{" "}
      (Your role: {role}.)
    </p>
  );
}
