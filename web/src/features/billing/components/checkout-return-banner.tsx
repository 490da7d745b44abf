import { useQueryClient } from "@tanstack/react-query";
import { useEffect, useState } from "react";
import { billingKey } from "../api/billing-keys";
import { useCheckoutApplied, type CheckoutReturn } from "../api/checkout-return";

/** After this long without the webhook's effect we say so, but keep polling. */
const SLOW_AFTER_MS = 60_000;

/**
 * Shown on return from Stripe Checkout. Stripe redirects before (or while) the webhook is
 * delivered, so the page polls until the payment's effect is visible, then refreshes every
 * billing query of the organization instead of leaving stale figures on screen.
 */
export function CheckoutReturnBanner({
  organizationId,
  checkoutReturn,
  onDismiss,
  pollIntervalMs,
}: {
  organizationId: string;
  checkoutReturn: CheckoutReturn;
  onDismiss: () => void;
  pollIntervalMs?: number;
}) {
  // A few minutes of slack covers clock skew between the browser and Stripe.
  const [since] = useState(() => new Date(Date.now() - 10 * 60_000).toISOString());
  const applied = useCheckoutApplied(organizationId, checkoutReturn, since, pollIntervalMs);
  const queryClient = useQueryClient();
  const [slow, setSlow] = useState(false);
  const done = applied.data === true;

  useEffect(() => {
    if (done) void queryClient.invalidateQueries({ queryKey: billingKey(organizationId) });
  }, [done, organizationId, queryClient]);

  useEffect(() => {
    if (done) return;
    const timer = window.setTimeout(() => setSlow(true), SLOW_AFTER_MS);
    return () => window.clearTimeout(timer);
  }, [done]);

  const what = checkoutReturn.kind === "credits" ? "credits" : "subscription and its credits";
  return (
    <div className={`banner ${done ? "banner-success" : "banner-pending"}`} role="status" aria-live="polite">
      {done ? (
        <p>
          <strong>Payment applied.</strong> Your {what} are ready below.
        </p>
      ) : (
        <p>
          <span className="spinner" aria-hidden="true" /> <strong>Payment received, credits arriving.</strong> Stripe has
          confirmed your payment; your {what} will appear here as soon as it is processed.
          {slow ? " This is taking longer than usual; the page keeps checking." : null}
        </p>
      )}
      <button type="button" className="button secondary" onClick={onDismiss}>
        {done ? "Close" : "Hide"}
      </button>
    </div>
  );
}
