import { useEffect, useId, useState, type FormEvent } from "react";
import { EmptyState, ErrorState, Skeleton } from "@/components/status";
import { errorMessage } from "@/lib/errors";
import { formatCredits, formatMoney } from "@/lib/format";
import { canManageBilling } from "@/lib/roles";
import type { OrganizationRole } from "@/types/billing";
import { BalanceCard } from "../../components/balance-card";
import { ManagerOnly } from "../../components/manager-only";
import { revealSection } from "../../tabs/tab-link";
import { useCreditProducts } from "../api/get-credit-products";
import { useSetThreshold, useThreshold } from "../api/low-balance-threshold";
import { useStartCreditCheckout } from "../api/start-credit-checkout";
import { SpendLimitCard } from "./spend-limit-card";
import { AutoTopUpForm } from "./auto-top-up-form";
import { CardOnFile } from "./card-on-file";
import { packValues, type PackValue } from "../pack-value";
import { Ledger } from "./ledger";
import { SpendingOrderCard } from "./spending-order-card";

function ThresholdForm({ organizationId, role }: { organizationId: string; role: OrganizationRole }) {
  const threshold = useThreshold(organizationId);
  const save = useSetThreshold(organizationId);
  const [draft, setDraft] = useState<string | null>(null);
  const inputId = useId();
  if (threshold.isPending) return <Skeleton label="Loading threshold…" lines={3} />;
  if (threshold.isError) return <ErrorState title="The threshold could not be loaded." error={threshold.error} onRetry={() => void threshold.refetch()} />;
  const current = threshold.data;
  if (!canManageBilling(role)) {
    return <p>{current > 0 ? `Alert when the balance falls below ${formatCredits(current)}.` : "No low-balance alert is set."}</p>;
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

/**
 * Credits tab: balance, the spending order, low-balance threshold, monthly spend limit, packs
 * to buy, the card on file and auto top-up, and the ledger. Members see every figure and one
 * notice naming the owners and admins to ask, instead of one per card.
 */
export default function CreditsTab({ organizationId, role }: { organizationId: string; role: OrganizationRole }) {
  // A link to a section (`?tab=credits#spending-order`) lands before this lazy tab rendered it.
  useEffect(() => {
    const section = window.location.hash.slice(1);
    if (section) revealSection(section);
  }, []);
  return (
    <div className="grid">
      {canManageBilling(role) ? null : (
        <div className="wide">
          <ManagerOnly role={role} organizationId={organizationId} toDo="buy credits or change these settings">{null}</ManagerOnly>
        </div>
      )}
      <section className="card" aria-labelledby="cr-balance">
        <h2 id="cr-balance">Balance</h2>
        <BalanceCard organizationId={organizationId} />
      </section>
      <section className="card" id="spending-order" aria-labelledby="cr-spending-order">
        <h2 id="cr-spending-order">Spending order</h2>
        <SpendingOrderCard organizationId={organizationId} role={role} />
      </section>
      <section className="card" id="low-balance-alert" aria-labelledby="cr-threshold">
        <h2 id="cr-threshold">Low-balance alert</h2>
        <ThresholdForm organizationId={organizationId} role={role} />
      </section>
      <section className="card" aria-labelledby="cr-spend-limit">
        <h2 id="cr-spend-limit">Monthly spend limit</h2>
        <SpendLimitCard organizationId={organizationId} role={role} />
      </section>
      <section className="card wide" id="buy-credits" aria-labelledby="cr-packs">
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
      <section className="card wide" id="transactions" aria-labelledby="cr-ledger">
        <h2 id="cr-ledger">Transactions</h2>
        <Ledger organizationId={organizationId} />
      </section>
    </div>
  );
}
