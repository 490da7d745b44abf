import { describe, expect, it } from "vitest";
import { transaction } from "@/test/fixtures";
import { describeTransaction, referenceOf, type LedgerCatalog } from "./ledger-labels";

const catalog: LedgerCatalog = {
  eventNames: new Map([["api_call_premium", "Premium API call"], ["ai_inference", "AI inference"]]),
  paymentNames: new Map([
    ["cs_pack", "5,000 credits"],
    ["pi_auto", "Auto top-up: 1,000 credits"],
    ["in_sub", "Starter (monthly)"],
  ]),
};

describe("ledger labels", () => {
  it("names consumptions and reservations by the catalog's event name, never the key", () => {
    expect(describeTransaction(transaction(1, { event_key: "api_call_premium" }), catalog)).toBe("Premium API call");
    expect(describeTransaction(transaction(2, { kind: "reservation", event_key: "ai_inference", description: "credits reserved" }), catalog))
      .toBe("Reserved for AI inference");
    expect(describeTransaction(transaction(3, { kind: "release", event_key: "ai_inference", description: "reservation released: credits returned" }), catalog))
      .toBe("Reservation released (AI inference)");
    expect(describeTransaction(transaction(4, { kind: "release", event_key: "ai_inference", description: "reserved credits returned for the settlement" }), catalog))
      .toBe("Unused reservation returned (AI inference)");
    // An event since removed from the catalog still reads as words.
    expect(describeTransaction(transaction(5, { event_key: "old_event_key" }), catalog)).toBe("old event key");
  });

  it("names grants by what paid for them: the pack's product name, the auto top-up, the plan", () => {
    const grant = { kind: "grant" as const, amount: 5000, description: "credits granted" };
    expect(describeTransaction(transaction(1, { ...grant, source: "purchased", reference: "cs_pack" }), catalog)).toBe("Bought 5,000 credits");
    expect(describeTransaction(transaction(2, { ...grant, source: "purchased", reference: "pi_auto" }), catalog)).toBe("Auto top-up: 1,000 credits");
    expect(describeTransaction(transaction(3, { ...grant, source: "subscription", reference: "in_sub", description: "subscription credits for the billing period" }), catalog))
      .toBe("Subscription credits: Starter (monthly)");
    expect(describeTransaction(transaction(4, { ...grant, source: "purchased", reference: "manual-1" }), catalog)).toBe("Purchased credits added");
  });

  it("says batches, expiries, refunds and adjustments in words", () => {
    expect(describeTransaction(transaction(1, { event_key: null, reference: "batch:0b9c", description: "12 usage events in one batch" }), catalog))
      .toBe("Usage batch (12 events)");
    expect(describeTransaction(transaction(2, { kind: "expiry", source: "subscription", event_key: null, description: "credits expired" }), catalog))
      .toBe("Subscription credits expired");
    expect(describeTransaction(transaction(3, { kind: "refund", source: "purchased", event_key: null, reference: "re_1" }), catalog))
      .toBe("Taken back for a refund");
    expect(describeTransaction(transaction(4, { kind: "adjustment", amount: 20, event_key: null, description: "Goodwill for the outage" }), catalog))
      .toBe("Adjustment by support: Goodwill for the outage");
  });

  it("gives each row a reference: the Stripe id or batch, else the call, else the reservation", () => {
    expect(referenceOf(transaction(1, { reference: "cs_pack" }))).toBe("cs_pack");
    expect(referenceOf(transaction(2, { consumption_id: "c-1" }))).toBe("c-1");
    expect(referenceOf(transaction(3, { kind: "reservation", reservation_id: "r-1" }))).toBe("r-1");
    expect(referenceOf(transaction(4))).toBe("");
  });
});
