import { screen, within } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { beforeEach, describe, expect, it } from "vitest";
import { json, renderWithBackend, storeSignedInSession } from "@/test/fake-backend";
import { ORG, plan, subscription } from "@/test/fixtures";
import type { OrganizationRole, OrganizationSubscription } from "@/types/billing";
import PlansTab from "./plans-tab";

const plans = [
  plan("starter"),
  plan("professional", { monthly_unit_amount: 4900, annual_unit_amount: 49000, monthly_credits: 5000, sort_order: 20 }),
];

const PERIOD_END = "2026-12-31T00:00:00Z";
const UPGRADE = {
  kind: "upgrade", effective_at: "2026-12-01T12:00:00Z", amount_due_now: 3000, currency: "usd", proration_date: 1796126400,
  credits_now: 4000, lines: [{ description: "Remaining time on Professional", amount: 4000 }, { description: "Unused time on Starter", amount: -1000 }],
  next_charge: { date: PERIOD_END, amount: 4900 },
};
const SCHEDULED = {
  kind: "scheduled", effective_at: PERIOD_END, amount_due_now: 0, currency: "usd", proration_date: 1796126400,
  credits_now: 0, lines: [], next_charge: { date: PERIOD_END, amount: 19000 },
};

/**
 * A billing backend that behaves as the server does once the webhook has landed: a confirmed
 * upgrade shows on the subscription, a scheduled change in the upcoming invoice.
 */
function server(start: Partial<OrganizationSubscription> = {}, options: { preview?: object; decline?: boolean } = {}) {
  const state = {
    subscription: subscription({ current_period_end: PERIOD_END, ...start }),
    scheduled: null as null | { plan_code: string; plan_name: string; interval: string; effective_at: string },
    bodies: [] as { path: string; body: unknown }[],
  };
  const handler = ({ path, method, body }: { path: string; method: string; body: unknown }) => {
    if (method === "POST" && path.startsWith("/functions/")) state.bodies.push({ path, body });
    switch (path) {
      case "/rest/v1/subscription_plans":
        return json(plans);
      case "/rest/v1/organization_subscriptions":
        return json([state.subscription]);
      case "/rest/v1/rpc/trial_eligibility":
        return json([{ eligible: false, reason: "trial_used" }]);
      case "/rest/v1/rpc/get_credit_balance":
        return json({ total: 0, purchased: 0, subscription: 0, next_expiry_at: null, expiring_amount: 0, reserved: 0 });
      case `/functions/v1/billing/subscription/${ORG}/upcoming`:
        return json({ upcoming: { date: PERIOD_END, amount_due: 1900, currency: "usd", lines: [], scheduled_change: state.scheduled } });
      case "/functions/v1/billing/subscription/change/preview":
        return json(options.preview ?? UPGRADE);
      case "/functions/v1/billing/subscription/change": {
        if (options.decline) return json({ error: { code: "card_declined", message: "Your card was declined." } }, { status: 402 });
        const request = body as { plan_code: string; interval: "month" | "year" };
        const target = plans.find((p) => p.code === request.plan_code)!;
        const preview = (options.preview ?? UPGRADE) as typeof UPGRADE;
        if (preview.kind === "upgrade") state.subscription = { ...state.subscription, plan_id: target.id, billing_interval: request.interval };
        else state.scheduled = { plan_code: target.code, plan_name: target.name, interval: request.interval, effective_at: PERIOD_END };
        return json({ kind: preview.kind, effective_at: preview.effective_at });
      }
      case "/functions/v1/billing/subscription/change/cancel":
        state.scheduled = null;
        return json({ scheduled_change: null });
      case "/functions/v1/billing/subscription/resume":
        state.subscription = { ...state.subscription, cancel_at_period_end: false, cancel_at: null };
        return json({ cancel_at_period_end: false });
      case "/rest/v1/rpc/organization_managers":
        return json([{ user_id: "u-dana", email: "dana@example.com", role: "owner" }]);
      case "/functions/v1/billing/subscription/portal":
        return json({ url: "https://billing.stripe.test/session/1" });
      default:
        return undefined;
    }
  };
  return { state, handler };
}

function renderPlans(s: ReturnType<typeof server>, role: OrganizationRole = "owner") {
  return renderWithBackend(<PlansTab organizationId={ORG} role={role} />, s.handler);
}

beforeEach(() => {
  storeSignedInSession();
});

