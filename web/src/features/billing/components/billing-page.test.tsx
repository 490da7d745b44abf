import { act, screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it } from "vitest";
import { json, renderWithBackend, type FakeHandler } from "@/test/fake-backend";
import { ORG, plan, subscription } from "@/test/fixtures";
import { BillingPage } from "./billing-page";

const quietBackend: FakeHandler = ({ path }) => {
  switch (path) {
    case "/rest/v1/organization_subscriptions":
      return json([subscription()]);
    case "/rest/v1/subscription_plans":
      return json([plan("starter")]);
    case "/rest/v1/rpc/get_credit_balance":
      return json({ total: 500, purchased: 0, subscription: 500, next_expiry_at: null, expiring_amount: 0 });
    case "/rest/v1/credit_usage_daily":
    case "/rest/v1/credit_events":
    case "/rest/v1/billing_alerts":
    case "/rest/v1/credit_products":
      return json([]);
    case "/rest/v1/billing_history":
      return json([], { total: 0 });
    default:
      return json([]);
  }
};

afterEach(() => window.history.replaceState(null, "", "/"));

describe("the URL names the tab", () => {
  it("opens the tab the address names, and Back and Forward move between the tabs opened", async () => {
    window.history.replaceState(null, "", "/?tab=plans");
    renderWithBackend(<BillingPage organizationId={ORG} role="owner" />, quietBackend);
    expect(screen.getByRole("tab", { name: "Plans" })).toHaveAttribute("aria-selected", "true");

    await userEvent.click(screen.getByRole("tab", { name: "History" }));
    expect(window.location.search).toBe("?tab=history");
    await userEvent.click(screen.getByRole("tab", { name: "Overview" }));
    expect(window.location.search).toBe("");

    act(() => window.history.back());
    await waitFor(() => expect(screen.getByRole("tab", { name: "History" })).toHaveAttribute("aria-selected", "true"));
    act(() => window.history.back());
    await waitFor(() => expect(screen.getByRole("tab", { name: "Plans" })).toHaveAttribute("aria-selected", "true"));
    act(() => window.history.forward());
    await waitFor(() => expect(screen.getByRole("tab", { name: "History" })).toHaveAttribute("aria-selected", "true"));
  });
});

describe("alerts that need action", () => {
  const visa = { stripe_payment_method_id: "pm_1", brand: "visa", last4: "4242", exp_month: 3, exp_year: 2034 };
  const lowBalanceWithCard: FakeHandler = (request) => {
    if (request.path === "/rest/v1/organizations") return json({ low_balance_threshold: 500 });
    if (request.path === "/rest/v1/rpc/get_credit_balance") return json({ total: 100, purchased: 100, subscription: 0, next_expiry_at: null, expiring_amount: 0 });
    // maybeSingle() reads a list of at most one row: a card on file, auto top-up never set up.
    if (request.path === "/rest/v1/cards_on_file") return json([visa]);
    if (request.path === "/rest/v1/auto_top_up_settings") return json([]);
    return quietBackend(request);
  };

  it("a past-due subscription and a low balance are banners at the top with their actions", async () => {
    renderWithBackend(<BillingPage organizationId={ORG} role="owner" />, (request) => {
      if (request.path === "/rest/v1/organization_subscriptions") return json([subscription({ status: "past_due", grace_period_end: "2026-12-08T12:00:00Z" })]);
      return lowBalanceWithCard(request);
    });
    const banners = within(await screen.findByRole("list", { name: "Needs action" }));
    expect(await banners.findByText("Your last payment failed.")).toBeInTheDocument();
    expect(await banners.findByText(/The balance is 100 credits, below your alert threshold of 500 credits\./)).toBeInTheDocument();
    // The banners come before the tabs, whatever the tab.
    const list = screen.getByRole("list", { name: "Needs action" });
    expect(list.compareDocumentPosition(screen.getByRole("tablist")) & Node.DOCUMENT_POSITION_FOLLOWING).toBeTruthy();

    await userEvent.click(banners.getByRole("button", { name: "Update payment method" }));
    // The test has no session, so the portal call stops at "sign in again": the button did ask for the portal.
    expect(await banners.findByRole("alert")).toHaveTextContent("Your session has ended. Sign in again.");
  });

  it.each([
    ["Buy credits", "Buy credits"],
    ["Turn on auto top-up", "Auto top-up"],
  ])("a low balance's %s opens the Credits tab at its section (%s)", async (action, heading) => {
    renderWithBackend(<BillingPage organizationId={ORG} role="owner" />, lowBalanceWithCard);
    const banners = within(await screen.findByRole("list", { name: "Needs action" }));
    await userEvent.click(await banners.findByRole("button", { name: action }));
    expect(screen.getByRole("tab", { name: "Credits" })).toHaveAttribute("aria-selected", "true");
    expect(window.location.search).toBe("?tab=credits");
    await waitFor(() => expect(screen.getByRole("heading", { name: heading })).toHaveFocus());
  });

  it("the spend limit reached says this month's figures and its Raise the limit leads to the limit", async () => {
    renderWithBackend(<BillingPage organizationId={ORG} role="admin" />, (request) =>
      request.path === "/rest/v1/rpc/get_spend_limit"
        ? json({ monthly_credits: 1000, month_start: "2026-12-01", consumed_this_month: 1000, reserved: 0, remaining: 0 })
        : quietBackend(request),
    );
    const banners = within(await screen.findByRole("list", { name: "Needs action" }));
    expect(await banners.findByText(/1,000 of the 1,000-credit limit used this month/)).toBeInTheDocument();
    await userEvent.click(banners.getByRole("button", { name: "Raise the limit" }));
    await waitFor(() => expect(screen.getByRole("heading", { name: "Monthly spend limit" })).toHaveFocus());
  });

  it("a failed auto top-up asks the owner to update the card in the portal", async () => {
    renderWithBackend(<BillingPage organizationId={ORG} role="owner" />, (request) =>
      request.path === "/rest/v1/billing_alerts"
        ? json([{ id: "a1", kind: "auto_top_up_failed", severity: "critical", title: "Auto top-up payment failed", message: "", data: {}, created_at: "2026-12-01T10:00:00Z" }])
        : quietBackend(request),
    );
    const banners = within(await screen.findByRole("list", { name: "Needs action" }));
    expect(await banners.findByText("Auto top-up could not charge the card.")).toBeInTheDocument();
    await userEvent.click(banners.getByRole("button", { name: "Update card" }));
    expect(await banners.findByRole("alert")).toHaveTextContent("Your session has ended. Sign in again.");
  });

  it("members see the alert and whom to ask, by name, without buttons", async () => {
    renderWithBackend(<BillingPage organizationId={ORG} role="member" />, (request) => {
      if (request.path === "/rest/v1/organization_subscriptions") return json([subscription({ status: "unpaid" })]);
      if (request.path === "/rest/v1/rpc/organization_managers") {
        return json([
          { user_id: "u1", email: "dana@example.com", role: "owner" },
          { user_id: "u2", email: "abe@example.com", role: "admin" },
        ]);
      }
      return quietBackend(request);
    });
    const banners = within(await screen.findByRole("list", { name: "Needs action" }));
    expect(await banners.findByText(/Ask dana@example\.com \(owner\) or abe@example\.com \(admin\) to update the payment method\./)).toBeInTheDocument();
    expect(banners.queryByRole("button")).toBeNull();
  });
});
