import { useId, useState } from "react";
import { EmptyState, ErrorState, Loading } from "@/components/status";
import { errorMessage } from "@/lib/errors";
import { formatDateTime, humanize } from "@/lib/format";
import { useJobRuns } from "../api/get-job-runs";
import { useNotifications, useRetryNotification, type DeliveryStatus } from "../api/get-notifications";
import { useStripeEvents, type InboxStatus } from "../api/get-stripe-events";
import type { Period } from "../api/operator-keys";
import { useReconcile } from "../api/reconcile";
import { useRedriveEvent } from "../api/redrive-event";
import { ExportButtons } from "./export-buttons";

function WebhookInbox() {
  const id = useId();
  const [status, setStatus] = useState<InboxStatus>("parked");
  const events = useStripeEvents(status);
  const redrive = useRedriveEvent();
  return (
    <section className="card stack" aria-labelledby={`${id}-h`}>
      <h2 id={`${id}-h`}>Webhook inbox</h2>
      <div className="inline-form">
        <label htmlFor={`${id}-status`}>Show</label>
        <select id={`${id}-status`} value={status} onChange={(e) => setStatus(e.target.value as InboxStatus)}>
          <option value="parked">Parked</option>
          <option value="received">Received, not applied yet</option>
          <option value="processed">Processed</option>
          <option value="ignored">Ignored</option>
          <option value="all">All</option>
        </select>
      </div>
      {redrive.isError ? <p role="alert" className="field-error">{errorMessage(redrive.error)}</p> : null}
      {redrive.isSuccess ? <p role="status">Re-driven {redrive.variables}: {redrive.data.status}.</p> : null}
      {events.isPending ? <Loading label="Loading the inbox…" /> : events.isError ? (
        <ErrorState title="The inbox could not be loaded." error={events.error} onRetry={() => void events.refetch()} />
      ) : events.data.length === 0 ? <EmptyState>No {status === "all" ? "" : `${status} `}events.</EmptyState> : (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Webhook events</caption>
            <thead><tr><th scope="col">Event</th><th scope="col">Type</th><th scope="col">Status</th><th scope="col">Received</th><th scope="col">Error</th><th scope="col"><span className="visually-hidden">Action</span></th></tr></thead>
            <tbody>
              {events.data.map((e) => (
                <tr key={e.id}>
                  <td><code>{e.id}</code></td><td>{e.type}</td><td>{e.status} ({e.attempts}×)</td><td>{formatDateTime(e.received_at)}</td>
                  <td className="op-error">{e.last_error ?? ""}</td>
                  <td>{e.status === "parked" ? (
                    <button type="button" className="button secondary" disabled={redrive.isPending} onClick={() => redrive.mutate(e.id)} aria-label={`Re-drive ${e.id}`}>Re-drive</button>
                  ) : null}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function JobRunsSection() {
  const runs = useJobRuns();
  return (
    <section className="card stack" aria-labelledby="op-jobs">
      <h2 id="op-jobs">Scheduled jobs</h2>
      {runs.isPending ? <Loading label="Loading job runs…" /> : runs.isError ? (
        <ErrorState title="The job runs could not be loaded." error={runs.error} onRetry={() => void runs.refetch()} />
      ) : (
        <>
          <div className="table-wrap">
            <table>
              <caption className="visually-hidden">Jobs and their last run</caption>
              <thead><tr><th scope="col">Job</th><th scope="col">Schedule</th><th scope="col">Last run</th><th scope="col">Outcome</th></tr></thead>
              <tbody>
                {runs.data.jobs.map((j) => (
                  <tr key={j.name}>
                    <th scope="row" title={j.description}>{j.name}{j.enabled ? "" : " (disabled)"}</th><td><code>{j.schedule}</code></td>
                    <td>{j.last_run ? formatDateTime(j.last_run.started_at) : "never"}</td>
                    <td>{j.last_run ? <span className={j.last_run.outcome === "failed" ? "badge badge-bad" : "badge badge-good"}>{j.last_run.outcome}</span> : "—"}{j.last_run?.error ? <span className="op-error"> {j.last_run.error}</span> : null}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <details>
            <summary>Latest {runs.data.runs.length} runs</summary>
            <ul className="op-list">
              {runs.data.runs.map((r) => (
                <li key={r.id}>{formatDateTime(r.started_at)} · {r.job_name} · {r.outcome} · {r.duration_ms} ms{r.error ? <span className="op-error"> · {r.error}</span> : null}</li>
              ))}
            </ul>
          </details>
        </>
      )}
    </section>
  );
}

function DeliveriesSection() {
  const id = useId();
  const [status, setStatus] = useState<DeliveryStatus>("failed");
  const rows = useNotifications(status);
  const retry = useRetryNotification();
  return (
    <section className="card stack" aria-labelledby={`${id}-h`}>
      <h2 id={`${id}-h`}>Notification deliveries</h2>
      <div className="inline-form">
        <label htmlFor={`${id}-status`}>Show</label>
        <select id={`${id}-status`} value={status} onChange={(e) => setStatus(e.target.value as DeliveryStatus)}>
          <option value="failed">Failed</option>
          <option value="pending">Pending</option>
          <option value="delivered">Delivered</option>
          <option value="all">All</option>
        </select>
      </div>
      {retry.isError ? <p role="alert" className="field-error">{errorMessage(retry.error)}</p> : null}
      {retry.isSuccess ? <p role="status">Queued again for delivery.</p> : null}
      {rows.isPending ? <Loading label="Loading deliveries…" /> : rows.isError ? (
        <ErrorState title="The deliveries could not be loaded." error={rows.error} onRetry={() => void rows.refetch()} />
      ) : rows.data.length === 0 ? <EmptyState>No {status === "all" ? "" : `${status} `}deliveries.</EmptyState> : (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Notification deliveries</caption>
            <thead><tr><th scope="col">Channel</th><th scope="col">Type</th><th scope="col">Status</th><th scope="col">Attempts</th><th scope="col">Last error</th><th scope="col"><span className="visually-hidden">Action</span></th></tr></thead>
            <tbody>
              {rows.data.map((n) => (
                <tr key={`${n.channel}-${n.id}`}>
                  <td>{n.channel}{n.recipient ? ` to ${n.recipient}` : ""}</td><td>{n.type}</td><td>{n.status}</td><td>{n.attempts}</td>
                  <td className="op-error">{n.last_error ?? ""}</td>
                  <td>{n.status !== "delivered" ? (
                    <button type="button" className="button secondary" disabled={retry.isPending} onClick={() => retry.mutate({ channel: n.channel, id: n.id })}>Retry now</button>
                  ) : null}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function ReconciliationSection({ period }: { period: Period }) {
  const reconcile = useReconcile();
  const result = reconcile.data;
  return (
    <section className="card stack" aria-labelledby="op-reconcile">
      <h2 id="op-reconcile">Reconciliation with Stripe</h2>
      <p className="muted">Compares Stripe with our records for the period: subscriptions, paid invoices and their credits, paid credit packs and their grants, customers without an organization.</p>
      <div className="inline-form">
        <button type="button" className="button" disabled={reconcile.isPending} onClick={() => reconcile.mutate({ period })}>
          {reconcile.isPending ? "Comparing…" : "Compare with Stripe"}
        </button>
        {result && result.differences.some((d) => d.repairable) ? (
          <button type="button" className="button secondary" disabled={reconcile.isPending} onClick={() => reconcile.mutate({ period, repair: true })}>
            Repair all repairable
          </button>
        ) : null}
      </div>
      {reconcile.isError ? <p role="alert" className="field-error">{errorMessage(reconcile.error)}</p> : null}
      {result ? (
        <div role="status" className="stack">
          {result.repairs.length > 0 ? (
            <p>Repaired: {result.repairs.map((r) => `${r.stripe_id} ${r.outcome}${r.detail ? ` (${r.detail})` : ""}`).join("; ")}.</p>
          ) : null}
          {result.differences.length === 0 ? <p>Our records agree with Stripe for this period.</p> : (
            <div className="table-wrap">
              <table>
                <caption>{result.differences.length} difference(s)</caption>
                <thead><tr><th scope="col">Difference</th><th scope="col">Stripe object</th><th scope="col">Stripe says</th><th scope="col">We have</th><th scope="col"><span className="visually-hidden">Action</span></th></tr></thead>
                <tbody>
                  {result.differences.map((d) => (
                    <tr key={`${d.kind}-${d.stripe_id}`}>
                      <td>{humanize(d.kind)}</td><td><code>{d.stripe_id}</code></td>
                      <td><code className="op-json">{d.stripe ? JSON.stringify(d.stripe) : "—"}</code></td>
                      <td><code className="op-json">{d.ours ? JSON.stringify(d.ours) : "nothing"}</code></td>
                      <td>{d.repairable ? (
                        <button type="button" className="button secondary" disabled={reconcile.isPending}
                          onClick={() => reconcile.mutate({ period, repair: true, stripeIds: [d.stripe_id] })} aria-label={`Repair ${d.stripe_id}`}>Repair</button>
                      ) : <span className="muted">needs a person</span>}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </div>
      ) : null}
    </section>
  );
}

/** Running billing: the webhook inbox, jobs, outbound deliveries, reconciliation and exports. */
export function OperationsPanel({ period }: { period: Period }) {
  return (
    <div className="stack">
      <WebhookInbox />
      <ReconciliationSection period={period} />
      <DeliveriesSection />
      <JobRunsSection />
      <section className="card stack" aria-labelledby="op-export">
        <h2 id="op-export">Export every organization</h2>
        <ExportButtons organizationId={null} period={period} label="every organization for the period" />
      </section>
    </div>
  );
}
