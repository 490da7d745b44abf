import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { createFakeBackend, json, storeSignedInSession, type FakeHandler } from "@/test/fake-backend";
import { ORG } from "@/test/fixtures";
import { textContent } from "@/test/text-content";
import { createQueryClient } from "@/lib/query-client";
import { AppProviders } from "./providers";
import { AppShell } from "./shell";

const OTHER_ORG = "22222222-2222-4222-8222-222222222222";
const USER_ID = "33333333-3333-4333-8333-333333333333";

function renderApp(handler: FakeHandler) {
  const { backend, calls } = createFakeBackend(handler);
  render(
    <AppProviders backend={backend} queryClient={createQueryClient()}>
      <AppShell />
    </AppProviders>,
  );
  return calls;
}

/** Two organizations: owner of Acme, member of Beta; empty billing for both. */
const twoOrganizations: FakeHandler = ({ path }) => {
  switch (path) {
    case "/rest/v1/organization_members":
      return json([{ organization_id: ORG, role: "owner" }, { organization_id: OTHER_ORG, role: "member" }]);
    case "/rest/v1/organizations":
      return json([
        { id: ORG, name: "Acme", low_balance_threshold: 0, credit_precedence: "purchased_first" },
        { id: OTHER_ORG, name: "Beta", low_balance_threshold: 0, credit_precedence: "purchased_first" },
      ]);
    case "/rest/v1/rpc/get_credit_balance":
      return json({ total: 0, purchased: 0, subscription: 0, next_expiry_at: null, expiring_amount: 0 });
    case "/rest/v1/organization_subscriptions":
    case "/rest/v1/subscription_plans":
    case "/rest/v1/credit_usage_daily":
    case "/rest/v1/credit_events":
    case "/rest/v1/billing_alerts":
      return json([]);
    default:
      return undefined;
  }
};

describe("signed out", () => {
  it("shows a labelled sign-in form and reports a wrong password", async () => {
    window.localStorage.clear();
    renderApp(({ path }) =>
      path === "/auth/v1/token"
        ? json({ code: 400, error_code: "invalid_credentials", msg: "Invalid login credentials" }, { status: 400 })
        : undefined,
    );
    expect(await screen.findByRole("heading", { name: "Sign in" })).toBeInTheDocument();
    await userEvent.type(screen.getByLabelText("Email"), "someone@example.test");
    await userEvent.type(screen.getByLabelText("Password"), "wrong-password");
    await userEvent.click(screen.getByRole("button", { name: "Sign in" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Invalid login credentials");
  });
});

describe("signed in", () => {
  it("restores the session from storage, shows the role, and switches organizations", async () => {
    window.localStorage.clear();
    window.history.replaceState(null, "", "/");
    storeSignedInSession(USER_ID);
    const calls = renderApp(twoOrganizations);

    expect(await screen.findByRole("heading", { name: "Billing" })).toBeInTheDocument();
    expect(screen.getByText("Your role: owner")).toBeInTheDocument();
    expect(screen.getByText(ORG)).toBeInTheDocument();

    await userEvent.selectOptions(screen.getByLabelText("Organization"), "Beta");
    expect(await screen.findByText("Your role: member")).toBeInTheDocument();
    expect(screen.getByText(OTHER_ORG)).toBeInTheDocument();
    expect(window.localStorage.getItem("billing.selectedOrganization")).toBe(OTHER_ORG);
    await screen.findByText(textContent("Balance: 0 credits"));
    expect(calls.some((c) => c.includes(`organization_id=eq.${OTHER_ORG}`))).toBe(true);
  });

  it("announces a return from the customer portal once and takes it out of the address bar", async () => {
    window.localStorage.clear();
    window.history.replaceState(null, "", "/?portal=returned#overview");
    storeSignedInSession(USER_ID);
    renderApp(twoOrganizations);

    const banner = await screen.findByText("Back from the customer portal.");
    expect(window.location.search).toBe("");
    expect(window.location.hash).toBe("#overview");
    await userEvent.click(within(banner.closest("div")!).getByRole("button", { name: "Close" }));
    expect(screen.queryByText("Back from the customer portal.")).not.toBeInTheDocument();
  });

  it("with the service unreachable on a reload, says so once and never offers to create a first organization", async () => {
    window.localStorage.clear();
    window.history.replaceState(null, "", "/");
    storeSignedInSession(USER_ID);
    renderApp(() => {
      throw new TypeError("Failed to fetch");
    });
    // supabase-js retries a failed read for about 7 s before giving up; the banner comes after that.
    const banner = await screen.findByRole("alert", {}, { timeout: 15_000 });
    expect(banner).toHaveTextContent("The billing service cannot be reached");
    expect(screen.getByText("Loading your organizations…")).toBeInTheDocument();
    expect(screen.queryByText("Create an organization")).toBeNull();
    expect(screen.queryByText(/Failed to fetch/)).toBeNull();
  }, 30_000);
});
