import { useState } from "react";
import { errorMessage } from "@/lib/errors";
import { canManageBilling } from "@/lib/roles";
import type { OrganizationRole } from "@/types/billing";
import { useOpenCustomerPortal } from "../plans/api/open-customer-portal";
import type { ActionAlert, ActionAlertAction } from "./action-alerts";
import { useActionAlerts } from "./use-action-alerts";
import { revealSection } from "../tabs/tab-link";
import { AskManagers } from "../components/ask-managers";

const ACTION_LABELS: Record<ActionAlertAction, string> = {
  "update-payment-method": "Update payment method",
  "update-card": "Update card",
  "buy-credits": "Buy credits",
  "auto-top-up": "Turn on auto top-up",
  "raise-spend-limit": "Raise the limit",
};

/**
 * The Credits tab heading each in-app action lands on (credits/components/credits-tab.tsx;
 * the Billing page test follows each action to its heading); the others open Stripe's portal.
 */
const ACTION_SECTIONS: Partial<Record<ActionAlertAction, string>> = {
  "buy-credits": "cr-packs",
  "auto-top-up": "cr-auto-top-up",
  "raise-spend-limit": "cr-spend-limit",
};

/**
 * Banners at the top of every tab for what needs doing now (a failed payment, a failed auto
 * top-up, the spend limit reached, a low balance), each with its action: owners and admins get
 * the button, members are told whom to ask, by name.
 */
export function ActionAlertBanners({
  organizationId,
  role,
  onOpenCredits,
}: {
  organizationId: string;
  role: OrganizationRole;
  /** Shows the Credits tab; the banner then brings the action's section into view. */
  onOpenCredits: () => void;
}) {
  const alerts = useActionAlerts(organizationId);
  const portal = useOpenCustomerPortal();
  // Which banner asked for the portal, so its progress and any error show on that banner only.
  const [portalFor, setPortalFor] = useState<ActionAlert["id"] | null>(null);
  if (alerts.length === 0) return null;
  const manager = canManageBilling(role);

  function act(alert: ActionAlert, action: ActionAlertAction) {
    const section = ACTION_SECTIONS[action];
    if (section === undefined) {
      setPortalFor(alert.id);
      portal.mutate(organizationId);
      return;
    }
    onOpenCredits();
    revealSection(section);
  }

  const opensPortal = (action: ActionAlertAction) => ACTION_SECTIONS[action] === undefined;

  return (
    <ul className="alert-banners" aria-label="Needs action">
      {alerts.map((alert) => (
        <li key={alert.id} className={`banner banner-${alert.tone}`}>
          <p>
            <strong>{alert.title}</strong> {alert.text}
            {manager ? null : (
              <>
                {" "}
                <AskManagers organizationId={organizationId} toDo={alert.ask} />
              </>
            )}
          </p>
          {manager ? (
            <span className="banner-actions">
              {alert.actions.map((action, index) => (
                <button
                  key={action}
                  type="button"
                  className={`button${index === 0 ? "" : " secondary"}`}
                  disabled={opensPortal(action) && portal.isPending}
                  onClick={() => act(alert, action)}
                >
                  {opensPortal(action) && portal.isPending && portalFor === alert.id ? "Opening the portal…" : ACTION_LABELS[action]}
                </button>
              ))}
            </span>
          ) : null}
          {portalFor === alert.id && portal.isError ? <p role="alert" className="field-error">{errorMessage(portal.error)}</p> : null}
        </li>
      ))}
    </ul>
  );
}
