/**
 * The ledger in the catalog's words. The database speaks in kinds (`grant`, `consumption`,
 * `reservation`…), event keys (`api_call_premium`) and references (`cs_…`, `batch:<id>`); a
 * member reads "Premium API call", "Bought 5,000 credits" or "Subscription credits expired".
 */
import type { CreditSource, CreditTransaction, CreditTransactionKind } from "@/types/billing";
import type { EventNames } from "../api/get-event-names";
import { eventName as catalogEventName } from "../components/event-name";

/** What the labels need besides the row: the catalog's event names and what each payment bought. */
export interface LedgerCatalog {
  eventNames: EventNames;
  /**
   * billing_history.stripe_reference → its description: the credit pack's product name for a
   * purchase or an auto top-up ("5,000 credits", "Auto top-up: 5,000 credits"), the plan for a
   * subscription invoice. A grant's reference is that payment's Stripe id.
   */
  paymentNames: ReadonlyMap<string, string>;
}

export const EMPTY_CATALOG: LedgerCatalog = { eventNames: new Map(), paymentNames: new Map() };

/** The type filter's words for each kind. */
export const KIND_LABELS: Record<CreditTransactionKind, string> = {
  grant: "Credits added",
  consumption: "Usage",
  expiry: "Expired",
  refund: "Refund",
  adjustment: "Adjustment by support",
  reservation: "Reserved",
  release: "Reservation returned",
};

export const SOURCE_LABELS: Record<CreditSource, string> = {
  purchased: "Purchased credits",
  subscription: "Subscription credits",
};

/** Stripe ids a grant's reference can hold: the payment that bought it. */
const PAYMENT_REFERENCE = /^(cs|pi|in|ch)_/;

/** The batch id of a row written by consume_credits_batch (`batch:<id>`), else null. */
export function batchIdOf(reference: string | null): string | null {
  return reference?.startsWith("batch:") ? reference.slice("batch:".length) : null;
}

/** The catalog name of an event, or the key made readable for an event no longer in the catalog. */
export function eventName(eventKey: string, catalog: LedgerCatalog): string {
  return catalogEventName(eventKey, catalog.eventNames);
}

/** One line of plain words for a ledger row (or the rows of one operation, which share these fields). */
export function describeTransaction(row: CreditTransaction, catalog: LedgerCatalog): string {
  const event = row.event_key ? eventName(row.event_key, catalog) : null;
  switch (row.kind) {
    case "consumption": {
      if (event) return event;
      // A batch writes one row per lot it drew on, with how many events it held.
      const count = /^(\d+) usage events? in one batch$/.exec(row.description)?.[1];
      if (batchIdOf(row.reference) !== null) return count ? `Usage batch (${count} events)` : "Usage batch";
      return "Usage";
    }
    case "grant": {
      const payment = row.reference && PAYMENT_REFERENCE.test(row.reference) ? catalog.paymentNames.get(row.reference) : undefined;
      if (row.source === "subscription") {
        return payment ? `Subscription credits: ${payment}` : "Subscription credits for the billing period";
      }
      if (payment) return payment.startsWith("Auto top-up") ? payment : `Bought ${payment}`;
      return "Purchased credits added";
    }
    case "expiry":
      return `${SOURCE_LABELS[row.source]} expired`;
    case "refund":
      return "Taken back for a refund";
    case "adjustment":
      return row.description ? `Adjustment by support: ${row.description}` : "Adjustment by support";
    case "reservation":
      return event ? `Reserved for ${event}` : "Reserved";
    case "release":
      if (/settlement/.test(row.description)) return event ? `Unused reservation returned (${event})` : "Unused reservation returned";
      return event ? `Reservation released (${event})` : "Reservation released";
  }
}

/** What a row points at, for the CSV's reference column: the Stripe id, the batch, the call or the reservation. */
export function referenceOf(row: CreditTransaction): string {
  return row.reference ?? row.consumption_id ?? row.reservation_id ?? "";
}
