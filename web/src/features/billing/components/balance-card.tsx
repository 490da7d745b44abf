import { QueryView, Skeleton } from "@/components/status";
import { formatCredits, formatDate } from "@/lib/format";
import { useCreditBalance } from "../api/get-credit-balance";
import { BUY_CREDITS, NextStep } from "./next-step";

/** Spendable balance split by source, what reservations hold, and what expires next. Shared by Overview and Credits. */
export function BalanceCard({ organizationId }: { organizationId: string }) {
  const balance = useCreditBalance(organizationId);
  return (
    <QueryView query={balance} loading={<Skeleton label="Loading balance…" lines={4} tall />} errorTitle="The balance could not be loaded.">
      {(b) => (
    <div>
      {/* A hidden word rather than aria-label, which ARIA does not allow on a paragraph. */}
      <p className="big-number">
        <span className="visually-hidden">Balance: </span>
        {formatCredits(b.total)}
      </p>
      <dl className="facts">
        <dt>Purchased</dt>
        <dd>{formatCredits(b.purchased)}</dd>
        <dt>Subscription</dt>
        <dd>{formatCredits(b.subscription)}</dd>
        {/* Held by live reservations (settled or released soon); not part of the balance above. */}
        <dt>Reserved</dt>
        <dd>{formatCredits(b.reserved ?? 0)}</dd>
        <dt>Expires next</dt>
        <dd>
          {b.next_expiry_at && b.expiring_amount > 0
            ? `${formatCredits(b.expiring_amount)} on ${formatDate(b.next_expiry_at)}`
            : "Nothing expiring"}
        </dd>
      </dl>
      {b.total === 0 && (b.reserved ?? 0) === 0 ? <NextStep actions={[BUY_CREDITS]} toDo="buy credits" /> : null}
    </div>
      )}
    </QueryView>
  );
}
