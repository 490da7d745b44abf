import { useId, useState, type FormEvent } from "react";
import { EmptyState, ErrorState, Pager, Skeleton } from "@/components/status";
import { errorMessage, isServiceUnreachable } from "@/lib/errors";
import { formatCreditDelta, formatCreditNumber, formatCredits, formatDateTime, formatMoney, humanize } from "@/lib/format";
import { canManageBilling } from "@/lib/roles";
import { CREDIT_TRANSACTION_KINDS, type CreditTransactionKind, type OrganizationRole } from "@/types/billing";
import { BalanceCard } from "../../components/balance-card";
import { ManagerOnly } from "../../components/manager-only";
import { useCreditProducts } from "../api/get-credit-products";
import { useLedger } from "../api/get-ledger";
import { useSetThreshold, useThreshold } from "../api/low-balance-threshold";
import { useStartCreditCheckout } from "../api/start-credit-checkout";
import { SpendLimitCard } from "./spend-limit-card";
import { AutoTopUpForm } from "./auto-top-up-form";
import { CardOnFile } from "./card-on-file";
import { packValues, type PackValue } from "../pack-value";

function ThresholdForm({ organizationId, role }: { organizationId: string; role: OrganizationRole }) {
  const threshold = useThreshold(organizationId);
  const save = useSetThreshold(organizationId);
  const [draft, setDraft] = useState<string | null>(null);
  const inputId = useId();
  if (threshold.isPending) return <Skeleton label="Loading threshold…" lines={3} />;
  if (threshold.isError) return <ErrorState title="The threshold could not be loaded." error={threshold.error} onRetry={() => void threshold.refetch()} />;
  const current = threshold.data;
  if (!canManageBilling(role)) {
    return (
      <>
        <p>Alert when the balance falls below {formatCredits(current)}.</p>
        <ManagerOnly role={role}>{null}</ManagerOnly>
      </>
    );
  }
  const value = draft ?? String(current);
  const hintId = `${inputId}-hint`;
  function submit(event: FormEvent) {
    event.preventDefault();
    save.mutate(Number(value), { onSuccess: () => setDraft(null) });
  }
  return (
    <form className="inline-form" onSubmit={submit}>
      <label htmlFor={inputId}>Alert me when the balance falls below (credits)</label>
      <input
        id={inputId}
        type="number"
        min={0}
        step={1}
        required
        inputMode="numeric"
        aria-describedby={hintId}
        value={value}
        onChange={(e) => setDraft(e.target.value)}
      />
      <button type="submit" className="button" disabled={save.isPending || Number(value) === current}>
        {save.isPending ? "Saving…" : "Save threshold"}
      </button>
      <p id={hintId} className="muted hint">
        Members see an alert on the Overview when the balance drops below this. 0 turns the alert off.
      </p>
      {save.isSuccess && draft === null ? <p role="status">Saved.</p> : null}
      {save.isError ? <p role="alert" className="field-error">{errorMessage(save.error)}</p> : null}
    </form>
  );
}

/** A pack's rate per 1,000 credits, and its saving against the dearest pack when it has one. */
function PackRate({ value, currency }: { value: PackValue | undefined; currency: string }) {
  if (!value) return null;
  // Minor units to two decimals of the currency, so $0.90 per 1,000 reads as such.
  const rate = formatMoney(Math.round(value.perThousandCredits), currency);
  return (
    <p className="pack-rate">
      {rate} per 1,000 credits
      {value.savingPercent > 0 ? <strong className="pack-saving"> · save {value.savingPercent}%</strong> : null}
    </p>
  );
}

function CreditPacks({ organizationId, role }: { organizationId: string; role: OrganizationRole }) {
  const products = useCreditProducts();
  const checkout = useStartCreditCheckout();
  if (products.isPending) return <Skeleton label="Loading credit packs…" lines={4} />;
  if (products.isError) return <ErrorState title="Credit packs could not be loaded." error={products.error} onRetry={() => void products.refetch()} />;
  if (products.data.length === 0) return <EmptyState>No credit packs are on sale right now.</EmptyState>;
  const values = packValues(products.data);
  return (
    <>
      <ManagerOnly role={role}>{null}</ManagerOnly>
      {checkout.isError ? <p role="alert" className="field-error">{errorMessage(checkout.error)}</p> : null}
      <ul className="packs">
        {products.data.map((product) => (
          <li key={product.id} className="card">
            <h3>{product.name}</h3>
            <p className="price">{formatMoney(product.unit_amount, product.currency)}</p>
            <p>{formatCredits(product.credits)}, never expire</p>
            <PackRate value={values.get(product.code)} currency={product.currency} />
            {canManageBilling(role) ? (
              <button
                type="button"
                className="button"
                disabled={checkout.isPending}
                onClick={() => checkout.mutate({ organization_id: organizationId, product_code: product.code })}
              >
                {checkout.isPending && checkout.variables?.product_code === product.code ? "Opening checkout…" : `Buy ${product.name}`}
              </button>
            ) : null}
          </li>
        ))}
      </ul>
    </>
  );
}

