import { EmptyState, ErrorState, Loading } from "@/components/status";
import { formatCreditNumber, formatDate, formatMoney, humanize } from "@/lib/format";
import { useOverview, type ConsumptionRow } from "../api/get-overview";
import type { Period } from "../api/operator-keys";
import { BarChart, type ChartRow } from "./bar-chart";

/** One bar per UTC day of the period, stacked by event. */
function consumptionRows(rows: ConsumptionRow[], period: Period): { rows: ChartRow[]; events: string[] } {
  const events = [...new Set(rows.map((r) => r.event_key))].sort();
  const days: ChartRow[] = [];
  for (let t = new Date(period.from).getTime(); t < new Date(period.to).getTime(); t += 86_400_000) {
    const day = new Date(t).toISOString().slice(0, 10);
    const values: Record<string, number> = {};
    for (const row of rows) if (row.day === day) values[row.event_key] = (values[row.event_key] ?? 0) + row.credits;
    days.push({ category: day, values });
  }
  return { rows: days, events };
}

/** How the business is doing in the period: revenue, subscriptions, payments, credits, usage. */
export function OverviewPanel({ period }: { period: Period }) {
  const query = useOverview(period);
  if (query.isPending) return <Loading label="Loading the overview…" />;
  if (query.isError) return <ErrorState title="The overview could not be loaded." error={query.error} onRetry={() => void query.refetch()} />;
  const { overview, consumption, topConsumers, mrrTrend } = query.data;
  const trendCurrencies = [...new Set(mrrTrend.map((p) => p.currency))].sort();
  const s = overview.subscriptions;
  const usage = consumptionRows(consumption, period);
  const rate = overview.payment_success_rate;

  return (
    <div className="stack">
      <div className="op-stats">
        <section className="card" aria-labelledby="op-mrr">
          <h2 id="op-mrr">MRR</h2>
          {overview.mrr.length === 0 ? (
            <p className="big-number">—</p>
          ) : (
            <ul className="op-figures">
              {overview.mrr.map((m) => (
                <li key={m.currency} className="big-number">{formatMoney(m.amount, m.currency)}</li>
              ))}
            </ul>
          )}
          <p className="muted">Active and past-due subscriptions at their monthly equivalent (annual ÷ 12), now.</p>
        </section>
        <section className="card" aria-labelledby="op-payments">
          <h2 id="op-payments">Payment success</h2>
          <p className="big-number">{rate === null ? "—" : `${(rate * 100).toFixed(1)}%`}</p>
          <p className="muted">Paid of settled payments (invoices and credit packs) in the period.</p>
        </section>
        <section className="card" aria-labelledby="op-churn">
          <h2 id="op-churn">New and churned</h2>
          <dl className="facts">
            <dt>New subscriptions</dt>
            <dd>{s.new_in_period}</dd>
            <dt>Canceled</dt>
            <dd>{s.canceled_in_period}</dd>
            {overview.trials ? (
              <>
                <dt>Trials started</dt>
                <dd>{overview.trials.started_in_period}</dd>
                <dt>Trials now paying</dt>
                <dd>{overview.trials.converted}</dd>
              </>
            ) : null}
          </dl>
        </section>
      </div>

      <div className="grid">
        {trendCurrencies.map((currency) => (
          <section className="card wide" key={currency}>
            <BarChart
              title={`MRR trend (${currency.toUpperCase()})`}
              description={`MRR in ${currency.toUpperCase()} at the end of each UTC day of the period, from the subscriptions as they are now.`}
              categoryLabel="Day"
              width={1040}
              rows={mrrTrend.filter((p) => p.currency === currency).map((p) => ({ category: p.day, values: { mrr: p.amount } }))}
              series={[{ key: "mrr", label: "MRR" }]}
              formatCategory={(day) => formatDate(`${day}T12:00:00Z`)}
              formatValue={(amount) => formatMoney(amount, currency)}
            />
          </section>
        ))}
        <section className="card">
          <BarChart
            title="Subscriptions by status (now)"
            description="Number of subscriptions that are active, trialing, past due and unpaid."
            categoryLabel="Status"
            rows={(["active", "trialing", "past_due", "unpaid"] as const).map((status) => ({ category: status, values: { count: s[status] } }))}
            series={[{ key: "count", label: "Subscriptions" }]}
            formatCategory={humanize}
          />
        </section>
        <section className="card">
          <BarChart
            title="Credits in the period"
            description="Credits granted, consumed and expired in the period, and outstanding now."
            categoryLabel="Credits"
            rows={(["granted", "consumed", "expired", "outstanding"] as const).map((k) => ({ category: k, values: { credits: overview.credits[k] } }))}
            series={[{ key: "credits", label: "Credits" }]}
            formatCategory={(c) => (c === "expired" ? "expired (breakage)" : c === "outstanding" ? "outstanding (now)" : c)}
            formatValue={formatCreditNumber}
          />
        </section>
        <section className="card wide">
          {usage.events.length === 0 ? (
            <>
              <h2>Consumption by event</h2>
              <EmptyState>No credits were consumed in this period.</EmptyState>
            </>
          ) : (
            <BarChart
              title="Consumption by event, per day"
              description="Credits consumed each UTC day of the period, stacked by event."
              categoryLabel="Day"
              width={1040}
              rows={usage.rows}
              series={usage.events.map((e) => ({ key: e, label: e }))}
              formatCategory={(day) => formatDate(`${day}T12:00:00Z`)}
              formatValue={formatCreditNumber}
            />
          )}
        </section>
        <section className="card wide">
          {topConsumers.length === 0 ? (
            <>
              <h2>Top consumers</h2>
              <EmptyState>Nobody consumed credits in this period.</EmptyState>
            </>
          ) : (
            <BarChart
              title="Top consumers"
              description="The organizations that consumed the most credits in the period."
              categoryLabel="Organization"
              width={1040}
              rows={topConsumers.map((c) => ({ category: c.organization_id, values: { credits: c.credits } }))}
              series={[{ key: "credits", label: "Credits consumed" }]}
              formatCategory={(id) => topConsumers.find((c) => c.organization_id === id)?.name ?? id}
              formatValue={formatCreditNumber}
            />
          )}
        </section>
      </div>
    </div>
  );
}
