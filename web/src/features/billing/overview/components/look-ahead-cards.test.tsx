import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { json, renderWithBackend, storeSignedInSession, type FakeHandler } from "@/test/fake-backend";
import { ORG, plan, subscription } from "@/test/fixtures";
import type { OrganizationRole } from "@/types/billing";
import { BillingViewerProvider } from "../../components/billing-viewer";
import { OverviewTab } from "./overview-tab";

const NOW = new Date("2026-12-01T12:00:00Z");
const inDays = (days: number) => new Date(NOW.getTime() + days * 86_400_000).toISOString();

// Only Date is faked: the fake backend's promises and Testing Library's timers run as usual.
beforeEach(() => {
  vi.useFakeTimers({ now: NOW, toFake: ["Date"] });
  // The next charge comes from the billing function, which needs a signed-in member's token.
  storeSignedInSession();
});
afterEach(() => {
  vi.useRealTimers();
  window.history.replaceState(null, "", "/");
});

interface State {
  subscriptions: unknown[];
  balance: { total: number; purchased: number; subscription: number };
  lots: { subscription_id: string | null; granted: number; remaining: number; expires_at: string }[];
  usage: { day: string; credits: number }[];
  precedence: "purchased_first" | "expiring_first";
  upcoming: unknown;
  card: unknown[];
}

function state(overrides: Partial<State> = {}): State {
  return {
    subscriptions: [subscription({ plan_id: "plan-professional", current_period_end: inDays(30) })],
    balance: { total: 1600, purchased: 1000, subscription: 600 },
    lots: [{ subscription_id: "sub-row-1", granted: 1000, remaining: 600, expires_at: inDays(30) }],
    usage: [],
    precedence: "purchased_first",
    upcoming: { upcoming: { date: inDays(30), amount_due: 4900, currency: "usd", lines: [], scheduled_change: null } },
    card: [{ stripe_payment_method_id: "pm_1", brand: "visa", last4: "4242", exp_month: 12, exp_year: 2034 }],
    ...overrides,
  };
}

function handler(s: State): FakeHandler {
  return ({ path }) => {
    switch (path) {
      case "/rest/v1/organization_subscriptions":
        return json(s.subscriptions);
      case "/rest/v1/subscription_plans":
        return json([plan("starter"), plan("professional", { monthly_unit_amount: 4900, monthly_credits: 5000 })]);
      case "/rest/v1/rpc/get_credit_balance":
        return json({ ...s.balance, next_expiry_at: null, expiring_amount: 0, reserved: 0 });
      case "/rest/v1/credit_usage_daily":
        return json(s.usage.map((u) => ({ organization_id: ORG, event_key: "ai_inference", events: 1, quantity: 1, ...u })));
      case "/rest/v1/credit_events":
        return json([{ event_key: "ai_inference", name: "AI inference" }]);
      case "/rest/v1/credit_lots":
        return json(s.lots);
      case "/rest/v1/organizations":
        return json({ credit_precedence: s.precedence });
      case "/rest/v1/cards_on_file":
        return json(s.card[0] ?? null);
      case "/rest/v1/billing_alerts":
        return json([]);
      case "/rest/v1/rpc/organization_managers":
        return json([{ user_id: "u-dana", email: "dana@example.com", role: "owner" }]);
      case `/functions/v1/billing/subscription/${ORG}/upcoming`:
        return json(s.upcoming);
      default:
        return undefined;
    }
  };
}

/** The Overview as the Billing page shows it to `role` (the viewer decides who gets the buttons). */
function renderOverview(s: State, role: OrganizationRole = "owner") {
  return renderWithBackend(
    <BillingViewerProvider value={{ organizationId: ORG, role }}>
      <OverviewTab organizationId={ORG} />
    </BillingViewerProvider>,
    handler(s),
  );
}

/** The Overview's card (section) with this heading. */
function card(name: string): HTMLElement {
  return screen.getByRole("heading", { name }).closest("section") as HTMLElement;
}

/** Seven days of usage at `perDay` credits a day, today included. */
function week(perDay: number) {
  return Array.from({ length: 7 }, (_, i) => ({ day: inDays(-i).slice(0, 10), credits: perDay }));
}

