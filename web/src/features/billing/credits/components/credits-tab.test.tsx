import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { json, renderWithBackend, type FakeHandler } from "@/test/fake-backend";
import { ORG, transaction } from "@/test/fixtures";
import { textContent } from "@/test/text-content";
import CreditsTab from "./credits-tab";

const balance = { total: 1475, purchased: 500, subscription: 975, next_expiry_at: "2026-12-01T00:00:00Z", expiring_amount: 975, reserved: 40 };
const spendLimit = { monthly_credits: null, month_start: "2026-12-01", consumed_this_month: 0, reserved: 40, remaining: null };
const product = {
  id: "p1", code: "credits_1000", name: "1,000 credits", description: "", credits: 1000, currency: "usd", unit_amount: 1000,
  is_active: true, sort_order: 10, stripe_price_id: null, stripe_product_id: null, created_at: "", updated_at: "",
};

function handler(ledger: (url: URL) => Response): FakeHandler {
  return ({ path, url }) => {
    if (path === "/rest/v1/rpc/get_credit_balance") return json(balance);
    if (path === "/rest/v1/rpc/get_spend_limit") return json(spendLimit);
    if (path === "/rest/v1/organizations") return json({ low_balance_threshold: 100 });
    if (path === "/rest/v1/credit_products") return json([product]);
    if (path === "/rest/v1/credit_transactions") return ledger(url);
    return undefined;
  };
}

describe("Credits tab", () => {
  it("prices each pack per 1,000 credits and shows what the bigger one saves", async () => {
    const bigger = { ...product, id: "p5", code: "credits_5000", name: "5,000 credits", credits: 5000, unit_amount: 4500 };
    renderWithBackend(<CreditsTab organizationId={ORG} role="member" />, ({ path, ...rest }) =>
      path === "/rest/v1/credit_products" ? json([product, bigger]) : handler(() => json([], { total: 0 }))({ path, ...rest }));
    const small = (await screen.findByRole("heading", { name: "1,000 credits" })).closest("li")!;
    const large = screen.getByRole("heading", { name: "5,000 credits" }).closest("li")!;
    expect(within(small as HTMLElement).getByText(/per 1,000 credits/)).toHaveTextContent(/^\$10\.00 per 1,000 credits$/);
    expect(within(large as HTMLElement).getByText(/per 1,000 credits/)).toHaveTextContent(/^\$9\.00 per 1,000 credits · save 10%$/);
  });

  it("shows the balance split, the ledger, and paging with the exact count", async () => {
    const rows = [transaction(2), transaction(1, { kind: "grant", amount: 1000, balance_after: 1000 })];
    const view = renderWithBackend(<CreditsTab organizationId={ORG} role="owner" />, handler(() => json(rows, { total: 45 })));
    expect(await screen.findByText(textContent("Balance: 1,475 credits"))).toBeInTheDocument();
    expect(screen.getByText("Reserved").nextElementSibling).toHaveTextContent("40 credits");
    const table = await screen.findByRole("table", { name: /Credit transactions/ });
    expect(within(table).getByText("-25")).toBeInTheDocument();
    expect(within(table).getByText("+1,000")).toBeInTheDocument();
    expect(screen.getByText("Page 1 of 3")).toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Next" }));
    expect(await screen.findByText("Page 2 of 3")).toBeInTheDocument();
    expect(view.calls.some((c) => c.startsWith("GET /rest/v1/credit_transactions") && c.includes("offset=20"))).toBe(true);
    expect(view.calls.some((c) => c.startsWith("GET /rest/v1/credit_transactions") && c.includes("organization_id=eq."))).toBe(true);
  });

  it("filters the ledger by type and says when a type has no rows", async () => {
    const view = renderWithBackend(
      <CreditsTab organizationId={ORG} role="member" />,
      handler((url) => (url.searchParams.get("kind") === "eq.expiry" ? json([], { total: 0 }) : json([transaction(1)], { total: 1 }))),
    );
    await screen.findByRole("table", { name: /Credit transactions/ });
    await userEvent.selectOptions(screen.getByLabelText("Type"), "expiry");
    expect(await screen.findByText("No expiry transactions.")).toBeInTheDocument();
    expect(view.calls.some((c) => c.includes("kind=eq.expiry"))).toBe(true);
  });

  it("lets owners change the threshold and buy packs", async () => {
    let saved: unknown = null;
    const view = renderWithBackend(<CreditsTab organizationId={ORG} role="owner" />, (request) => {
      if (request.path === "/rest/v1/rpc/set_low_balance_threshold") {
        saved = request.body;
        return new Response(null, { status: 204 });
      }
      return handler(() => json([], { total: 0 }))(request);
    });
    const input = await screen.findByLabelText(/Alert me when the balance falls below/);
    expect(input).toHaveValue(100);
    expect(input).toHaveAccessibleDescription(/0 turns the alert off/);
    await userEvent.clear(input);
    await userEvent.type(input, "250");
    await userEvent.click(screen.getByRole("button", { name: "Save threshold" }));
    expect(await screen.findByText("Saved.")).toBeInTheDocument();
    expect(saved).toEqual({ p_organization_id: ORG, p_threshold: 250 });
    expect(view.calls).toContain("POST /rest/v1/rpc/set_low_balance_threshold");
    expect(await screen.findByRole("button", { name: "Buy 1,000 credits" })).toBeInTheDocument();
    expect(await screen.findByText("No credit transactions yet.")).toBeInTheDocument();
  });

  it("shows members the threshold read-only and no buy buttons, with the reason", async () => {
    renderWithBackend(<CreditsTab organizationId={ORG} role="member" />, handler(() => json([], { total: 0 })));
    expect(await screen.findByText("Alert when the balance falls below 100 credits.")).toBeInTheDocument();
    expect(screen.queryByLabelText(/Alert me when/)).not.toBeInTheDocument();
    await screen.findByText("$10.00");
    expect(screen.queryByRole("button", { name: /^Buy/ })).not.toBeInTheDocument();
    expect(screen.getAllByRole("note")[0]).toHaveTextContent(/Only owners and admins/);
  });
});
