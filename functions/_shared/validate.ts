/**
 * Request schemas for the billing API. Every body and parameter is checked here before it
 * reaches Stripe or the database; unknown fields are refused rather than ignored.
 */
import { z } from "zod";

export const organizationId = z.uuid({ message: "organization_id must be a UUID" });

/** Printable text without control characters (NUL bytes, escapes), trimmed. */
const printable = (max: number) =>
  z.string().max(max).refine((s) => !/\p{Cc}/u.test(s), { message: "must not contain control characters" });

export const subscriptionCheckoutBody = z.strictObject({
  organization_id: organizationId,
  plan_code: z.string().regex(/^[a-z][a-z0-9_-]{0,63}$/, { message: "plan_code is not a plan code" }),
  interval: z.enum(["month", "year"]),
});

export const portalBody = z.strictObject({
  organization_id: organizationId,
});

export const consumeBody = z.strictObject({
  organization_id: organizationId,
  event_key: z.string().regex(/^[a-z][a-z0-9_.:-]{0,63}$/, { message: "event_key is not an event key" }),
  quantity: z.number().int().positive().max(1_000_000).optional(),
  idempotency_key: printable(255).min(1).optional(),
  metadata: z.record(z.string(), z.json()).optional()
    .refine((m) => m === undefined || JSON.stringify(m).length <= 16_384, { message: "metadata must be at most 16 KB" }),
});

export const creditCheckoutBody = z.strictObject({
  organization_id: organizationId,
  product_code: z.string().regex(/^[a-z][a-z0-9_-]{0,63}$/, { message: "product_code is not a product code" }),
});

export const page = z.strictObject({
  limit: z.coerce.number().int().min(1).max(100).default(20),
  offset: z.coerce.number().int().min(0).max(1_000_000).default(0),
});

/** A readable one-line summary of what was wrong with the input. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => (issue.path.length ? `${issue.path.join(".")}: ${issue.message}` : issue.message))
    .join("; ");
}
