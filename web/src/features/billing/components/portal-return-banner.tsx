import { useState } from "react";
import { useCreditBalance } from "../api/get-credit-balance";
import { useSubscription } from "../api/get-subscription";

/**
 * Shown on return from the Stripe customer portal. What was done there (a cancellation, a
 * plan switch, a new card) reaches us as webhooks, usually within seconds of the return
 * and sometimes just after it, so for a minute the subscription and the balance are
 * re-read every couple of seconds; every card showing them updates as they change.
 */
export function PortalReturnBanner({
  organizationId,
  onDismiss,
  pollIntervalMs = 2000,
  pollForMs = 60_000,
}: {
  organizationId: string;
  onDismiss: () => void;
  pollIntervalMs?: number;
  pollForMs?: number;
}) {
  // Asked again after every read, so the polling ends by itself without a re-render.
  const [deadline] = useState(() => Date.now() + pollForMs);
  const interval = () => (Date.now() < deadline ? pollIntervalMs : false);
  useSubscription(organizationId, interval);
  useCreditBalance(organizationId, interval);

  return (
    <div className="banner banner-info" role="status" aria-live="polite">
      <p>
        <strong>Back from the customer portal.</strong> Changes you made there (plan, cancellation, payment method) show
        here as soon as Stripe confirms them, usually within a few seconds.
      </p>
      <button type="button" className="button secondary" onClick={onDismiss}>
        Close
      </button>
    </div>
  );
}
