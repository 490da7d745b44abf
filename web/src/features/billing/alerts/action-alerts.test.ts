import { describe, expect, it } from "vitest";
import { subscription } from "@/test/fixtures";
import { actionAlerts, lowBalanceNow } from "./action-alerts";

const balance = (total: number) => ({ total, purchased: total, subscription: 0, next_expiry_at: null, expiring_amount: 0 });

describe("alerts that need action", () => {
  it("a past-due subscription asks for a new payment method by the end of its grace period", () => {
    const [alert, ...rest] = actionAlerts({
      subscription: subscription({ status: "past_due", grace_period_end: "2026-12-08T12:00:00Z" }),
      balance: balance(1000),
      threshold: 100,
    });
    expect(rest).toEqual([]);
    expect(alert).toMatchObject({ id: "past-due", tone: "critical", actions: ["update-payment-method"] });
    expect(alert!.text).toMatch(/^Update the payment method by .*2026/);
  });

  it("a low balance says the balance as it is now and offers to buy credits or turn on auto top-up", () => {
    const [alert] = actionAlerts({ subscription: subscription(), balance: balance(100), threshold: 500 });
    expect(alert).toMatchObject({ id: "low-balance", actions: ["buy-credits", "auto-top-up"] });
    expect(alert!.text).toBe("The balance is 100 credits, below your alert threshold of 500 credits.");
  });

  it("resolves by itself: no banner once the balance is back above the threshold or the invoice is paid", () => {
    expect(actionAlerts({ subscription: subscription({ status: "active" }), balance: balance(600), threshold: 500 })).toEqual([]);
    expect(actionAlerts({ subscription: null, balance: balance(0), threshold: 0 })).toEqual([]);
    expect(actionAlerts({ subscription: undefined, balance: undefined, threshold: undefined })).toEqual([]);
  });

  it("a stored low-balance alert's text is replaced by what is true now", () => {
    expect(lowBalanceNow(balance(100), 500)).toBe("The balance is 100 credits now, below the threshold of 500 credits.");
    expect(lowBalanceNow(balance(900), 500)).toMatch(/^Resolved: the balance is back to 900 credits/);
  });
});
