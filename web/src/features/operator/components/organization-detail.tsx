import { EmptyState, ErrorState, Loading } from "@/components/status";
import { formatCreditDelta, formatCreditNumber, formatCredits, formatDate, formatDateTime, formatMoney, humanize } from "@/lib/format";
import { useOrganization } from "../api/get-organization";
import type { Period } from "../api/operator-keys";
import { alertState } from "../alert-state";
import { AdjustCreditsForm } from "./adjust-credits-form";
import { ExportButtons } from "./export-buttons";
import { OrganizationSpending } from "./organization-spending";

/**
 * One organization's billing: subscription, balance, how it spends (reservations, spend limit,
 * auto top-up), lots, ledger, history, alerts, notifications.
 */
export function OrganizationDetailView({ organizationId, period, onBack }: { organizationId: string; period: Period; onBack: () => void }) {
  const query = useOrganization(organizationId);
  const back = (
    <button type="button" className="link-button" onClick={onBack}>
      ← All organizations
    </button>
  );
  if (query.isPending) return <>{back}<Loading label="Loading the organization…" /></>;
  if (query.isError) return <>{back}<ErrorState title="The organization could not be loaded." error={query.error} onRetry={() => void query.refetch()} /></>;
  const d = query.data;
  const subscription = d.subscriptions[0];

  return (
    <section className="stack" aria-labelledby="op-org-heading">
      {back}
      <h2 id="op-org-heading">{d.organization.name}</h2>
      <p className="muted org-id">
        <code>{d.organization.id}</code>
        {d.organization.stripe_customer_id ? <> · Stripe <code>{d.organization.stripe_customer_id}</code></> : null} · created {formatDate(d.organization.created_at)}
      </p>
      <div className="grid">
        <section className="card" aria-labelledby="op-org-sub">
          <h3 id="op-org-sub">Subscription</h3>
          {subscription ? (
            <dl className="facts">
              <dt>Plan</dt>
              <dd>{subscription.plan_name ?? "unknown price"} ({subscription.billing_interval}ly)</dd>
              <dt>Status</dt>
              <dd>{humanize(subscription.status)}{subscription.cancel_at_period_end ? " · cancels at period end" : ""}</dd>
              <dt>Period ends</dt>
              <dd>{subscription.current_period_end ? formatDate(subscription.current_period_end) : "—"}</dd>
              {subscription.grace_period_end ? (
                <>
                  <dt>Grace ends</dt>
                  <dd>{formatDate(subscription.grace_period_end)}</dd>
                </>
              ) : null}
              <dt>Stripe</dt>
              <dd><code>{subscription.stripe_subscription_id}</code></dd>
            </dl>
          ) : (
            <p>No subscription.</p>
          )}
        </section>
        <section className="card" aria-labelledby="op-org-balance">
          <h3 id="op-org-balance">Balance</h3>
          <p className="big-number">{formatCredits(d.balance.total)}</p>
          <p className="muted">
            {formatCreditNumber(d.balance.purchased)} purchased · {formatCreditNumber(d.balance.subscription)} subscription
            {d.balance.next_expiry_at ? ` · ${formatCreditNumber(d.balance.expiring_amount)} expire ${formatDate(d.balance.next_expiry_at)}` : ""}
          </p>
        </section>
        <section className="card wide">
          <AdjustCreditsForm organizationId={organizationId} />
        </section>
        <OrganizationSpending detail={d} />
        <section className="card wide" aria-labelledby="op-org-ledger">
          <h3 id="op-org-ledger">Ledger (latest {d.ledger.length})</h3>
          <ExportButtons organizationId={organizationId} period={period} label={`${d.organization.name} for the period`} />
          {d.ledger.length === 0 ? <EmptyState>No credit movements yet.</EmptyState> : (
            <div className="table-wrap">
              <table>
                <caption className="visually-hidden">Ledger</caption>
                <thead>
                  <tr><th scope="col">When</th><th scope="col">Type</th><th scope="col">Source</th><th scope="col" className="num">Amount</th><th scope="col" className="num">Balance after</th><th scope="col">Description</th></tr>
                </thead>
                <tbody>
                  {d.ledger.map((t) => (
                    <tr key={t.id}>
                      <td>{formatDateTime(t.created_at)}</td>
                      <td>{humanize(t.kind)}</td>
                      <td>{t.source}</td>
                      <td className="num">{formatCreditDelta(t.amount)}</td>
                      <td className="num">{formatCreditNumber(t.balance_after)}</td>
                      <td>{t.description || t.event_key || t.reference || ""}{t.kind === "adjustment" ? <span className="muted"> · by {t.actor_email ?? "the service role"}</span> : null}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </section>
        <section className="card wide" aria-labelledby="op-org-lots">
          <h3 id="op-org-lots">Lots</h3>
          {d.lots.length === 0 ? <EmptyState>No credit lots.</EmptyState> : (
            <div className="table-wrap">
              <table>
                <caption className="visually-hidden">Credit lots</caption>
                <thead><tr><th scope="col">Lot</th><th scope="col">Source</th><th scope="col" className="num">Granted</th><th scope="col" className="num">Remaining</th><th scope="col">Expires</th><th scope="col">Reference</th></tr></thead>
                <tbody>
                  {d.lots.map((l) => (
                    <tr key={l.id}>
                      <td>{l.id}</td><td>{l.source}</td><td className="num">{formatCreditNumber(l.granted)}</td><td className="num">{formatCreditNumber(l.remaining)}</td>
                      <td>{l.expires_at ? formatDateTime(l.expires_at) : "never"}</td><td><code>{l.reference ?? ""}</code></td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </section>
        <section className="card wide" aria-labelledby="op-org-history">
          <h3 id="op-org-history">Billing history</h3>
          {d.history.length === 0 ? <EmptyState>No payments yet.</EmptyState> : (
            <div className="table-wrap">
              <table>
                <caption className="visually-hidden">Billing history</caption>
                <thead><tr><th scope="col">Date</th><th scope="col">Description</th><th scope="col" className="num">Amount</th><th scope="col">Status</th></tr></thead>
                <tbody>
                  {d.history.map((h) => (
                    <tr key={h.id}><td>{formatDate(h.occurred_at)}</td><td>{h.description || humanize(h.kind)}</td><td className="num">{formatMoney(h.amount, h.currency)}</td><td>{humanize(h.status)}</td></tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </section>
        <section className="card" aria-labelledby="op-org-alerts">
          <h3 id="op-org-alerts">Alerts</h3>
          {d.alerts.length === 0 ? <EmptyState>No alerts.</EmptyState> : (
            <ul className="alerts">
              {d.alerts.map((a) => (
                <li key={a.id} className="alert">
                  <span><strong>{a.title}</strong> <span className="muted">{humanize(a.severity)} · {formatDateTime(a.created_at)}{alertState(a)}</span><br />{a.message}</span>
                </li>
              ))}
            </ul>
          )}
        </section>
        <section className="card" aria-labelledby="op-org-notifications">
          <h3 id="op-org-notifications">Notifications</h3>
          {d.notifications.length === 0 ? <EmptyState>No notifications.</EmptyState> : (
            <ul className="op-list">
              {d.notifications.map((n) => (
                <li key={n.id}>{n.type} · <strong>{n.status}</strong> · {n.attempts} attempt(s) · {formatDateTime(n.created_at)}{n.last_error ? <span className="field-error"> · {n.last_error}</span> : null}</li>
              ))}
            </ul>
          )}
          <h3>Members</h3>
          <ul className="op-list">
            {d.members.map((m) => (
              <li key={m.user_id}>{m.email} · {m.role}</li>
            ))}
          </ul>
        </section>
      </div>
    </section>
  );
}
