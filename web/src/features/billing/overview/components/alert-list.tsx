import { EmptyState, QueryView, Skeleton } from "@/components/status";
import { errorMessage } from "@/lib/errors";
import { formatDateTime } from "@/lib/format";
import { useAlerts } from "../api/get-alerts";
import { useDismissAlert } from "../api/dismiss-alert";
import { useCreditBalance } from "../../api/get-credit-balance";
import { useThreshold } from "../../credits/api/low-balance-threshold";
import { bannerHolding, lowBalanceNow } from "../../alerts/action-alerts";
import { useActionAlerts } from "../../alerts/use-action-alerts";
import { NextStep } from "../../components/next-step";

/**
 * Active alerts (low balance, failed payment, trial ending, unusual usage), each dismissible,
 * except those a banner at the top of the page already shows with its action: each alert is
 * said once, and the list says how many the banners hold.
 */
export function AlertList({ organizationId, onDismissed }: { organizationId: string; onDismissed?: () => void }) {
  const alerts = useAlerts(organizationId);
  const dismiss = useDismissAlert(organizationId);
  const balance = useCreditBalance(organizationId);
  const threshold = useThreshold(organizationId);
  const banners = useActionAlerts(organizationId);
  // A low-balance row says what the balance was when it fired; show what is true now instead.
  const messageOf = (alert: { kind: string; message: string }) =>
    alert.kind === "low_balance" ? (lowBalanceNow(balance.data, threshold.data) ?? alert.message) : alert.message;
  return (
    <QueryView query={alerts} loading={<Skeleton label="Loading alerts…" lines={2} />} errorTitle="Alerts could not be loaded.">
      {(all) => {
        const list = all.filter((alert) => bannerHolding(alert, banners) === undefined);
        const held = all.length - list.length;
        if (all.length === 0) {
          return (
            <EmptyState>
              No active alerts.
              {threshold.data === 0 ? (
                <>
                  {" "}No low-balance alert is set, so nothing warns you before credits run out.
                  <NextStep actions={[{ tab: "credits", section: "low-balance-alert", label: "Set a low-balance alert" }]} toDo="set a low-balance alert" />
                </>
              ) : null}
            </EmptyState>
          );
        }
        return (
          <>
            {held > 0 ? (
              <p className="muted">
                {held === 1 ? "1 alert that needs action is shown" : `${held} alerts that need action are shown`} at the top of the page, with what to do.
              </p>
            ) : null}
            {dismiss.isError ? <p role="alert" className="field-error">{errorMessage(dismiss.error)}</p> : null}
            {list.length > 0 ? (
              <ul className="alerts">
                {list.map((alert) => (
                  <li key={alert.id} className={`alert alert-${alert.severity}`}>
                    <div>
                      <strong>{alert.title}</strong>
                      {messageOf(alert) ? <p>{messageOf(alert)}</p> : null}
                      <small>{formatDateTime(alert.created_at)}</small>
                    </div>
                    <button
                      type="button"
                      className="button secondary"
                      aria-label={`Dismiss alert: ${alert.title}`}
                      disabled={dismiss.isPending}
                      onClick={() => dismiss.mutate(alert.id, { onSuccess: onDismissed })}
                    >
                      Dismiss
                    </button>
                  </li>
                ))}
              </ul>
            ) : null}
          </>
        );
      }}
    </QueryView>
  );
}
