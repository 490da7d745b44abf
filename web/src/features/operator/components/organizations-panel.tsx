import { useId, useState } from "react";
import { EmptyState, ErrorState, Loading, Pager } from "@/components/status";
import { formatCreditNumber, formatDate, formatMoney, humanize } from "@/lib/format";
import { ORGANIZATIONS_PAGE_SIZE, useOrganizations, type OrganizationQuery, type OrganizationSort } from "../api/get-organizations";
import type { Period } from "../api/operator-keys";
import { OrganizationDetailView } from "./organization-detail";

const SORTS: { value: OrganizationSort; label: string }[] = [
  { value: "name", label: "Name" },
  { value: "balance", label: "Balance" },
  { value: "consumed_this_month", label: "Consumed this month" },
  { value: "last_payment_at", label: "Last payment" },
  { value: "status", label: "Status" },
  { value: "created_at", label: "Created" },
];

/** Find an organization (searched, sorted and paged by the database), then open it. */
export function OrganizationsPanel({ period }: { period: Period }) {
  const id = useId();
  const [query, setQuery] = useState<OrganizationQuery>({ search: "", sort: "name", descending: false, page: 0 });
  const [typed, setTyped] = useState("");
  const [openId, setOpenId] = useState<string | null>(null);
  const list = useOrganizations(query);

  if (openId) return <OrganizationDetailView organizationId={openId} period={period} onBack={() => setOpenId(null)} />;

  return (
    <section className="stack" aria-labelledby={`${id}-heading`}>
      <h2 id={`${id}-heading`}>Organizations</h2>
      <form
        className="inline-form"
        role="search"
        onSubmit={(event) => {
          event.preventDefault();
          setQuery({ ...query, search: typed.trim(), page: 0 });
        }}
      >
        <label htmlFor={`${id}-search`}>Search</label>
        <input id={`${id}-search`} type="search" value={typed} onChange={(e) => setTyped(e.target.value)} placeholder="Name, organization id or cus_…" />
        <button type="submit" className="button">Search</button>
        <label htmlFor={`${id}-sort`}>Sort by</label>
        <select id={`${id}-sort`} value={query.sort} onChange={(e) => setQuery({ ...query, sort: e.target.value as OrganizationSort, page: 0 })}>
          {SORTS.map((s) => (
            <option key={s.value} value={s.value}>{s.label}</option>
          ))}
        </select>
        <label>
          <input type="checkbox" checked={query.descending} onChange={(e) => setQuery({ ...query, descending: e.target.checked, page: 0 })} /> Descending
        </label>
      </form>
      {list.isPending ? (
        <Loading label="Loading organizations…" />
      ) : list.isError ? (
        <ErrorState title="The organizations could not be loaded." error={list.error} onRetry={() => void list.refetch()} />
      ) : list.data.rows.length === 0 ? (
        <EmptyState>{query.search ? `No organization matches “${query.search}”.` : "There are no organizations yet."}</EmptyState>
      ) : (
        <>
          <div className="table-wrap">
            <table>
              <caption className="visually-hidden">Organizations</caption>
              <thead>
                <tr>
                  <th scope="col">Organization</th>
                  <th scope="col">Plan</th>
                  <th scope="col">Status</th>
                  <th scope="col" className="num">Balance</th>
                  <th scope="col" className="num">Consumed this month</th>
                  <th scope="col">Last payment</th>
                </tr>
              </thead>
              <tbody>
                {list.data.rows.map((row) => (
                  <tr key={row.organization_id}>
                    <th scope="row">
                      <button type="button" className="link-button" onClick={() => setOpenId(row.organization_id)}>
                        {row.name}
                      </button>
                    </th>
                    <td>{row.plan_name ? `${row.plan_name} (${row.billing_interval}ly)` : "—"}</td>
                    <td>{row.status ? humanize(row.status) : "none"}</td>
                    <td className="num">{formatCreditNumber(Number(row.balance))}</td>
                    <td className="num">{formatCreditNumber(Number(row.consumed_this_month))}</td>
                    <td>
                      {row.last_payment_at
                        ? `${formatMoney(Number(row.last_payment_amount), row.last_payment_currency ?? "usd")} ${humanize(row.last_payment_status ?? "")}, ${formatDate(row.last_payment_at)}`
                        : "—"}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <Pager page={query.page} pageSize={ORGANIZATIONS_PAGE_SIZE} total={list.data.total} onPage={(page) => setQuery({ ...query, page })} label="Organizations pages" />
        </>
      )}
    </section>
  );
}
