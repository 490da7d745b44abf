/** An error the billing API answers with: a status, a code the caller can branch on, a sentence. */
export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

/** Stripe's error class names, as stripe-node sets them on `type` (no import needed to test). */
export function stripeErrorType(error: unknown): string | undefined {
  return (error as { type?: string } | null)?.type;
}

/** True for Stripe's "No such customer/price/…" (HTTP 404, code resource_missing). */
export function isStripeMissing(error: unknown): boolean {
  return stripeErrorType(error) === "StripeInvalidRequestError" &&
    (error as { code?: string }).code === "resource_missing";
}
