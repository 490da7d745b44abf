import { ErrorState, Skeleton } from "@/components/status";
import { errorMessage } from "@/lib/errors";
import { canManageBilling } from "@/lib/roles";
import type { OrganizationRole } from "@/types/billing";
import { useOpenCustomerPortal } from "../../plans/api/open-customer-portal";
import { useCardOnFile, type CardOnFile as Card } from "../api/auto-top-up";

/** Stripe's card `brand` values as people write them. */
const BRANDS: Record<string, string> = {
  amex: "American Express", cartes_bancaires: "Cartes Bancaires", diners: "Diners Club", discover: "Discover",
  eftpos_au: "eftpos", jcb: "JCB", mastercard: "Mastercard", unionpay: "UnionPay", visa: "Visa",
};

/** "Visa ending in 4242, expires 12/2034". */
export function describeCard(card: Card): string {
  const brand = (card.brand && BRANDS[card.brand]) ?? "Card";
  const expiry = card.expMonth && card.expYear ? `, expires ${String(card.expMonth).padStart(2, "0")}/${card.expYear}` : "";
  return `${brand} ending in ${card.last4}${expiry}`;
}

/**
 * The card auto top-up charges (saved at Checkout, replaced in the customer portal), or that
 * there is none; owners and admins get the way to add or change it.
 */
export function CardOnFile({ organizationId, role }: { organizationId: string; role: OrganizationRole }) {
  const card = useCardOnFile(organizationId);
  const portal = useOpenCustomerPortal();
  if (card.isPending) return <Skeleton label="Loading the card on file…" lines={2} />;
  if (card.isError) return <ErrorState title="The card on file could not be loaded." error={card.error} onRetry={() => void card.refetch()} />;
  return (
    <div className="stack">
      {card.data ? (
        <p>{describeCard(card.data)}</p>
      ) : (
        <p>No card on file. A card is saved when you buy a credit pack or subscribe, or add one in the billing portal.</p>
      )}
      {canManageBilling(role) ? (
        <div>
          <button type="button" className="button secondary" disabled={portal.isPending} onClick={() => portal.mutate(organizationId)}>
            {portal.isPending ? "Opening the billing portal…" : card.data ? "Change card" : "Add a card"}
          </button>
          {portal.isError ? <p role="alert" className="field-error">{errorMessage(portal.error)}</p> : null}
        </div>
      ) : null}
    </div>
  );
}
