import { errorMessage } from "@/lib/errors";
import { canManageBilling } from "@/lib/roles";
import type { OrganizationRole } from "@/types/billing";
import { useCreditBalance } from "../api/get-credit-balance";
import { useSubscription } from "../api/get-subscription";
import { useThreshold } from "../credits/api/low-balance-threshold";
import { useOpenCustomerPortal } from "../plans/api/open-customer-portal";
import { actionAlerts, type ActionAlertAction } from "./action-alerts";

const ACTION_LABELS: Record<ActionAlertAction, string> = {
  "update-payment-method": "Update payment method",
  "buy-credits": "Buy credits",
  "auto-top-up": "Turn on auto top-up",
};

/**
 * Banners at the top of every tab for what needs doing now (a failed payment, a low balance),
 * each with its action: owners and admins get the button, members are told who can act.
 */
export function ActionAlertBanners({
  organizationId,
  role,
  onOpenCredits,
}: {
  organizationId: string;
  role: OrganizationRole;
  onOpenCredits: () => void;
}) {
  const subscription = useSubscription(organizationId);
  const balance = useCreditBalance(organizationId);
  const threshold = useThreshold(organizationId);
  const portal = useOpenCustomerPortal();
  const alerts = actionAlerts({ subscription: subscription.data, balance: balance.data, threshold: threshold.data });
  if (alerts.length === 0) return null;
  const manager = canManageBilling(role);

  function act(action: ActionAlertAction) {
    if (action === "update-payment-method") portal.mutate(organizationId);
    else onOpenCredits();
  }

  return (
    <ul className="alert-banners" aria-label="Needs action">
      {alerts.map((alert) => (
        <li key={alert.id} className={`banner banner-${alert.tone}`}>
          <p>
            <strong>{alert.title}</strong> {alert.text}
            {manager ? null : " An owner or admin of this organization can act on it."}
          </p>
          {manager ? (
            <span className="banner-actions">
              {alert.actions.map((action, index) => (
                <button
                  key={action}
                  type="button"
                  className={`button${index === 0 ? "" : " secondary"}`}
                  disabled={action === "update-payment-method" && portal.isPending}
                  onClick={() => act(action)}
                >
                  {action === "update-payment-method" && portal.isPending ? "Opening the portal…" : ACTION_LABELS[action]}
                </button>
              ))}
            </span>
          ) : null}
          {alert.id === "past-due" && portal.isError ? <p role="alert" className="field-error">{errorMessage(portal.error)}</p> : null}
        </li>
      ))}
    </ul>
  );
}
