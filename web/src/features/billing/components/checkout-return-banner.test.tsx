import { act, screen, waitFor } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { describe, expect, it, vi } from "vitest";
import { json, renderWithBackend } from "@/test/fake-backend";
import { ORG, subscription } from "@/test/fixtures";
import { parseCheckoutReturn, parseReturnFromStripe } from "../api/checkout-return";
import { CheckoutReturnBanner } from "./checkout-return-banner";
import { PortalReturnBanner } from "./portal-return-banner";
import { ReturnFromStripeBanner } from "./return-from-stripe";

describe("returning from Checkout", () => {
  it("recognises the success URL Stripe sends the customer back to", () => {
    expect(parseCheckoutReturn("?checkout=success&kind=credits&session_id=cs_test_1")).toEqual({ kind: "credits", sessionId: "cs_test_1" });
    expect(parseCheckoutReturn("?checkout=success")).toEqual({ kind: "subscription", sessionId: null });
    expect(parseCheckoutReturn("?checkout=cancel")).toBeNull();
  });

  it("recognises the cancel URL and the portal's return URL too", () => {
    expect(parseReturnFromStripe("?checkout=cancelled&kind=credits")).toEqual({ type: "checkout-cancelled", kind: "credits" });
    expect(parseReturnFromStripe("?portal=returned")).toEqual({ type: "portal" });
    expect(parseReturnFromStripe("?checkout=success&kind=subscription&session_id=cs_1")).toEqual({
      type: "checkout-paid",
      checkout: { kind: "subscription", sessionId: "cs_1" },
    });
    expect(parseReturnFromStripe("")).toBeNull();
  });

  it("says the payment is received and credits are arriving, then updates once the webhook applied it", async () => {
    let polls = 0;
    const view = renderWithBackend(
      <CheckoutReturnBanner
        organizationId={ORG}
        checkoutReturn={{ kind: "credits", sessionId: "cs_test_1" }}
        onDismiss={vi.fn()}
        pollIntervalMs={20}
      />,
      ({ path }) => (path === "/rest/v1/billing_history" ? json(++polls < 3 ? [] : [{ id: "bh-1" }]) : undefined),
    );
    expect(screen.getByRole("status")).toHaveTextContent("Payment received, credits arriving.");
    expect(await screen.findByText("Payment applied.")).toBeInTheDocument();
    expect(polls).toBeGreaterThanOrEqual(3);
    expect(view.calls.every((c) => c.includes("stripe_checkout_session_id=eq.cs_test_1"))).toBe(true);
  });

  it("for a subscription, waits until the trialing or active subscription's credits are granted", async () => {
    let lotPolls = 0;
    const view = renderWithBackend(
      <CheckoutReturnBanner organizationId={ORG} checkoutReturn={{ kind: "subscription", sessionId: null }} onDismiss={vi.fn()} pollIntervalMs={20} />,
      ({ path }) => {
        if (path === "/rest/v1/organization_subscriptions") return json([subscription({ status: "trialing" })]);
        // The subscription row lands first; the invoice with the credits a moment later.
        if (path === "/rest/v1/credit_lots") return json(++lotPolls < 3 ? [] : [{ id: 7 }]);
        if (path === "/rest/v1/subscription_plans") return json([{ monthly_credits: 1000, annual_credits: 12000 }]);
        return undefined;
      },
    );
    expect(screen.getByRole("status")).toHaveTextContent("Payment received, credits arriving.");
    expect(await screen.findByText("Payment applied.")).toBeInTheDocument();
    expect(lotPolls).toBeGreaterThanOrEqual(3);
    expect(view.calls[0]).toContain("status=in.%28trialing%2Cactive%29");
    expect(view.calls.some((c) => c.includes("subscription_id=eq.sub-row-1"))).toBe(true);
  });

  it("for a plan without credits, the subscription alone is enough", async () => {
    renderWithBackend(
      <CheckoutReturnBanner organizationId={ORG} checkoutReturn={{ kind: "subscription", sessionId: null }} onDismiss={vi.fn()} pollIntervalMs={20} />,
      ({ path }) => {
        if (path === "/rest/v1/organization_subscriptions") return json([subscription({ status: "active" })]);
        if (path === "/rest/v1/credit_lots") return json([]);
        if (path === "/rest/v1/subscription_plans") return json([{ monthly_credits: 0, annual_credits: 0 }]);
        return undefined;
      },
    );
    expect(await screen.findByText("Payment applied.")).toBeInTheDocument();
  });

  it("says plainly that a cancelled checkout charged nothing", async () => {
    const onDismiss = vi.fn();
    renderWithBackend(
      <ReturnFromStripeBanner organizationId={ORG} returned={{ type: "checkout-cancelled", kind: "credits" }} onDismiss={onDismiss} />,
      () => undefined,
    );
    expect(screen.getByRole("status")).toHaveTextContent("Checkout cancelled. Nothing was charged");
    await userEvent.click(screen.getByRole("button", { name: "Close" }));
    expect(onDismiss).toHaveBeenCalled();
  });
});

describe("returning from the customer portal", () => {
  it("re-reads the subscription and balance until the polling window ends", async () => {
    const counts = { subscription: 0, balance: 0 };
    renderWithBackend(<PortalReturnBanner organizationId={ORG} onDismiss={vi.fn()} pollIntervalMs={20} pollForMs={200} />, ({ path }) => {
      if (path === "/rest/v1/organization_subscriptions") {
        counts.subscription += 1;
        return json([subscription({ cancel_at_period_end: counts.subscription > 2 })]);
      }
      if (path === "/rest/v1/rpc/get_credit_balance") {
        counts.balance += 1;
        return json({ total: 0, purchased: 0, subscription: 0, next_expiry_at: null, expiring_amount: 0 });
      }
      return undefined;
    });
    expect(screen.getByRole("status")).toHaveTextContent("Back from the customer portal.");
    await waitFor(() => expect(counts.subscription).toBeGreaterThanOrEqual(3));
    expect(counts.balance).toBeGreaterThanOrEqual(2);
    // After the window it stops asking.
    const pause = (ms: number) => act(() => new Promise((resolve) => setTimeout(resolve, ms)));
    await pause(300);
    const settled = counts.subscription;
    await pause(150);
    expect(counts.subscription).toBe(settled);
  });
});
