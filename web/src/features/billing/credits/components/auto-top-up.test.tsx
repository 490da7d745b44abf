import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it } from "vitest";
import { json, renderWithBackend, type FakeHandler } from "@/test/fake-backend";
import { ORG } from "@/test/fixtures";
import { AutoTopUpForm } from "./auto-top-up-form";
import { CardOnFile } from "./card-on-file";

const product = (id: string, code: string, name: string, unit_amount: number) => ({
  id, code, name, description: "", credits: 1000, currency: "usd", unit_amount,
  is_active: true, sort_order: 10, stripe_price_id: null, stripe_product_id: null, created_at: "", updated_at: "",
});
const products = [product("p1", "credits_1000", "1,000 credits", 1000), product("p5", "credits_5000", "5,000 credits", 4500)];
const visa = { stripe_payment_method_id: "pm_1", brand: "visa", last4: "4242", exp_month: 3, exp_year: 2034 };
const setting = { enabled: true, credit_product_id: "p5", threshold: 200, monthly_limit: 2, disabled_reason: null };

function backend(rows: { setting?: unknown; card?: unknown }, extra?: FakeHandler): FakeHandler {
  return (request) => {
    const answer = extra?.(request);
    if (answer) return answer;
    // maybeSingle() reads a list of at most one row.
    const one = (row: unknown) => json(row ? [row] : []);
    if (request.path === "/rest/v1/auto_top_up_settings") return one(rows.setting);
    if (request.path === "/rest/v1/cards_on_file") return one(rows.card);
    if (request.path === "/rest/v1/credit_products") return json(products);
    return undefined;
  };
}

describe("Card on file", () => {
  it("shows the brand, last four digits and expiry, and lets owners change it in the portal", async () => {
    renderWithBackend(<CardOnFile organizationId={ORG} role="owner" />, backend({ card: visa }));
    expect(await screen.findByText("Visa ending in 4242, expires 03/2034")).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Change card" })).toBeInTheDocument();
  });

  it("says when there is no card, with a way to add one", async () => {
    renderWithBackend(<CardOnFile organizationId={ORG} role="admin" />, backend({ card: null }));
    expect(await screen.findByText(/No card on file/)).toBeInTheDocument();
    expect(screen.getByRole("button", { name: "Add a card" })).toBeInTheDocument();
  });

  it("shows members the card without the button", async () => {
    renderWithBackend(<CardOnFile organizationId={ORG} role="member" />, backend({ card: visa }));
    expect(await screen.findByText(/Visa ending in 4242/)).toBeInTheDocument();
    expect(screen.queryByRole("button")).not.toBeInTheDocument();
  });
});

describe("Auto top-up", () => {
  it("lets an owner turn it on with a pack, a threshold and a monthly limit", async () => {
    let sent: unknown = null;
    renderWithBackend(<AutoTopUpForm organizationId={ORG} role="owner" />, backend({ card: visa }, (request) => {
      if (request.path !== "/rest/v1/rpc/set_auto_top_up") return undefined;
      sent = request.body;
      return new Response(null, { status: 204 });
    }));
    expect(await screen.findByText("Auto top-up is off.")).toBeInTheDocument();
    await userEvent.selectOptions(screen.getByLabelText("Pack to buy"), "credits_5000");
    const threshold = screen.getByLabelText(/When the balance falls below/);
    await userEvent.clear(threshold);
    await userEvent.type(threshold, "250");
    const limit = screen.getByLabelText(/At most this many top-ups a month/);
    await userEvent.clear(limit);
    await userEvent.type(limit, "4");
    await userEvent.click(screen.getByRole("button", { name: "Turn on auto top-up" }));
    expect(await screen.findByText("Saved.")).toBeInTheDocument();
    expect(sent).toEqual({ p_organization_id: ORG, p_product_code: "credits_5000", p_threshold: 250, p_monthly_limit: 4 });
  });

  it("turns it off with a null pack", async () => {
    let sent: unknown = null;
    renderWithBackend(<AutoTopUpForm organizationId={ORG} role="admin" />, backend({ setting, card: visa }, (request) => {
      if (request.path !== "/rest/v1/rpc/set_auto_top_up") return undefined;
      sent = request.body;
      return new Response(null, { status: 204 });
    }));
    expect(await screen.findByText("Buys 5,000 credits ($45.00) when the balance falls below 200 credits, at most 2 times a month."))
      .toBeInTheDocument();
    expect(screen.getByLabelText("Pack to buy")).toHaveValue("credits_5000");
    await userEvent.click(screen.getByRole("button", { name: "Turn off" }));
    expect(await screen.findByText("Saved.")).toBeInTheDocument();
    expect(sent).toEqual({ p_organization_id: ORG, p_product_code: null, p_threshold: null });
  });

  it("says when the database refuses a value", async () => {
    renderWithBackend(<AutoTopUpForm organizationId={ORG} role="owner" />, backend({ setting, card: visa }, (request) =>
      request.path === "/rest/v1/rpc/set_auto_top_up"
        ? json({ code: "22023", message: "monthly limit must be from 1 to 100 top-ups", details: null, hint: null }, { status: 400 })
        : undefined));
    await userEvent.click(await screen.findByRole("button", { name: "Save auto top-up" }));
    expect(await screen.findByRole("alert")).toHaveTextContent("That value is not valid.");
  });

  it("says why the system turned it off, and warns when there is no card", async () => {
    renderWithBackend(<AutoTopUpForm organizationId={ORG} role="member" />,
      backend({ setting: { ...setting, enabled: false, disabled_reason: "three top-up payments failed in a row" } }));
    expect(await screen.findByText("Auto top-up is off.")).toBeInTheDocument();
    expect(screen.getByRole("alert")).toHaveTextContent("three top-up payments failed in a row");
    expect(screen.queryByRole("button")).not.toBeInTheDocument();
    // Whom to ask is said once, at the top of the Credits tab, not in every card.
    expect(screen.queryByRole("note")).not.toBeInTheDocument();
  });

  it("shows members the setting read-only", async () => {
    renderWithBackend(<AutoTopUpForm organizationId={ORG} role="member" />, backend({ setting, card: visa }));
    expect(await screen.findByText(/Buys 5,000 credits/)).toBeInTheDocument();
    expect(screen.queryByLabelText("Pack to buy")).not.toBeInTheDocument();
  });

  it("warns an owner when auto top-up is on but no card is on file", async () => {
    renderWithBackend(<AutoTopUpForm organizationId={ORG} role="owner" />, backend({ setting, card: null }));
    expect(await screen.findByText("No card on file: top-ups start once a card is saved.")).toBeInTheDocument();
  });
});
