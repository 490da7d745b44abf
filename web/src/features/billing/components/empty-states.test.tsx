import { screen, waitFor, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, describe, expect, it } from "vitest";
import { json, renderWithBackend, type FakeHandler } from "@/test/fake-backend";
import { ORG, plan } from "@/test/fixtures";
import { BillingPage } from "./billing-page";

/** A new organization: no subscription, no credits, no payments, no alerts, no threshold. */
const emptyOrganization: FakeHandler = ({ path }) => {
  switch (path) {
    case "/rest/v1/organization_subscriptions":
      return json([]);
    case "/rest/v1/subscription_plans":
      return json([plan("starter")]);
    case "/rest/v1/rpc/get_credit_balance":
      return json({ total: 0, purchased: 0, subscription: 0, next_expiry_at: null, expiring_amount: 0, reserved: 0 });
    case "/rest/v1/rpc/organization_managers":
      return json([{ user_id: "u-dana", email: "dana@example.com", role: "owner" }]);
    case "/rest/v1/organizations":
      return json({ low_balance_threshold: 0, credit_precedence: "purchased_first" });
    case "/rest/v1/billing_history":
      return json([], { total: 0 });
    default:
      return json([]);
  }
};

afterEach(() => window.history.replaceState(null, "", "/"));

describe("empty states lead to action", () => {
  it("give an owner the buttons that fix them, which open the right tab", async () => {
    renderWithBackend(<BillingPage organizationId={ORG} role="owner" />, emptyOrganization);
    const choose = await screen.findByRole("link", { name: "Choose a plan" });
    expect(choose).toHaveAttribute("href", "/?tab=plans");
    expect(await screen.findByRole("link", { name: "Buy credits" })).toHaveAttribute("href", "/?tab=credits#buy-credits");
    expect(await screen.findByRole("link", { name: "Set a low-balance alert" })).toHaveAttribute("href", "/?tab=credits#low-balance-alert");

    await userEvent.click(choose);
    expect(screen.getByRole("tab", { name: "Plans" })).toHaveAttribute("aria-selected", "true");
    expect(window.location.search).toBe("?tab=plans");

    await userEvent.click(screen.getByRole("tab", { name: "History" }));
    const history = within(await screen.findByRole("tabpanel"));
    expect(await history.findByText(/No payments yet/)).toBeInTheDocument();
    expect(history.getByRole("link", { name: "Choose a plan" })).toBeInTheDocument();
    await userEvent.click(history.getByRole("link", { name: "Buy credits" }));
    expect(screen.getByRole("tab", { name: "Credits" })).toHaveAttribute("aria-selected", "true");
    expect(`${window.location.search}${window.location.hash}`).toBe("?tab=credits#buy-credits");
    // The packs' section is brought into view and focused once the lazy tab has rendered it.
    await waitFor(() => expect(document.activeElement?.id).toBe("buy-credits"));
  });

  it("tell a member whom to ask, by email, instead of a button they cannot use", async () => {
    renderWithBackend(<BillingPage organizationId={ORG} role="member" />, emptyOrganization);
    expect(await screen.findByText("Ask dana@example.com (owner) to choose a plan.")).toBeInTheDocument();
    expect(await screen.findByText("Ask dana@example.com (owner) to buy credits.")).toBeInTheDocument();
    expect(await screen.findByText("Ask dana@example.com (owner) to set a low-balance alert.")).toBeInTheDocument();
    expect(screen.queryByRole("link", { name: /Choose a plan|Buy credits/ })).not.toBeInTheDocument();

    await userEvent.click(screen.getByRole("tab", { name: "History" }));
    expect(await screen.findByText("Ask dana@example.com (owner) to choose a plan or buy credits.")).toBeInTheDocument();
  });
});
