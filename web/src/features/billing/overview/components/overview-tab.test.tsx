import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { json, renderWithBackend, type FakeHandler } from "@/test/fake-backend";
import { ORG, plan, subscription } from "@/test/fixtures";
import { buildUsageBars } from "./usage-chart";
import { OverviewTab } from "./overview-tab";

const alert = {
  id: "a1", organization_id: ORG, kind: "low_balance", severity: "warning", title: "Credit balance is low",
  message: "Below 100 credits.", data: {}, dedupe_key: null, created_at: "2026-11-22T10:00:00Z", dismissed_at: null, dismissed_by: null,
  resolved_at: null, resolved_reason: null,
};

function handler(overrides: Partial<Record<string, () => Response>> = {}): FakeHandler {
  let alertsOpen = true;
  return ({ path }) => {
    const override = overrides[path];
    if (override) return override();
    switch (path) {
      case "/rest/v1/organization_subscriptions":
        return json([subscription({ status: "past_due", grace_period_end: "2026-12-08T00:00:00Z" })]);
      case "/rest/v1/subscription_plans":
        return json([plan("starter")]);
      case "/rest/v1/rpc/get_credit_balance":
        return json({ total: 0, purchased: 0, subscription: 0, next_expiry_at: null, expiring_amount: 0 });
      case "/rest/v1/credit_usage_daily":
        return json([]);
      case "/rest/v1/credit_events":
        return json([{ event_key: "ai_inference", name: "AI inference" }]);
      case "/rest/v1/billing_alerts":
        return json(alertsOpen ? [alert] : []);
      case "/rest/v1/rpc/dismiss_billing_alert":
        alertsOpen = false;
        return new Response(null, { status: 204 });
      default:
        return undefined;
    }
  };
}

describe("Overview tab", () => {
  it("shows the plan, a past-due badge with the grace end, and empty usage", async () => {
    renderWithBackend(<OverviewTab organizationId={ORG} />, handler());
    expect(await screen.findByText(/past due · grace until Dec 8, 2026/)).toBeInTheDocument();
    expect(await screen.findByText("Starter (monthly)")).toBeInTheDocument();
    expect(await screen.findByText("No credits used in the last 30 days.")).toBeInTheDocument();
    expect(screen.getByText("Nothing expiring")).toBeInTheDocument();
  });

  it("says there is no subscription yet", async () => {
    renderWithBackend(<OverviewTab organizationId={ORG} />, handler({ "/rest/v1/organization_subscriptions": () => json([]) }));
    expect(await screen.findByText(/No subscription yet/)).toBeInTheDocument();
  });

  it("dismisses an alert and refreshes the list", async () => {
    const view = renderWithBackend(<OverviewTab organizationId={ORG} />, handler());
    await userEvent.click(await screen.findByRole("button", { name: "Dismiss alert: Credit balance is low" }));
    expect(await screen.findByText("No active alerts.")).toBeInTheDocument();
    expect(view.calls).toContain("POST /rest/v1/rpc/dismiss_billing_alert");
    expect(screen.getByRole("heading", { name: "Alerts" })).toHaveFocus();
  });

  it("names the usage chart's events as the catalog does", async () => {
    renderWithBackend(
      <OverviewTab organizationId={ORG} />,
      handler({
        "/rest/v1/credit_usage_daily": () =>
          json([{ organization_id: ORG, day: new Date().toISOString().slice(0, 10), event_key: "ai_inference", events: 4, quantity: 4, credits: 100 }]),
      }),
    );
    const legend = await screen.findByRole("list", { name: "Credits by event, last 30 days" });
    expect(legend).toHaveTextContent(/^AI inference 100$/);
  });

  describe("each alert said once", () => {
    const stored = (id: string, kind: string, title: string) => ({ ...alert, id, kind, title, message: `${title}.` });
    const rows = [
      stored("a-paid", "payment_failed", "Payment failed"),
      stored("a-low", "low_balance", "Credit balance is low"),
      stored("a-trial", "trial_ending", "Trial ending soon"),
    ];
    const withThreshold = (balance: number) =>
      handler({
        "/rest/v1/billing_alerts": () => json(rows),
        "/rest/v1/organizations": () => json({ low_balance_threshold: 500, credit_precedence: "subscription_first" }),
        "/rest/v1/rpc/get_credit_balance": () =>
          json({ total: balance, purchased: balance, subscription: 0, next_expiry_at: null, expiring_amount: 0 }),
      });

    it("leaves the alerts a banner at the top shows (past due, low balance) to the banner and lists the rest", async () => {
      renderWithBackend(<OverviewTab organizationId={ORG} />, withThreshold(100));
      expect(await screen.findByText("2 alerts that need action are shown at the top of the page, with what to do.")).toBeInTheDocument();
      expect(screen.getByRole("button", { name: "Dismiss alert: Trial ending soon" })).toBeInTheDocument();
      expect(screen.queryByRole("button", { name: "Dismiss alert: Payment failed" })).not.toBeInTheDocument();
      expect(screen.queryByRole("button", { name: "Dismiss alert: Credit balance is low" })).not.toBeInTheDocument();
    });

    it("keeps a low-balance alert no banner holds any more (the balance is back up), saying it is resolved", async () => {
      renderWithBackend(<OverviewTab organizationId={ORG} />, withThreshold(900));
      expect(await screen.findByText("1 alert that needs action is shown at the top of the page, with what to do.")).toBeInTheDocument();
      expect(screen.getByRole("button", { name: "Dismiss alert: Credit balance is low" })).toBeInTheDocument();
      expect(screen.getByText(/^Resolved: the balance is back to 900 credits/)).toBeInTheDocument();
      expect(screen.queryByRole("button", { name: "Dismiss alert: Payment failed" })).not.toBeInTheDocument();
    });
  });

  it("shows the usage error with a retry", async () => {
    renderWithBackend(
      <OverviewTab organizationId={ORG} />,
      handler({ "/rest/v1/credit_usage_daily": () => json({ code: "XX000", message: "view broke" }, { status: 500 }) }),
    );
    expect(await screen.findByText("Usage could not be loaded.")).toBeInTheDocument();
  });
});

describe("usage chart data", () => {
  it("makes one bar per day of the 30-day window, stacked by event", () => {
    const now = new Date("2026-11-23T12:00:00Z");
    const { bars, events } = buildUsageBars(
      [
        { organization_id: ORG, day: "2026-11-23", event_key: "ai_inference", events: 2, quantity: 2, credits: 50 },
        { organization_id: ORG, day: "2026-11-23", event_key: "api_call_basic", events: 5, quantity: 5, credits: 5 },
        { organization_id: ORG, day: "2026-10-25", event_key: "api_call_basic", events: 1, quantity: 1, credits: 1 },
      ],
      now,
    );
    expect(bars).toHaveLength(30);
    expect(bars[0]).toMatchObject({ day: "2026-10-25", total: 1 });
    expect(bars[29]).toMatchObject({ day: "2026-11-23", total: 55 });
    expect(events).toEqual(["ai_inference", "api_call_basic"]);
  });
});