describe("Overview: the subscription, its next charge and the card on file", () => {
  it("shows the plan's price, the next charge from Stripe's preview and the card, with Update card for owners", async () => {
    const { calls } = renderOverview(state());
    const subscriptionCard = card("Subscription");
    expect(await within(subscriptionCard).findByText("$49.00 on Dec 31, 2026")).toBeInTheDocument();
    expect(within(subscriptionCard).getByText("$49.00 / month")).toBeInTheDocument();
    expect(await within(subscriptionCard).findByText("Visa ending in 4242, expires 12/2034")).toBeInTheDocument();
    expect(within(subscriptionCard).getByRole("button", { name: "Update card" })).toBeInTheDocument();
    expect(calls).toContain(`GET /functions/v1/billing/subscription/${ORG}/upcoming`);
  });

  it("shows a scheduled change beside the next charge", async () => {
    renderOverview(
      state({
        upcoming: {
          upcoming: {
            date: inDays(30), amount_due: 1900, currency: "usd", lines: [],
            scheduled_change: { plan_code: "starter", plan_name: "Starter", interval: "month", effective_at: inDays(30) },
          },
        },
      }),
    );
    expect(await screen.findByText("Changes to Starter (monthly) on Dec 31, 2026")).toBeInTheDocument();
    expect(screen.getByText("$19.00 on Dec 31, 2026")).toBeInTheDocument();
  });

  it("gives members the figures but not the portal button", async () => {
    renderOverview(state(), "member");
    expect(await screen.findByText("Visa ending in 4242, expires 12/2034")).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: "Update card" })).not.toBeInTheDocument();
  });

  it("says a subscription ending at period end has no next charge, without asking Stripe", async () => {
    const { calls } = renderOverview(state({ subscriptions: [subscription({ cancel_at_period_end: true, current_period_end: inDays(30) })] }));
    expect(await screen.findByText("None: it ends on Dec 31, 2026")).toBeInTheDocument();
    expect(calls.some((call) => call.includes("/upcoming"))).toBe(false);
  });

  it("without a subscription, leads to the Plans tab", async () => {
    renderOverview(state({ subscriptions: [], lots: [], upcoming: { upcoming: null } }));
    expect(await screen.findByRole("link", { name: "Choose a plan" })).toHaveAttribute("href", "/?tab=plans");
    expect(await within(card("Subscription credits this period")).findByText(/No subscription/)).toBeInTheDocument();
  });
});

describe("Overview: subscription credits used this period", () => {
  it("shows what is used of the period's allowance, and what is left until the period ends", async () => {
    renderOverview(state());
    const allowance = card("Subscription credits this period");
    expect(await within(allowance).findByText("of 1,000 credits used")).toBeInTheDocument();
    expect(within(allowance).getByRole("meter", { name: "Subscription credits used this period" })).toHaveValue(400);
    expect(within(allowance).getByText(/600 credits left until Dec 31, 2026/)).toBeInTheDocument();
  });

  it("suggests more credits once most of the allowance is used", async () => {
    renderOverview(state({ lots: [{ subscription_id: "sub-row-1", granted: 1000, remaining: 100, expires_at: inDays(30) }] }));
    const allowance = card("Subscription credits this period");
    expect(await within(allowance).findByRole("link", { name: "Buy credits" })).toHaveAttribute("href", "/?tab=credits#buy-credits");
    expect(within(allowance).getByRole("link", { name: "Compare plans" })).toHaveAttribute("href", "/?tab=plans");
  });
});