function Ledger({ organizationId }: { organizationId: string }) {
  const [kind, setKind] = useState<CreditTransactionKind | null>(null);
  const [page, setPage] = useState(0);
  const ledger = useLedger(organizationId, { kind, page });
  const filterId = useId();
  return (
    <div className="stack">
      <div className="inline-form">
        <label htmlFor={filterId}>Type</label>
        <select
          id={filterId}
          value={kind ?? ""}
          onChange={(event) => {
            setKind(event.target.value === "" ? null : (event.target.value as CreditTransactionKind));
            setPage(0);
          }}
        >
          <option value="">All types</option>
          {CREDIT_TRANSACTION_KINDS.map((k) => (
            <option key={k} value={k}>
              {humanize(k)}
            </option>
          ))}
        </select>
      </div>
      {ledger.data === undefined && !(ledger.isError && !isServiceUnreachable(ledger.error)) ? (
        <Skeleton label="Loading transactions…" lines={6} />
      ) : ledger.data === undefined ? (
        <ErrorState title="Transactions could not be loaded." error={ledger.error} onRetry={() => void ledger.refetch()} />
      ) : ledger.data.total === 0 ? (
        <EmptyState>{kind ? `No ${humanize(kind)} transactions.` : "No credit transactions yet."}</EmptyState>
      ) : ledger.data.rows.length === 0 ? (
        <EmptyState>
          This page is past the last transaction.{" "}
          <button type="button" className="link-button" onClick={() => setPage(0)}>
            Go to the first page
          </button>
        </EmptyState>
      ) : (
        <>
          <div className="table-scroll">
            <table className="cards-on-phone" aria-busy={ledger.isPlaceholderData}>
              <caption className="visually-hidden">Credit transactions, newest first</caption>
              <thead>
                <tr>
                  <th scope="col">Type</th>
                  <th scope="col">Source</th>
                  <th scope="col" className="num">Amount</th>
                  <th scope="col" className="num">Balance after</th>
                  <th scope="col">Time</th>
                </tr>
              </thead>
              <tbody>
                {ledger.data.rows.map((row) => (
                  <tr key={row.id}>
                    <td data-label="Type">
                      {humanize(row.kind)}
                      {row.event_key ? <small className="muted"> {row.event_key}</small> : null}
                      {row.kind === "adjustment" && row.description ? <small className="muted"> {row.description}</small> : null}
                    </td>
                    <td data-label="Source">{row.source}</td>
                    <td data-label="Amount" className={`num ${row.amount < 0 ? "negative" : "positive"}`}>{formatCreditDelta(row.amount)}</td>
                    <td data-label="Balance after" className="num">{formatCreditNumber(row.balance_after)}</td>
                    <td data-label="Time">{formatDateTime(row.created_at)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <Pager label="Transaction pages" page={page} pageSize={ledger.data.pageSize} total={ledger.data.total} onPage={setPage} />
        </>
      )}
    </div>
  );
}

/** Credits tab: balance, low-balance threshold, monthly spend limit, packs to buy, the card on file and auto top-up, and the ledger. */
export default function CreditsTab({ organizationId, role }: { organizationId: string; role: OrganizationRole }) {
  return (
    <div className="grid">
      <section className="card" aria-labelledby="cr-balance">
        <h2 id="cr-balance">Balance</h2>
        <BalanceCard organizationId={organizationId} />
      </section>
      <section className="card" aria-labelledby="cr-threshold">
        <h2 id="cr-threshold">Low-balance alert</h2>
        <ThresholdForm organizationId={organizationId} role={role} />
      </section>
      <section className="card" aria-labelledby="cr-spend-limit">
        <h2 id="cr-spend-limit">Monthly spend limit</h2>
        <SpendLimitCard organizationId={organizationId} role={role} />
      </section>
      <section className="card wide" aria-labelledby="cr-packs">
        <h2 id="cr-packs">Buy credits</h2>
        <CreditPacks organizationId={organizationId} role={role} />
      </section>
      <section className="card" aria-labelledby="cr-card">
        <h2 id="cr-card">Card on file</h2>
        <CardOnFile organizationId={organizationId} role={role} />
      </section>
      <section className="card" aria-labelledby="cr-auto-top-up">
        <h2 id="cr-auto-top-up">Auto top-up</h2>
        <AutoTopUpForm organizationId={organizationId} role={role} />
      </section>
      <section className="card wide" aria-labelledby="cr-ledger">
        <h2 id="cr-ledger">Transactions</h2>
        <Ledger organizationId={organizationId} />
      </section>
    </div>
  );
}
