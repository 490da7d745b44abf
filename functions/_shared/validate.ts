/**
 * Request schemas for the billing API. Every body and parameter is checked here before it
 * reaches Stripe or the database; unknown fields are refused rather than ignored.
 */
import { z } from "zod";
import { errorResponse } from "./http.ts";

export const organizationId = z.uuid({ message: "organization_id must be a UUID" });

/** Any id in a path (an organization's, a reservation's). */
export const uuid = z.uuid();

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

/** A request about the organization's subscription that names nothing else (cancel a scheduled change, resume). */
export const organizationBody = z.strictObject({
  organization_id: organizationId,
});

/**
 * A plan change: the plan and interval to move to, and (for an upgrade) the `proration_date`
 * its preview was computed at, so the charge is the one shown.
 */
export const planChangeBody = z.strictObject({
  organization_id: organizationId,
  plan_code: subscriptionCheckoutBody.shape.plan_code,
  interval: z.enum(["month", "year"]),
  proration_date: z.number().int().min(0).max(253_402_300_799).optional(),
});

/** A preview takes what a change takes, without the proration date (the preview decides it). */
export const planChangePreviewBody = planChangeBody.omit({ proration_date: true });

const eventKey = z.string().regex(/^[a-z][a-z0-9_.:-]{0,63}$/, { message: "event_key is not an event key" });
/** How many of an event one call may spend or reserve (the SQL refuses a cost past its own bound too). */
const quantity = z.number().int().positive().max(1_000_000);
const idempotencyKey = printable(255).min(1);
const metadata = z.record(z.string(), z.json()).optional()
  .refine((m) => m === undefined || JSON.stringify(m).length <= 16_384, { message: "metadata must be at most 16 KB" });

export const consumeBody = z.strictObject({
  organization_id: organizationId,
  event_key: eventKey,
  quantity: quantity.optional(),
  idempotency_key: idempotencyKey.optional(),
  metadata,
});

/** The most events one batch may carry (CONTRACT.md, consume_credits_batch). */
export const MAX_BATCH_EVENTS = 1000;

/**
 * A batch: each event is checked as strictly as a single consume, and one malformed event
 * refuses the whole batch (400, naming it by index) before anything is spent. What can only
 * be known at spending time (unknown event, not enough credits, spend limit, a reused key)
 * is that event's own result.
 */
export const consumeBatchBody = z.strictObject({
  organization_id: organizationId,
  events: z.array(z.strictObject({
    event_key: eventKey,
    quantity: quantity.optional(),
    idempotency_key: idempotencyKey.optional(),
    metadata,
  })).min(1, { message: "events must hold at least one event" })
    .max(MAX_BATCH_EVENTS, { message: `events must hold at most ${MAX_BATCH_EVENTS} events` }),
});

export const reserveBody = z.strictObject({
  organization_id: organizationId,
  event_key: eventKey,
  quantity: quantity.optional(),
  idempotency_key: idempotencyKey.optional(),
  /** How long the reservation holds its credits unless settled or released (CONTRACT.md: 1..86400). */
  ttl_seconds: z.number().int().min(1).max(86_400).optional(),
  metadata,
});

/** A settlement: the quantity actually used (0 up to the reserved quantity; absent: all of it). */
export const settleBody = z.strictObject({
  quantity: z.number().int().min(0).max(1_000_000).optional(),
  metadata,
});

/** A release takes nothing; an empty object (or no body) is all it accepts. */
export const releaseBody = z.strictObject({});

export const creditCheckoutBody = z.strictObject({
  organization_id: organizationId,
  product_code: z.string().regex(/^[a-z][a-z0-9_-]{0,63}$/, { message: "product_code is not a product code" }),
});

/** A query parameter written as a plain decimal integer ("1e3", "0x10", " 5" and "" are refused). */
const decimal = (name: string) =>
  z.string().regex(/^\d{1,9}$/, { message: `${name} must be a whole number` }).transform(Number);

export const page = z.strictObject({
  limit: decimal("limit").pipe(z.number().min(1).max(100)).default(20),
  offset: decimal("offset").pipe(z.number().max(1_000_000)).default(0),
});

/** How deep a request body may nest; deeper is refused before any schema walks it. */
export const MAX_JSON_DEPTH = 32;

/**
 * Why a parsed JSON value cannot be taken as it is, or null when it can. Every string, keys
 * included, must be well-formed Unicode without NUL: Postgres cannot store NUL in text or
 * jsonb, and a lone surrogate ("\ud800") becomes U+FFFD on the way in, so two idempotency
 * keys that differ only there would collide. Nesting is bounded so no recursive validator
 * (or Postgres) runs out of stack. Walks iteratively, so the walk itself cannot.
 */
export function unacceptableJson(value: unknown): string | null {
  const pending: Array<[unknown, number]> = [[value, 0]];
  while (pending.length > 0) {
    const [current, depth] = pending.pop()!;
    if (typeof current === "string") {
      const problem = unacceptableText(current);
      if (problem) return problem;
    } else if (current !== null && typeof current === "object") {
      if (depth >= MAX_JSON_DEPTH) return `the body nests deeper than ${MAX_JSON_DEPTH} levels`;
      const entries = Array.isArray(current) ? current.map((item) => [null, item]) : Object.entries(current);
      for (const [key, item] of entries) {
        if (typeof key === "string") {
          const problem = unacceptableText(key);
          if (problem) return problem;
        }
        pending.push([item, depth + 1]);
      }
    }
  }
  return null;
}

function unacceptableText(text: string): string | null {
  if (!text.isWellFormed()) return "text must be well-formed Unicode (no lone surrogates)";
  if (text.includes("\u0000")) return "text must not contain NUL characters";
  return null;
}

/**
 * The fields of a Stripe event the webhook relies on before it stores the event. A body that
 * is signed with our secret yet lacks them is refused (400) rather than stored: it cannot
 * have come from Stripe.
 */
export const stripeEventEnvelope = z.looseObject({
  id: z.string().regex(/^evt_[A-Za-z0-9_]{1,255}$/, { message: "id is not a Stripe event id" }),
  type: z.string().max(100).regex(/^[a-z0-9_]+(\.[a-z0-9_]+)*$/, { message: "type is not a Stripe event type" }),
  // Unix seconds up to the year 9999, so it converts to a date.
  created: z.number().int().min(0).max(253_402_300_799),
  livemode: z.boolean(),
  data: z.looseObject({
    object: z.looseObject({ id: z.string().min(1).max(255).optional() }),
  }),
});

/** A readable one-line summary of what was wrong with the input. */
export function describeIssues(error: z.ZodError): string {
  return error.issues
    .map((issue) => (issue.path.length ? `${issue.path.join(".")}: ${issue.message}` : issue.message))
    .join("; ");
}

/**
 * The body of a route the scheduler or an operator calls, where an empty body means `{}`:
 * the parsed options, or the 400 to answer (malformed JSON, or options the schema refuses).
 */
export async function readOptionalBody<T>(
  request: Request,
  schema: z.ZodType<T>,
): Promise<{ data: T; error?: undefined } | { error: Response }> {
  const text = await request.text();
  let body: unknown = {};
  if (text.trim() !== "") {
    try {
      body = JSON.parse(text);
    } catch {
      return { error: errorResponse(400, "invalid_json", "The body must be JSON (or empty).") };
    }
  }
  const parsed = schema.safeParse(body);
  if (!parsed.success) return { error: errorResponse(400, "invalid_request", describeIssues(parsed.error)) };
  return { data: parsed.data };
}