describe("Overview: how long the balance lasts", () => {
  it("forecasts from the last 7 days' average and names the window", async () => {
    // 1,600 credits at 100 a day: 16 days, before the renewal in 30 days.
    renderOverview(state({ usage: week(100) }));
    const forecast = card("How long the balance lasts");
    expect(await within(forecast).findByText("About 16 days")).toBeInTheDocument();
    expect(within(forecast).getByText(/until Dec 17, 2026/)).toBeInTheDocument();
    expect(within(forecast).getByText("At the last 7 days' average of 100 credits a day.")).toBeInTheDocument();
    expect(within(forecast).getByText(/runs out before your plan renews on Dec 31, 2026/)).toBeInTheDocument();
    expect(within(forecast).getByRole("link", { name: "Buy credits" })).toHaveAttribute("href", "/?tab=credits#buy-credits");
    expect(within(forecast).getByRole("link", { name: "Turn on auto top-up" })).toHaveAttribute("href", "/?tab=credits#cr-auto-top-up");
  });

  it("calls for nothing when the balance outlasts the period", async () => {
    renderOverview(state({ usage: week(10) }));
    const forecast = card("How long the balance lasts");
    expect(await within(forecast).findByText("About 100 days")).toBeInTheDocument();
    expect(within(forecast).queryByRole("link")).not.toBeInTheDocument();
  });

  it("with nothing left, says usage is refused until credits arrive and leads to buying", async () => {
    renderOverview(state({ usage: week(100), lots: [], balance: { total: 0, purchased: 0, subscription: 0 } }));
    const forecast = card("How long the balance lasts");
    expect(await within(forecast).findByText("No credits left")).toBeInTheDocument();
    expect(within(forecast).getByText("Usage is refused until credits arrive; the plan renews on Dec 31, 2026.")).toBeInTheDocument();
    expect(within(forecast).getByRole("link", { name: "Buy credits" })).toBeInTheDocument();
  });

  it("says so when nothing was consumed", async () => {
    renderOverview(state());
    expect(await within(card("How long the balance lasts")).findByText(/No credits used in the last 7 days/)).toBeInTheDocument();
  });

  it("tells members whom to ask instead of showing the actions", async () => {
    renderOverview(state({ usage: week(100) }), "member");
    const forecast = card("How long the balance lasts");
    expect(await within(forecast).findByText("Ask dana@example.com (owner) to buy credits or turn on auto top-up.")).toBeInTheDocument();
    expect(within(forecast).queryByRole("link")).not.toBeInTheDocument();
  });
});

describe("Overview: what expires next", () => {
  const soon = { subscription_id: "sub-row-1", granted: 1000, remaining: 1000, expires_at: inDays(3) };

  it("warns when credits expire within 7 days unused because purchased credits are spent first, and leads owners to the spending order", async () => {
    renderOverview(state({ lots: [soon], balance: { total: 2000, purchased: 1000, subscription: 1000 }, usage: week(100) }));
    const expiry = card("What expires next");
    expect(await within(expiry).findByText("1,000 credits")).toBeInTheDocument();
    // 100 a day: the 1,000 purchased credits outlast the 3 days before the expiry.
    expect(within(expiry).getByText(/About 1,000 credits will expire unused/)).toBeInTheDocument();
    expect(within(expiry).getByText(/purchased credits are spent first/)).toBeInTheDocument();
    const link = within(expiry).getByRole("link", { name: "Spend expiring credits first" });
    expect(link).toHaveAttribute("href", "/?tab=credits#spending-order");
    await userEvent.click(link);
    expect(window.location.search).toBe("?tab=credits");
    expect(window.location.hash).toBe("#spending-order");
  });

  it("does not warn when the expiring credits are spent first and the rate uses them up", async () => {
    renderOverview(state({ lots: [soon], precedence: "expiring_first", balance: { total: 2000, purchased: 1000, subscription: 1000 }, usage: week(400) }));
    const expiry = card("What expires next");
    expect(await within(expiry).findByText("1,000 credits")).toBeInTheDocument();
    expect(within(expiry).queryByRole("note")).not.toBeInTheDocument();
  });

  it("tells members whom to ask to change the spending order", async () => {
    renderOverview(state({ lots: [soon], usage: week(10) }), "member");
    const expiry = card("What expires next");
    expect(await within(expiry).findByText("Ask dana@example.com (owner) to change the spending order so expiring credits are spent first.")).toBeInTheDocument();
    expect(within(expiry).queryByRole("link")).not.toBeInTheDocument();
  });

  it("says nothing expires when only purchased credits are left", async () => {
    renderOverview(state({ lots: [] }));
    expect(await within(card("What expires next")).findByText("Nothing expires: purchased credits never do.")).toBeInTheDocument();
  });
});
