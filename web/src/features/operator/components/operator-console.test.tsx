import { render, screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { AppProviders } from "@/app/providers";
import { AppShell } from "@/app/shell";
import { createQueryClient } from "@/lib/query-client";
import { createFakeBackend, json, renderWithBackend, storeSignedInSession, type FakeHandler } from "@/test/fake-backend";
import { ORG } from "@/test/fixtures";
import { AdjustCreditsForm } from "./adjust-credits-form";

const USER_ID = "44444444-4444-4444-8444-444444444444";
/** The console is a lazy chunk: its first load transforms the chart library, which takes a moment in jsdom. */
const LAZY = { timeout: 20_000 };

function openConsole(handler: FakeHandler) {
  window.localStorage.clear();
  window.history.replaceState(null, "", "/operator");
  storeSignedInSession(USER_ID);
  const { backend, calls } = createFakeBackend(handler);
  render(
    <AppProviders backend={backend} queryClient={createQueryClient()}>
      <AppShell />
    </AppProviders>,
  );
  return calls;
}

const overview = {
  mrr: [{ currency: "usd", amount: 19900 }],
  subscriptions: { active: 3, trialing: 1, past_due: 1, unpaid: 0, canceled_in_period: 1, new_in_period: 5 },
  trials: { started_in_period: 2, converted: 1 },
  payment_success_rate: 0.75,
  credits: { granted: 800, consumed: 100, expired: 300, outstanding: 400 },
};

describe("the operator console at /operator", () => {
  it("shows a member that the page is not for them and asks for nothing else", async () => {
    const calls = openConsole(({ path }) => (path === "/rest/v1/rpc/is_billing_operator" ? json(false) : undefined));
    expect(await screen.findByText("This page is for billing operators, and you are not one.", {}, LAZY)).toBeInTheDocument();
    expect(screen.queryByRole("tablist")).not.toBeInTheDocument();
    expect(calls.filter((c) => c.includes("/rpc/operator_"))).toEqual([]);
  });

  it("shows an operator the overview figures, each chart with its table", async () => {
    openConsole(({ path }) => {
      switch (path) {
        case "/rest/v1/rpc/is_billing_operator":
          return json(true);
        case "/rest/v1/rpc/operator_alerts":
        case "/rest/v1/rpc/operator_consumption":
        case "/rest/v1/rpc/operator_top_consumers":
          return json([]);
        case "/rest/v1/rpc/operator_overview":
          return json(overview);
        case "/rest/v1/rpc/operator_mrr_trend":
          return json([{ day: "2026-11-30", currency: "usd", amount: 9900 }, { day: "2026-12-01", currency: "usd", amount: 19900 }]);
        default:
          return undefined;
      }
    });
    const mrr = await screen.findByRole("region", { name: "MRR" }, LAZY);
    expect(await within(mrr).findByText("$199.00")).toBeInTheDocument();
    expect(screen.getByText("75.0%")).toBeInTheDocument();
    const statuses = screen.getByRole("table", { name: "Subscriptions by status (now): the figures" });
    expect(within(statuses).getByRole("row", { name: "past due 1" })).toBeInTheDocument();
    const credits = screen.getByRole("table", { name: "Credits in the period: the figures" });
    expect(within(credits).getByRole("row", { name: "expired (breakage) 300" })).toBeInTheDocument();
    expect(screen.getByRole("img", { name: /Credits in the period/ })).toBeInTheDocument();
    expect(screen.getByText("No credits were consumed in this period.")).toBeInTheDocument();
    const trend = screen.getByRole("table", { name: "MRR trend (USD): the figures" });
    expect(within(trend).getByRole("row", { name: "Dec 1, 2026 $199.00" })).toBeInTheDocument();
  });
});

describe("the adjustment form", () => {
  it("refuses a blank reason without calling the database, then sends the trimmed reason", async () => {
    const sent: unknown[] = [];
    const { calls } = renderWithBackend(<AdjustCreditsForm organizationId={ORG} />, ({ path, body }) => {
      if (path !== "/rest/v1/rpc/adjust_credits") return undefined;
      sent.push(body);
      return json({ transaction_ids: [1], amount: -20, source: "purchased", reason: "Double grant", balance: {} });
    });
    await userEvent.type(screen.getByLabelText("Amount"), "-20");
    await userEvent.click(screen.getByRole("button", { name: "Adjust" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("Say why: the reason is recorded in the ledger.");
    expect(calls).toEqual([]);

    await userEvent.type(screen.getByLabelText("Reason"), "  Double grant ");
    await userEvent.click(screen.getByRole("button", { name: "Adjust" }));
    expect(await screen.findByRole("status")).toHaveTextContent("Adjusted by -20 purchased credits.");
    expect(sent).toEqual([{ p_organization_id: ORG, p_amount: -20, p_source: "purchased", p_reason: "Double grant" }]);
  });
});
