import { render, screen, within } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import type { OrganizationDetail } from "../api/get-organization";
import { OrganizationSpending } from "./organization-spending";

const LIVE_ID = "11111111-1111-4111-8111-111111111111";
const SETTLED_ID = "22222222-2222-4222-8222-222222222222";
const LAPSED_ID = "33333333-3333-4333-8333-333333333333";

/** What operator_organization answers for an organization that uses all of it. */
const spending: Pick<OrganizationDetail, "reservations" | "spend_limit" | "auto_top_up" | "card_on_file" | "top_ups"> = {
  reservations: {
    live: [{ id: LIVE_ID, event_key: "ai_inference", quantity: 4, credits: 100, expires_at: "2026-12-01T12:15:00Z", created_at: "2026-12-01T12:00:00Z" }],
    recent_closed: [
      { id: SETTLED_ID, event_key: "storage_gb_month", quantity: 2, credits: 20, status: "settled", credits_consumed: 10,
        expires_at: "2026-12-01T12:15:00Z", created_at: "2026-12-01T11:00:00Z", closed_at: "2026-12-01T11:05:00Z" },
      { id: LAPSED_ID, event_key: "api_call_basic", quantity: 50, credits: 50, status: "expired", credits_consumed: null,
        expires_at: "2026-12-01T10:01:00Z", created_at: "2026-12-01T10:00:00Z", closed_at: "2026-12-01T10:01:00Z" },
    ],
  },
  spend_limit: { monthly_credits: 5000, month_start: "2026-12-01", consumed_this_month: 10, reserved: 100, remaining: 4890 },
  auto_top_up: {
    enabled: false, product_code: "credits_1000", product_name: "1,000 credits", product_credits: 1000, threshold: 200, monthly_limit: 3,
    consecutive_failures: 3, disabled_reason: "three payments failed in a row", updated_at: "2026-12-01T09:00:00Z",
  },
  card_on_file: { brand: "visa", last4: "4242", exp_month: 3, exp_year: 2030, observed_at: "2026-12-01T08:00:00Z" },
  top_ups: [{
    id: "44444444-4444-4444-8444-444444444444", credits: 1000, amount: 1000, currency: "usd", status: "failed", failure_code: "card_declined",
    failure_message: "Your card was declined.", stripe_payment_intent_id: "pi_123", created_at: "2026-12-01T09:00:00Z", finished_at: "2026-12-01T09:00:05Z",
  }],
};

function renderSpending(overrides: Partial<typeof spending> = {}) {
  render(<OrganizationSpending detail={{ ...spending, ...overrides } as OrganizationDetail} />);
}

describe("an organization's spending on its operator page", () => {
  it("lists the live reservations with the credits they hold, and the recently closed ones with their status", () => {
    renderSpending();
    expect(screen.getByRole("heading", { name: "Live · 100 credits held" })).toBeInTheDocument();
    const live = screen.getByRole("table", { name: "Live reservations" });
    const liveRow = within(live).getByRole("row", { name: /ai_inference/ });
    expect(within(liveRow).getByText("ai_inference")).toBeInTheDocument();
    expect(within(liveRow).getByText("100")).toBeInTheDocument();
    expect(within(liveRow).getByText(LIVE_ID)).toBeInTheDocument();

    const closed = screen.getByRole("table", { name: "Recently closed reservations" });
    const settled = within(closed).getByRole("row", { name: new RegExp(SETTLED_ID) });
    const lapsed = within(closed).getByRole("row", { name: new RegExp(LAPSED_ID) });
    expect(within(closed).getAllByRole("row").slice(1)).toEqual([settled, lapsed]);
    expect(within(settled).getByText("settled")).toBeInTheDocument();
    expect(within(settled).getByText("10")).toBeInTheDocument();
    expect(within(lapsed).getByText("expired")).toBeInTheDocument();
    expect(within(lapsed).getByText(LAPSED_ID)).toBeInTheDocument();
  });

  it("shows the spend limit with this month's consumption, what reservations hold and what remains", () => {
    renderSpending();
    const limit = screen.getByRole("region", { name: "Spend limit" });
    expect(within(limit).getByText("5,000 credits")).toBeInTheDocument();
    expect(within(limit).getByText("Consumed since Dec 1, 2026 (UTC)").nextSibling).toHaveTextContent("10 credits");
    expect(within(limit).getByText("Held by reservations").nextSibling).toHaveTextContent("100 credits");
    expect(within(limit).getByText("Remaining this month").nextSibling).toHaveTextContent("4,890 credits");
  });

  it("shows the auto top-up setting, why the system turned it off, and the card it charges", () => {
    renderSpending();
    const topUp = screen.getByRole("region", { name: "Auto top-up" });
    expect(within(topUp).getByText("Status").nextSibling).toHaveTextContent("Off: three payments failed in a row");
    expect(within(topUp).getByText("Buys").nextSibling).toHaveTextContent("1,000 credits (1,000 credits)");
    expect(within(topUp).getByText("When the balance is below").nextSibling).toHaveTextContent("200 credits");
    expect(within(topUp).getByText("visa ending 4242, expires 03/2030")).toBeInTheDocument();
  });

  it("lists the recent top-ups with their outcome and the failure", () => {
    renderSpending();
    const table = screen.getByRole("table", { name: "Top-ups" });
    const row = within(table).getByRole("row", { name: /pi_123/ });
    expect(row).toHaveTextContent("failed");
    expect(row).toHaveTextContent("Your card was declined. (card_declined)");
    expect(row).toHaveTextContent("$10.00");
    expect(row).toHaveTextContent("pi_123");
  });

  it("says plainly when the organization has none of these", () => {
    renderSpending({
      reservations: { live: [], recent_closed: [] },
      spend_limit: { monthly_credits: null, month_start: "2026-12-01", consumed_this_month: 0, reserved: 0, remaining: null },
      auto_top_up: null,
      card_on_file: null,
      top_ups: [],
    });
    expect(screen.getByRole("heading", { name: "Live" })).toBeInTheDocument();
    expect(screen.getByText("No live reservations.")).toBeInTheDocument();
    expect(screen.getByText("No closed reservations yet.")).toBeInTheDocument();
    expect(screen.getByText("Monthly limit").nextSibling).toHaveTextContent("No limit");
    expect(screen.queryByText("Remaining this month")).not.toBeInTheDocument();
    expect(screen.getByText("Never set up.")).toBeInTheDocument();
    expect(screen.getByText("No card on file.")).toBeInTheDocument();
    expect(screen.getByText("No top-ups yet.")).toBeInTheDocument();
  });
});
