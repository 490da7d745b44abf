import { EmptyState } from "@/components/status";
import { formatCreditNumber, formatCredits, formatDateTime, formatDateUtc, formatMoney, humanize } from "@/lib/format";
import type { OrganizationDetail } from "../api/get-organization";

/**
 * How one organization spends, on its operator page: the credits its reservations hold, its
 * monthly spend limit, its auto top-up with the card it charges, and the recent top-ups. The
 * cards sit in the page's grid; lists are tables that scroll inside their card on a narrow screen.
 */
export function OrganizationSpending({ detail }: { detail: OrganizationDetail }) {
  return (
    <>
      <ReservationsCard reservations={detail.reservations} />
      <SpendLimitCard limit={detail.spend_limit} />
      <AutoTopUpCard setting={detail.auto_top_up} card={detail.card_on_file} />
      <TopUpsCard topUps={detail.top_ups} />
    </>
  );
}

function ReservationsCard({ reservations }: { reservations: OrganizationDetail["reservations"] }) {
  const held = reservations.live.reduce((sum, r) => sum + r.credits, 0);
  return (
    <section className="card wide" aria-labelledby="op-org-reservations">
      <h3 id="op-org-reservations">Reservations</h3>
      <h4>Live{reservations.live.length > 0 ? ` · ${formatCredits(held)} held` : ""}</h4>
      {reservations.live.length === 0 ? <EmptyState>No live reservations.</EmptyState> : (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Live reservations</caption>
            <thead>
              <tr><th scope="col">Reserved</th><th scope="col">Event</th><th scope="col" className="num">Quantity</th><th scope="col" className="num">Credits held</th><th scope="col">Expires</th><th scope="col">Reservation</th></tr>
            </thead>
            <tbody>
              {reservations.live.map((r) => (
                <tr key={r.id}>
                  <td>{formatDateTime(r.created_at)}</td><td>{r.event_key}</td><td className="num">{formatCreditNumber(r.quantity)}</td>
                  <td className="num">{formatCreditNumber(r.credits)}</td><td>{formatDateTime(r.expires_at)}</td><td><code>{r.id}</code></td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <h4>Recently closed</h4>
      {reservations.recent_closed.length === 0 ? <EmptyState>No closed reservations yet.</EmptyState> : (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Recently closed reservations</caption>
            <thead>
              <tr><th scope="col">Closed</th><th scope="col">Event</th><th scope="col" className="num">Credits reserved</th><th scope="col" className="num">Credits consumed</th><th scope="col">Status</th><th scope="col">Reservation</th></tr>
            </thead>
            <tbody>
              {reservations.recent_closed.map((r) => (
                <tr key={r.id}>
                  <td>{formatDateTime(r.closed_at)}</td><td>{r.event_key}</td><td className="num">{formatCreditNumber(r.credits)}</td>
                  <td className="num">{formatCreditNumber(r.credits_consumed ?? 0)}</td><td>{humanize(r.status)}</td><td><code>{r.id}</code></td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

function SpendLimitCard({ limit }: { limit: OrganizationDetail["spend_limit"] }) {
  return (
    <section className="card" aria-labelledby="op-org-spend-limit">
      <h3 id="op-org-spend-limit">Spend limit</h3>
      <dl className="facts">
        <dt>Monthly limit</dt>
        <dd>{limit.monthly_credits === null ? "No limit" : formatCredits(limit.monthly_credits)}</dd>
        <dt>Consumed since {formatDateUtc(limit.month_start)} (UTC)</dt>
        <dd>{formatCredits(limit.consumed_this_month)}</dd>
        <dt>Held by reservations</dt>
        <dd>{formatCredits(limit.reserved)}</dd>
        {limit.remaining === null ? null : (
          <>
            <dt>Remaining this month</dt>
            <dd>{formatCredits(limit.remaining)}{limit.remaining === 0 ? " · limit reached" : ""}</dd>
          </>
        )}
      </dl>
    </section>
  );
}

function AutoTopUpCard({ setting, card }: { setting: OrganizationDetail["auto_top_up"]; card: OrganizationDetail["card_on_file"] }) {
  return (
    <section className="card" aria-labelledby="op-org-auto-top-up">
      <h3 id="op-org-auto-top-up">Auto top-up</h3>
      {setting === null ? <p>Never set up.</p> : (
        <dl className="facts">
          <dt>Status</dt>
          <dd>{setting.enabled ? "On" : `Off${setting.disabled_reason ? `: ${setting.disabled_reason}` : " (turned off by a member)"}`}</dd>
          <dt>Buys</dt>
          <dd>{setting.product_name} ({formatCredits(setting.product_credits)})</dd>
          <dt>When the balance is below</dt>
          <dd>{formatCredits(setting.threshold)}</dd>
          <dt>At most</dt>
          <dd>{setting.monthly_limit} a month</dd>
          <dt>Failed payments in a row</dt>
          <dd>{setting.consecutive_failures}</dd>
        </dl>
      )}
      <h4>Card on file</h4>
      <p>
        {card === null ? "No card on file." : (
          <>
            {card.brand ? humanize(card.brand) : "Card"} ending {card.last4}
            {card.exp_month && card.exp_year ? `, expires ${String(card.exp_month).padStart(2, "0")}/${card.exp_year}` : ""}
          </>
        )}
      </p>
    </section>
  );
}

function TopUpsCard({ topUps }: { topUps: OrganizationDetail["top_ups"] }) {
  return (
    <section className="card wide" aria-labelledby="op-org-top-ups">
      <h3 id="op-org-top-ups">Recent top-ups</h3>
      {topUps.length === 0 ? <EmptyState>No top-ups yet.</EmptyState> : (
        <div className="table-wrap">
          <table>
            <caption className="visually-hidden">Top-ups</caption>
            <thead>
              <tr><th scope="col">Made</th><th scope="col" className="num">Credits</th><th scope="col" className="num">Amount</th><th scope="col">Status</th><th scope="col">Failure</th><th scope="col">PaymentIntent</th></tr>
            </thead>
            <tbody>
              {topUps.map((t) => (
                <tr key={t.id}>
                  <td>{formatDateTime(t.created_at)}</td><td className="num">{formatCreditNumber(t.credits)}</td><td className="num">{formatMoney(t.amount, t.currency)}</td>
                  <td>{humanize(t.status)}</td>
                  <td>{t.failure_message ?? t.failure_code ?? ""}{t.failure_message && t.failure_code ? <span className="muted"> ({t.failure_code})</span> : null}</td>
                  <td><code>{t.stripe_payment_intent_id ?? ""}</code></td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
