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
  it("a past-due subscription and a low balance are banners at the top with their actions", async () => {
    renderWithBackend(<BillingPage organizationId={ORG} role="owner" />, (request) => {
      if (request.path === "/rest/v1/organization_subscriptions") return json([subscription({ status: "past_due", grace_period_end: "2026-12-08T12:00:00Z" })]);
      if (request.path === "/rest/v1/organizations") return json({ low_balance_threshold: 500 });
      if (request.path === "/rest/v1/rpc/get_credit_balance") return json({ total: 100, purchased: 100, subscription: 0, next_expiry_at: null, expiring_amount: 0 });
      return quietBackend(request);
    });
    const banners = within(await screen.findByRole("list", { name: "Needs action" }));
    expect(await banners.findByText("Your last payment failed.")).toBeInTheDocument();
    expect(await banners.findByText(/The balance is 100 credits, below your alert threshold of 500 credits\./)).toBeInTheDocument();

    await userEvent.click(banners.getByRole("button", { name: "Buy credits" }));
    expect(screen.getByRole("tab", { name: "Credits" })).toHaveAttribute("aria-selected", "true");
    expect(window.location.search).toBe("?tab=credits");

    await userEvent.click(banners.getByRole("button", { name: "Update payment method" }));
    // The test has no session, so the portal call stops at "sign in again": the button did ask for the portal.
    expect(await banners.findByRole("alert")).toHaveTextContent("Your session has ended. Sign in again.");
  });

  it("members see the alert and who can act, without buttons", async () => {
    renderWithBackend(<BillingPage organizationId={ORG} role="member" />, (request) =>
      request.path === "/rest/v1/organization_subscriptions" ? json([subscription({ status: "unpaid" })]) : quietBackend(request),
    );
    const banners = within(await screen.findByRole("list", { name: "Needs action" }));
    expect(banners.getByText(/An owner or admin of this organization can act on it\./)).toBeInTheDocument();
    expect(banners.queryByRole("button")).toBeNull();
  });
});

