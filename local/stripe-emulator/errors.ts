/**
 * Stripe's error envelope: `{ "error": { type, code, message, param, ... } }` with the HTTP
 * status Stripe uses for each kind. The stripe client turns these into its own error classes
 * (`StripeInvalidRequestError`, `StripeCardError`, `StripeIdempotencyError`), so matching the
 * envelope exactly is what makes client code behave the same against the emulator.
 */
export type StripeErrorType = "invalid_request_error" | "card_error" | "idempotency_error" | "api_error" | "authentication_error";

export interface StripeErrorBody {
  type: StripeErrorType;
  message: string;
  code?: string;
  param?: string;
  decline_code?: string;
  doc_url?: string;
  payment_intent?: unknown;
  payment_method?: unknown;
  charge?: string;
}

/** An error the API answers with; thrown anywhere inside a request handler. */
export class StripeApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: StripeErrorBody,
  ) {
    super(body.message);
  }

  toJSON(): { error: StripeErrorBody } {
    return { error: this.body };
  }
}

function withDocUrl(body: StripeErrorBody): StripeErrorBody {
  return body.code ? { ...body, doc_url: `https://docs.stripe.com/error-codes/${body.code.replaceAll("_", "-")}` } : body;
}

/** 404 `resource_missing`, worded as Stripe words it. */
export function resourceMissing(kind: string, id: string, param = "id"): StripeApiError {
  return new StripeApiError(
    404,
    withDocUrl({ type: "invalid_request_error", code: "resource_missing", param, message: `No such ${kind}: '${id}'` }),
  );
}

/** 400 `invalid_request_error` with an optional code and param. */
export function invalidRequest(message: string, options: { code?: string; param?: string } = {}): StripeApiError {
  return new StripeApiError(400, withDocUrl({ type: "invalid_request_error", message, ...options }));
}

/** 400 for a parameter or feature the emulator does not implement: loud, never a wrong answer. */
export function unsupported(what: string, param?: string): StripeApiError {
  return invalidRequest(`The Stripe emulator does not support ${what}.`, { code: "parameter_unknown", ...(param ? { param } : {}) });
}

/** 402 `card_error` as Stripe returns for a declined card. */
export function cardDeclined(declineCode: string, message: string, extra: { charge?: string; payment_intent?: unknown; payment_method?: unknown } = {}): StripeApiError {
  return cardError("card_declined", declineCode, message, extra);
}

/** 402 `card_error` with any code (`card_declined`, `authentication_required`, ...). */
export function cardError(code: string, declineCode: string, message: string, extra: { charge?: string; payment_intent?: unknown; payment_method?: unknown } = {}): StripeApiError {
  return new StripeApiError(402, withDocUrl({ type: "card_error", code, decline_code: declineCode, message, ...extra }));
}
