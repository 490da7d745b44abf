import { useId, useState } from "react";
import { QueryView, Skeleton } from "@/components/status";
import { errorMessage } from "@/lib/errors";
import { formatCreditNumber, formatDate } from "@/lib/format";
import { canManageBilling } from "@/lib/roles";
import type { OrganizationRole } from "@/types/billing";
import { useCreditBalance } from "../../api/get-credit-balance";
import { AskManagers } from "../../components/ask-managers";
import { useCreditPrecedence, useSetCreditPrecedence, type CreditPrecedence } from "../api/credit-precedence";

export const SPENDING_ORDERS: readonly { value: CreditPrecedence; label: string; hint: string }[] = [
  { value: "purchased_first", label: "Purchased credits first", hint: "they never expire" },
  { value: "expiring_first", label: "Expiring credits first", hint: "use subscription credits before they expire" },
];

/** What the order means for this organization's credits now, in words. */
export function spendingOrderConsequence(
  order: CreditPrecedence,
  balance: { purchased: number; subscription: number; next_expiry_at: string | null; expiring_amount: number } | undefined,
): string {
  const expiring = balance && balance.next_expiry_at && balance.expiring_amount > 0
    ? `${formatCreditNumber(balance.expiring_amount)} subscription ${balance.expiring_amount === 1 ? "credit expires" : "credits expire"} on ${formatDate(balance.next_expiry_at)}`
    : null;
  if (order === "purchased_first") {
    return `Usage is paid from purchased credits until they run out, then from subscription credits.${
      expiring ? ` ${expiring}; whatever of them is still unused then is lost.` : " Subscription credits left at the end of their period expire unused."}`;
  }
  return `Usage is paid from subscription credits first, the soonest to expire first, and purchased credits are kept for later.${
    expiring ? ` ${expiring}.` : ""}`;
}

/** The order credits are spent in: owners and admins choose, members read it and whom to ask. */
export function SpendingOrderCard({ organizationId, role }: { organizationId: string; role: OrganizationRole }) {
  const precedence = useCreditPrecedence(organizationId);
  const balance = useCreditBalance(organizationId);
  const save = useSetCreditPrecedence(organizationId);
  // The choice shows at once (a controlled radio would otherwise snap back until the save
  // has started), and goes back to the stored order if the save fails.
  const [chosen, setChosen] = useState<CreditPrecedence | null>(null);
  const name = useId();
  const manager = canManageBilling(role);
  return (
    <QueryView query={precedence} loading={<Skeleton label="Loading the spending order…" lines={3} />} errorTitle="The spending order could not be loaded.">
      {(current) => {
        const shown = chosen ?? current;
        const consequence = spendingOrderConsequence(shown, balance.data);
        if (!manager) {
          const stored = SPENDING_ORDERS.find((o) => o.value === current)!;
          return (
            <div className="stack">
              <p>
                <strong>{stored.label}</strong> ({stored.hint}).
              </p>
              <p>{consequence}</p>
              <p className="muted">
                <AskManagers organizationId={organizationId} toDo="change the spending order" />
              </p>
            </div>
          );
        }
        return (
          <div className="stack">
            <fieldset className="choice-list" disabled={save.isPending}>
              <legend>Spend first</legend>
              {SPENDING_ORDERS.map((order) => (
                <label key={order.value}>
                  <input
                    type="radio"
                    name={name}
                    value={order.value}
                    checked={shown === order.value}
                    onChange={() => {
                      setChosen(order.value);
                      save.mutate(order.value, { onSettled: () => setChosen(null) });
                    }}
                  />
                  <span>
                    {order.label} <span className="muted">({order.hint})</span>
                  </span>
                </label>
              ))}
            </fieldset>
            <p aria-live="polite">{consequence}</p>
            {save.isSuccess ? <p role="status">Saved.</p> : null}
            {save.isError ? <p role="alert" className="field-error">{errorMessage(save.error)}</p> : null}
          </div>
        );
      }}
    </QueryView>
  );
}
