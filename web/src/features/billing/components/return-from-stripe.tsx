import type { ReturnFromStripe } from "../api/checkout-return";
import { CheckoutReturnBanner } from "./checkout-return-banner";
import { PortalReturnBanner } from "./portal-return-banner";

/** The banner for however the member came back from Stripe (see parseReturnFromStripe). */
export function ReturnFromStripeBanner({
  organizationId,
  returned,
  onDismiss,
}: {
  organizationId: string;
  returned: ReturnFromStripe;
  onDismiss: () => void;
}) {
  switch (returned.type) {
    case "checkout-paid":
      return <CheckoutReturnBanner organizationId={organizationId} checkoutReturn={returned.checkout} onDismiss={onDismiss} />;
    case "portal":
      return <PortalReturnBanner organizationId={organizationId} onDismiss={onDismiss} />;
    case "checkout-cancelled":
      return (
        <div className="banner banner-info" role="status">
          <p>
            <strong>Checkout cancelled.</strong> Nothing was charged
            {returned.kind === "credits" ? "; you can buy credits whenever you like." : "; you can choose a plan whenever you like."}
          </p>
          <button type="button" className="button secondary" onClick={onDismiss}>
            Close
          </button>
        </div>
      );
  }
}
