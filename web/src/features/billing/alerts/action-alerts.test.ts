import { describe, expect, it } from "vitest";
import { subscription } from "@/test/fixtures";
import { actionAlerts, bannerHolding, lowBalanceNow, type ActionAlertFigures } from "./action-alerts";

const balance = (total: number) => ({ total, purchased: total, subscription: 0, next_expiry_at: null, expiring_amount: 0 });
const spendLimit = (monthly: number | null, consumed: number, reserved = 0) => ({
  monthly_credits: monthly,
  month_start: "2026-12-01T00:00:00+00:00",
  consumed_this_month: consumed,
  reserved,
  remaining: monthly === null ? null : Math.max(0, monthly - consumed - reserved),
});
type OpenAlert = NonNullable<ActionAlertFigures["alerts"]>[number];
const openAlert = (kind: OpenAlert["kind"], data: OpenAlert["data"] = {}): OpenAlert => ({ kind, data, created_at: "2026-12-01T10:00:00Z" });
const quiet = { subscription: subscription(), balance: balance(1000), threshold: 100 };

describe("alerts that need action", () => {
  it("a past-due subscription asks for a new payment method by the end of its grace period", () => {
    const [alert, ...rest] = actionAlerts({
      subscription: subscription({ status: "past_due", grace_period_end: "2026-12-08T12:00:00Z" }),
      balance: balance(1000),
      threshold: 100,
      // The failed payment's own row says the same thing: one banner, not two.
      alerts: [openAlert("payment_failed")],
    });
    expect(rest).toEqual([]);
    expect(alert).toMatchObject({ id: "past-due", tone: "critical", actions: ["update-payment-method"], ask: "update the payment method" });
    expect(alert!.text).toMatch(/^Update the payment method by .*2026/);
  });

  it("an open payment_failed alert on a subscription not (yet) past due also asks for the payment method", () => {
    expect(actionAlerts({ ...quiet, alerts: [openAlert("payment_failed")] })).toMatchObject([
      { id: "payment-failed", tone: "critical", actions: ["update-payment-method"] },
    ]);
    expect(actionAlerts({ ...quiet, subscription: subscription({ status: "canceled" }), alerts: [openAlert("payment_failed")] })).toEqual([]);
  });

  it("a low balance says the balance now and offers to buy, and auto top-up only with a card on file and auto top-up off", () => {
    const low = { subscription: subscription(), balance: balance(100), threshold: 500 };
    const [alert] = actionAlerts({ ...low, hasCardOnFile: true, autoTopUpEnabled: false });
    expect(alert).toMatchObject({ id: "low-balance", actions: ["buy-credits", "auto-top-up"], ask: "buy credits or turn on auto top-up" });
    expect(alert!.text).toBe("The balance is 100 credits, below your alert threshold of 500 credits.");
    expect(actionAlerts({ ...low, hasCardOnFile: true, autoTopUpEnabled: null })[0]!.actions).toEqual(["buy-credits", "auto-top-up"]);
    // No card to charge, auto top-up already on, or not known yet: buying is the only action.
    expect(actionAlerts({ ...low, hasCardOnFile: false, autoTopUpEnabled: false })[0]).toMatchObject({ actions: ["buy-credits"], ask: "buy credits" });
    expect(actionAlerts({ ...low, hasCardOnFile: true, autoTopUpEnabled: true })[0]!.actions).toEqual(["buy-credits"]);
    expect(actionAlerts(low)[0]!.actions).toEqual(["buy-credits"]);
  });

  it("a failed auto top-up asks for the card, and says when auto top-up was turned off", () => {
    const [alert] = actionAlerts({ ...quiet, alerts: [openAlert("auto_top_up_failed")], autoTopUpEnabled: true });
    expect(alert).toMatchObject({ id: "auto-top-up-failed", tone: "critical", actions: ["update-card"], ask: "update the card on file" });
    expect(alert!.text).not.toMatch(/off/);
    const [off] = actionAlerts({ ...quiet, alerts: [openAlert("auto_top_up_failed")], autoTopUpEnabled: false });
    expect(off!.text).toMatch(/Auto top-up is off until it is turned on again\.$/);
  });

  it("the spend limit reached offers to raise it, with this month's figures and the reset date", () => {
    const [alert] = actionAlerts({ ...quiet, spendLimit: spendLimit(1000, 900, 100) });
    expect(alert).toMatchObject({ id: "spend-limit", tone: "warning", actions: ["raise-spend-limit"], ask: "raise the spend limit" });
    expect(alert!.text).toBe("1,000 of the 1,000-credit limit used this month; usage beyond it is refused until Jan 1, 2027 unless the limit is raised.");
  });

  it("a refusal below the limit keeps the banner until the limit is raised or removed", () => {
    const refused = [openAlert("spend_limit", { month: "2026-12-01", limit: 1000, usage: 990 })];
    expect(actionAlerts({ ...quiet, spendLimit: spendLimit(1000, 990), alerts: refused }).map((a) => a.id)).toEqual(["spend-limit"]);
    expect(actionAlerts({ ...quiet, spendLimit: spendLimit(2000, 990), alerts: refused })).toEqual([]);
    expect(actionAlerts({ ...quiet, spendLimit: spendLimit(null, 990), alerts: refused })).toEqual([]);
    // Last month's refusal says nothing about this month.
    expect(actionAlerts({ ...quiet, spendLimit: spendLimit(1000, 10), alerts: [openAlert("spend_limit", { month: "2026-11-01", limit: 1000 })] })).toEqual([]);
  });

  it("orders what stops payments before what stops usage", () => {
    const ids = actionAlerts({
      subscription: subscription({ status: "unpaid" }),
      balance: balance(10),
      threshold: 100,
      alerts: [openAlert("auto_top_up_failed")],
      spendLimit: spendLimit(500, 500),
    }).map((alert) => alert.id);
    expect(ids).toEqual(["past-due", "auto-top-up-failed", "spend-limit", "low-balance"]);
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

describe("which stored alerts a banner already says", () => {
  const pastDue = actionAlerts({ subscription: subscription({ status: "past_due" }), balance: balance(1000), threshold: 100 });

  it("the past-due banner holds the failed payment and the subscription's change to past due or unpaid", () => {
    expect(bannerHolding({ kind: "payment_failed", data: {} }, pastDue)?.id).toBe("past-due");
    expect(bannerHolding({ kind: "subscription_changed", data: { status: "past_due" } }, pastDue)?.id).toBe("past-due");
    expect(bannerHolding({ kind: "subscription_changed", data: { status: "unpaid" } }, pastDue)?.id).toBe("past-due");
  });

  it("other changes of the subscription, and any alert once its banner is gone, stay in the list", () => {
    expect(bannerHolding({ kind: "subscription_changed", data: { status: "trialing" } }, pastDue)).toBeUndefined();
    expect(bannerHolding({ kind: "subscription_changed", data: null }, pastDue)).toBeUndefined();
    expect(bannerHolding({ kind: "subscription_changed", data: { status: "past_due" } }, [])).toBeUndefined();
  });
});
