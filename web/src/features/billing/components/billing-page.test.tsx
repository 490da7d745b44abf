import { act, screen, waitFor } from "@testing-library/react";
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
