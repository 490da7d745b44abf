import { useState } from "react";
import { EmptyState, ErrorState, Pager, Skeleton } from "@/components/status";
import { isServiceUnreachable } from "@/lib/errors";
import { formatDate, formatMoney, humanize } from "@/lib/format";
import { useBillingHistory } from "../api/get-billing-history";
import { BUY_CREDITS, CHOOSE_A_PLAN, NextStep } from "../../components/next-step";

/** History tab: payments, invoices and refunds with links to Stripe's invoice and receipt. */
export default function HistoryTab({ organizationId }: { organizationId: string }) {
  const [page, setPage] = useState(0);
  const history = useBillingHistory(organizationId, page);
  if (history.data === undefined) {
    if (history.isError && !isServiceUnreachable(history.error)) return <ErrorState title="Billing history could not be loaded." error={history.error} onRetry={() => void history.refetch()} />;
    return <Skeleton label="Loading billing history…" lines={5} />;
  }
  if (history.data.rows.length === 0 && page > 0) {
    return (
      <EmptyState>
        This page is past the last payment.{" "}
        <button type="button" className="link-button" onClick={() => setPage(0)}>
          Go to the first page
        </button>
      </EmptyState>
    );
  }
  if (history.data.rows.length === 0) {
    return (
      <EmptyState>
        No payments yet. Invoices and receipts appear here after the first payment.
        <NextStep actions={[CHOOSE_A_PLAN, BUY_CREDITS]} toDo="choose a plan or buy credits" />
      </EmptyState>
    );
  }
  return (
    <section className="card" aria-labelledby="history-heading">
      <h2 id="history-heading">Payments and invoices</h2>
      <div className="table-scroll">
        <table className="cards-on-phone" aria-busy={history.isPlaceholderData}>
          <caption className="visually-hidden">Payments and invoices, newest first</caption>
          <thead>
            <tr>
              <th scope="col">Date</th>
              <th scope="col">Description</th>
              <th scope="col" className="num">Amount</th>
              <th scope="col">Status</th>
              <th scope="col">Documents</th>
            </tr>
          </thead>
          <tbody>
            {history.data.rows.map((row) => (
              <tr key={row.id}>
                <td data-label="Date">{formatDate(row.occurred_at)}</td>
                <td data-label="Description">{row.description || humanize(row.kind)}</td>
                <td data-label="Amount" className="num">{formatMoney(row.amount, row.currency)}</td>
                <td data-label="Status">
                  <span className={`badge badge-${row.status === "paid" ? "good" : row.status === "failed" ? "bad" : "neutral"}`}>
                    {humanize(row.status)}
                  </span>
                </td>
                <td data-label="Documents" className="links">
                  {row.invoice_url ? <a href={row.invoice_url} target="_blank" rel="noreferrer">Invoice<span className="visually-hidden"> for {formatDate(row.occurred_at)} (opens in a new tab)</span></a> : null}
                  {row.invoice_pdf_url ? <a href={row.invoice_pdf_url} target="_blank" rel="noreferrer">PDF<span className="visually-hidden"> of the invoice for {formatDate(row.occurred_at)}</span></a> : null}
                  {row.receipt_url ? <a href={row.receipt_url} target="_blank" rel="noreferrer">Receipt<span className="visually-hidden"> for {formatDate(row.occurred_at)} (opens in a new tab)</span></a> : null}
                  {!row.invoice_url && !row.invoice_pdf_url && !row.receipt_url ? <span className="muted">—</span> : null}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <Pager label="History pages" page={page} pageSize={history.data.pageSize} total={history.data.total} onPage={setPage} />
    </section>
  );
}
