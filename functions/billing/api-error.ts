/**
 * Errors of the billing API: the ApiError a route throws, and how every other failure (a
 * SQLSTATE from the database, Stripe down or refusing) becomes a status and the envelope
 * `{"error": {"code", "message"}}`. One place, so every route answers the same way.
 */
import { errorResponse, RETRY_AFTER_SECONDS, serviceUnavailable } from "../_shared/http.ts";
import { DatabaseFailure } from "../_shared/supabase.ts";

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

/** SQLSTATEs of the billing functions, as HTTP (CONTRACT.md's tables). */
function fromDatabase(error: DatabaseFailure): ApiError | undefined {
  switch (error.code) {
    case "PT402":
      return new ApiError(402, "insufficient_credits", error.message);
    case "42501":
      return new ApiError(403, "forbidden", "You are not allowed to do this for this organization.");
    case "PT404":
      return new ApiError(404, "not_found", error.message);
    case "PT409":
      return new ApiError(409, "conflict", error.message);
    case "PT410":
      return new ApiError(410, "reservation_expired", error.message);
    case "PT429":
      return new ApiError(429, "spend_limit_reached", error.message);
    case "22023":
    case "22P02":
      return new ApiError(400, "invalid_request", error.message);
    case "PGRST301":
    case "PGRST302":
      return new ApiError(401, "unauthorized", "A valid session is required.");
  }
  // Any other data exception (class 22: a value the database refused) is the caller's input.
  if (error.code.startsWith("22")) return new ApiError(400, "invalid_request", "A value in the request was refused.");
  return undefined;
}

/**
 * Runs a database call, naming some of its SQLSTATEs more precisely than the general table
 * does: the same PT404 is an unknown event for consume and an unknown reservation for settle.
 */
export async function withErrorCodes<T>(
  codes: Partial<Record<string, { status: number; code: string }>>,
  call: () => Promise<T>,
): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (!(error instanceof DatabaseFailure)) throw error;
    const named = codes[error.code];
    if (named) throw new ApiError(named.status, named.code, error.message);
    throw error;
  }
}

/** The answer to any error a billing route threw: the envelope, never a stack, SQL or headers. */
export function errorAnswer(error: unknown): Response {
  if (error instanceof ApiError) return errorResponse(error.status, error.code, error.message);
  if (error instanceof DatabaseFailure) {
    if (error.unavailable) return serviceUnavailable();
    const mapped = fromDatabase(error);
    if (mapped) return errorResponse(mapped.status, mapped.code, mapped.message);
  }
  if (isStripeUnavailable(error)) {
    return errorResponse(503, "payment_provider_unavailable", "Stripe could not be reached; try again shortly.", {
      "Retry-After": String(RETRY_AFTER_SECONDS),
    });
  }
  if (isStripeRefusal(error)) {
    // Stripe refused a request we built (what we sent no longer fits what Stripe holds):
    // not the caller's fault and not retriable as it is; its message may name our objects.
    console.error(JSON.stringify({ message: "Stripe refused a billing request", error: String(error) }));
    return errorResponse(
      502,
      "payment_provider_rejected",
      "The payment provider refused the request; nothing was charged. Try again later or contact support.",
    );
  }
  console.error(JSON.stringify({ message: "billing request failed", error: String(error) }));
  return errorResponse(500, "internal_error", "Something went wrong on our side.");
}

function isStripeUnavailable(error: unknown): boolean {
  const type = stripeErrorType(error);
  return type === "StripeConnectionError" || type === "StripeAPIError" || type === "StripeRateLimitError";
}

/** Stripe answered "invalid request" (400/404) or "idempotency key reused with other parameters". */
function isStripeRefusal(error: unknown): boolean {
  const type = stripeErrorType(error);
  return type === "StripeInvalidRequestError" || type === "StripeIdempotencyError";
}
