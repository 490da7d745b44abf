import { EmptyState, ErrorState, Loading } from "@/components/status";
import { errorMessage } from "@/lib/errors";
import { formatDateTime } from "@/lib/format";
import { useAlerts } from "../api/get-alerts";
import { useDismissAlert } from "../api/dismiss-alert";

/** Active alerts (low balance, failed payment, trial ending, unusual usage), each dismissible. */
export function AlertList({ organizationId, onDismissed }: { organizationId: string; onDismissed?: () => void }) {
  const alerts = useAlerts(organizationId);
  const dismiss = useDismissAlert(organizationId);
  if (alerts.isPending) return <Loading label="Loading alerts…" />;
  if (alerts.isError) return <ErrorState title="Alerts could not be loaded." error={alerts.error} onRetry={() => void alerts.refetch()} />;
  if (alerts.data.length === 0) return <EmptyState>No active alerts.</EmptyState>;
  return (
    <>
      {dismiss.isError ? <p role="alert" className="field-error">{errorMessage(dismiss.error)}</p> : null}
      <ul className="alerts">
        {alerts.data.map((alert) => (
          <li key={alert.id} className={`alert alert-${alert.severity}`}>
            <div>
              <strong>{alert.title}</strong>
              {alert.message ? <p>{alert.message}</p> : null}
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
    </>
  );
}