describe("Plans tab: switching plans", () => {
  it("offers every other plan, and the current plan in the other interval, but not the current one", async () => {
    renderPlans(server());
    expect(await screen.findByRole("button", { name: "Switch to Professional (monthly)" })).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: /Switch to Starter/ })).not.toBeInTheDocument();
    await userEvent.click(screen.getByRole("radio", { name: "Annual" }));
    expect(screen.getByRole("button", { name: "Switch to Starter (annual)" })).toBeInTheDocument();
  });

  it("previews an upgrade (charged now, credits added now, next charge) and confirms it with the preview's proration date", async () => {
    const s = server();
    renderPlans(s);
    await userEvent.click(await screen.findByRole("button", { name: "Switch to Professional (monthly)" }));
    const dialog = await screen.findByRole("dialog", { name: "Switch to Professional (monthly)" });
    expect(await within(dialog).findByText("$30.00")).toBeInTheDocument();
    expect(within(dialog).getByText("4,000 credits")).toBeInTheDocument();
    expect(within(dialog).getByText("$49.00 on Dec 31, 2026")).toBeInTheDocument();
    await userEvent.click(within(dialog).getByRole("button", { name: "Pay $30.00 and switch" }));
    expect(await screen.findByText("You are now on Professional (monthly). 4,000 credits were added to your balance.")).toBeInTheDocument();
    expect(screen.queryByRole("dialog")).not.toBeInTheDocument();
    expect(s.state.bodies).toContainEqual({
      path: "/functions/v1/billing/subscription/change",
      body: { organization_id: ORG, plan_code: "professional", interval: "month", proration_date: UPGRADE.proration_date },
    });
    // The new plan is the current one now: Starter is offered instead.
    expect(await screen.findByRole("button", { name: "Switch to Starter (monthly)" })).toBeInTheDocument();
  });

  it("says a declined card changed nothing and leads to the portal to update the card", async () => {
    const s = server({}, { decline: true });
    renderPlans(s);
    await userEvent.click(await screen.findByRole("button", { name: "Switch to Professional (monthly)" }));
    const dialog = await screen.findByRole("dialog");
    await userEvent.click(await within(dialog).findByRole("button", { name: "Pay $30.00 and switch" }));
    expect(await within(dialog).findByText("Your card was declined.")).toBeInTheDocument();
    expect(within(dialog).getByText(/Nothing was charged and your plan has not changed/)).toBeInTheDocument();
    await userEvent.click(within(dialog).getByRole("button", { name: "Update card" }));
    expect(s.state.bodies.map((b) => b.path)).toContain("/functions/v1/billing/subscription/portal");
    expect(s.state.subscription.plan_id).toBe("plan-starter");
  });

  it("schedules a downgrade for the period's end, shows it on the current plan, and keeps the current plan on request", async () => {
    const s = server({ plan_id: "plan-professional" }, { preview: SCHEDULED });
    renderPlans(s);
    await userEvent.click(await screen.findByRole("button", { name: "Switch to Starter (monthly)" }));
    const dialog = await screen.findByRole("dialog");
    expect(
      await within(dialog).findByText("Changes to Starter (monthly) on Dec 31, 2026, nothing charged now, this period's credits are kept."),
    ).toBeInTheDocument();
    await userEvent.click(within(dialog).getByRole("button", { name: "Schedule the change" }));
    expect(await screen.findByText("Your plan changes to Starter (monthly) on Dec 31, 2026. Nothing was charged.")).toBeInTheDocument();
    const current = screen.getByText("Current plan").closest("li") as HTMLElement;
    expect(within(current).getByText("Changes to Starter (monthly) on Dec 31, 2026.")).toBeInTheDocument();
    await userEvent.click(within(current).getByRole("button", { name: "Keep current plan" }));
    expect(await screen.findByText("The scheduled change is cancelled: you keep your current plan.")).toBeInTheDocument();
    expect(within(current).queryByText(/Changes to Starter/)).not.toBeInTheDocument();
    expect(s.state.bodies.map((b) => b.path)).toContain("/functions/v1/billing/subscription/change/cancel");
  });

  it("closes the confirmation without changing anything on Cancel", async () => {
    const s = server();
    renderPlans(s);
    await userEvent.click(await screen.findByRole("button", { name: "Switch to Professional (monthly)" }));
    const dialog = await screen.findByRole("dialog");
    await within(dialog).findByText("$30.00");
    await userEvent.click(within(dialog).getByRole("button", { name: "Cancel" }));
    expect(screen.queryByRole("dialog")).not.toBeInTheDocument();
    expect(s.state.bodies.map((b) => b.path)).not.toContain("/functions/v1/billing/subscription/change");
  });
});

describe("Plans tab: a cancellation scheduled at period end", () => {
  it("offers Resume subscription instead of switching, and shows the renewal once resumed", async () => {
    const s = server({ cancel_at_period_end: true, cancel_at: PERIOD_END });
    renderPlans(s);
    expect(await screen.findByText("Ends on Dec 31, 2026: it does not renew.")).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: /^Switch/ })).not.toBeInTheDocument();
    await userEvent.click(screen.getByRole("button", { name: "Resume subscription" }));
    expect(await screen.findByText("Your subscription is resumed: it renews as usual.")).toBeInTheDocument();
    expect(screen.queryByText(/Ends on/)).not.toBeInTheDocument();
    expect(await screen.findByRole("button", { name: "Switch to Professional (monthly)" })).toBeInTheDocument();
  });
});

describe("Plans tab: members", () => {
  it("shows members the plans read-only, the scheduled change included, and who can change them", async () => {
    const s = server();
    s.state.scheduled = { plan_code: "professional", plan_name: "Professional", interval: "year", effective_at: PERIOD_END };
    renderPlans(s, "member");
    expect(await screen.findByText("Changes to Professional (annual) on Dec 31, 2026.")).toBeInTheDocument();
    expect(await screen.findByText("Ask dana@example.com (owner) to switch plans or resume the subscription.")).toBeInTheDocument();
    expect(screen.queryByRole("button", { name: /Switch|Keep current plan|Resume/ })).not.toBeInTheDocument();
  });
});
