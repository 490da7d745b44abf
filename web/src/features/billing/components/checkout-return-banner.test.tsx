import { screen } from "@testing-library/react";
import { describe, expect, it, vi } from "vitest";
import { json, renderWithBackend } from "@/test/fake-backend";
import { ORG } from "@/test/fixtures";
import { parseCheckoutReturn } from "../api/checkout-return";
import { CheckoutReturnBanner } from "./checkout-return-banner";

describe("returning from Checkout", () => {
  it("recognises the success URL Stripe sends the customer back to", () => {
    expect(parseCheckoutReturn("?checkout=success&kind=credits&session_id=cs_test_1")).toEqual({ kind: "credits", sessionId: "cs_test_1" });
    expect(parseCheckoutReturn("?checkout=success")).toEqual({ kind: "subscription", sessionId: null });
    expect(parseCheckoutReturn("?checkout=cancel")).toBeNull();
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

  it("for a subscription, waits for an active or trialing subscription", async () => {
    let polls = 0;
    const view = renderWithBackend(
      <CheckoutReturnBanner organizationId={ORG} checkoutReturn={{ kind: "subscription", sessionId: null }} onDismiss={vi.fn()} pollIntervalMs={20} />,
      ({ path }) => (path === "/rest/v1/organization_subscriptions" ? json(++polls < 2 ? [] : [{ id: "s" }]) : undefined),
    );
    expect(await screen.findByText("Payment applied.")).toBeInTheDocument();
    expect(view.calls[0]).toContain("status=in.%28trialing%2Cactive%29");
  });
});
