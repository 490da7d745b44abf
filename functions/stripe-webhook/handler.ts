/**
 * The webhook: verify -> persist -> apply -> acknowledge.
 *
 * - A missing, forged, re-serialized or stale signature is a 400 and nothing is stored.
 * - A verified event goes into the inbox (keyed by its id); a redelivery of an event already
 *   processed or ignored is acknowledged without being applied again.
 * - Applying writes its effects and marks the event processed in one transaction.
 * - Unhandled types and unknown customers are acknowledged (200) and logged, never 4xx:
 *   Stripe would retry for days and then disable the endpoint.
 * - A body signed with our secret that is not a Stripe event (no event id, type or creation
 *   time, text Postgres cannot store) is a 400 and nothing is stored.
 * - A failure that will fail again (data we refuse) parks the event with its error and is
 *   acknowledged; the database unreachable is a 503 with Retry-After, anything else a 500,
 *   so Stripe retries.
 * - `POST /stripe-webhook/redrive/<event id>` with the service role key applies a parked event
 *   again, once whatever made it fail is fixed.
 */
import Stripe from "stripe";
import { errorResponse, json, serviceUnavailable } from "../_shared/http.ts";
import { DatabaseFailure } from "../_shared/supabase.ts";
import { describeIssues, stripeEventEnvelope, unacceptableJson } from "../_shared/validate.ts";
import { type ApplyDeps, applyEvent, handles } from "./apply.ts";

export interface WebhookDeps extends ApplyDeps {
  webhookSecret: string;
  /** The only credential the re-drive endpoint accepts. */
  serviceRoleKey: string;
  cryptoProvider: Stripe.CryptoProvider;
  /** Seconds a signature stays valid (Stripe's libraries default to 300). */
  toleranceSeconds: number;
  log(message: string, fields?: Record<string, unknown>): void;
}

interface RecordResult {
  status: "received" | "processed" | "ignored" | "parked";
  duplicate: boolean;
}

/** True when retrying the same event cannot succeed. */
function isPermanent(error: unknown): boolean {
  if (error instanceof DatabaseFailure) return error.permanent;
  if (error instanceof Stripe.errors.StripeInvalidRequestError) return true;
  return false;
}

/** The database (or its gateway) is down: Stripe should retry, and a 503 says so. */
function unavailable(error: unknown): boolean {
  return error instanceof DatabaseFailure && error.unavailable;
}

/** Why a verified body is not an event we can store, or null. */
function notAnEvent(event: unknown): string | null {
  const unacceptable = unacceptableJson(event);
  if (unacceptable) return unacceptable;
  const envelope = stripeEventEnvelope.safeParse(event);
  if (!envelope.success) return describeIssues(envelope.error);
  if (handles(envelope.data.type) && typeof envelope.data.data.object.id !== "string") {
    return "data.object.id: the object of a handled event needs an id";
  }
  return null;
}

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

/** Compares secrets without leaking, through timing, how much of them matched. */
function sameSecret(given: string, expected: string): boolean {
  const a = new TextEncoder().encode(given);
  const b = new TextEncoder().encode(expected);
  let difference = a.length ^ b.length;
  for (let i = 0; i < Math.max(a.length, b.length); i++) difference |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return difference === 0;
}

export function createWebhookHandler(deps: WebhookDeps): (request: Request) => Promise<Response> {
  /** Applies a recorded event and turns the outcome into the response Stripe (or an operator) gets. */
  const applyRecorded = async (event: Stripe.Event): Promise<Response> => {
    try {
      const outcome = await applyEvent(deps, event);
      if (outcome.status === "ignored") {
        deps.log("event ignored", { event: event.id, type: event.type, reason: outcome.reason });
        await deps.rpc("finish_stripe_event", { p_event_id: event.id, p_status: "ignored" });
      }
      return json({ received: true, status: outcome.status });
    } catch (error) {
      if (isPermanent(error)) {
        deps.log("event parked", { event: event.id, type: event.type, error: describe(error) });
        try {
          await deps.rpc("finish_stripe_event", { p_event_id: event.id, p_status: "parked", p_error: describe(error) });
        } catch (parkError) {
          deps.log("could not park event", { event: event.id, error: describe(parkError) });
          if (unavailable(parkError)) return serviceUnavailable();
          return errorResponse(500, "storage_unavailable", "The event could not be parked; Stripe will retry.");
        }
        return json({ received: true, status: "parked" });
      }
      deps.log("event failed, Stripe will retry", { event: event.id, type: event.type, error: describe(error) });
      if (unavailable(error)) return serviceUnavailable();
      return errorResponse(500, "apply_failed", "The event could not be applied right now; Stripe will retry.");
    }
  };

  const redrive = async (request: Request, eventId: string): Promise<Response> => {
    const token = (request.headers.get("authorization") ?? "").replace(/^Bearer\s+/i, "");
    if (!sameSecret(token, deps.serviceRoleKey)) {
      return errorResponse(401, "unauthorized", "Re-driving events needs the service role key.");
    }
    let payload: Stripe.Event;
    try {
      payload = await deps.rpc<Stripe.Event>("redrive_stripe_event", { p_event_id: eventId });
    } catch (error) {
      if (error instanceof DatabaseFailure && error.code === "PT404") {
        return errorResponse(404, "event_not_found", `Event ${eventId} was never received.`);
      }
      if (error instanceof DatabaseFailure && error.code === "PT409") {
        return errorResponse(409, "event_not_parked", `Event ${eventId} is not parked.`);
      }
      if (unavailable(error)) return serviceUnavailable();
      throw error;
    }
    return await applyRecorded(payload);
  };

  return async (request) => {
    if (request.method !== "POST") return errorResponse(405, "method_not_allowed", "Use POST.");
    const redriveMatch = /\/redrive\/(evt_[A-Za-z0-9_]+)$/.exec(new URL(request.url).pathname);
    if (redriveMatch) return await redrive(request, redriveMatch[1]!);
    const signature = request.headers.get("stripe-signature");
    if (!signature) return errorResponse(400, "missing_signature", "The Stripe-Signature header is required.");
    const body = await request.text();

    let event: Stripe.Event;
    try {
      event = await deps.stripe.webhooks.constructEventAsync(
        body,
        signature,
        deps.webhookSecret,
        deps.toleranceSeconds,
        deps.cryptoProvider,
      );
    } catch {
      return errorResponse(400, "invalid_signature", "The Stripe signature does not match this payload.");
    }
    const refused = notAnEvent(event);
    if (refused) {
      deps.log("signed body refused", { reason: refused });
      return errorResponse(400, "invalid_event", `The body is not a Stripe event we can store: ${refused}.`);
    }

    // An unhandled type is stored as ignored in the same call: nothing to apply, one round trip.
    const handled = handles(event.type);
    let recorded: RecordResult;
    try {
      recorded = await deps.rpc<RecordResult>("record_stripe_event", {
        p_event_id: event.id,
        p_type: event.type,
        p_created_at: new Date(event.created * 1000).toISOString(),
        p_livemode: event.livemode,
        p_payload: event,
        p_handled: handled,
      });
    } catch (error) {
      deps.log("could not record event", { event: event.id, error: describe(error) });
      if (unavailable(error)) return serviceUnavailable();
      return errorResponse(500, "storage_unavailable", "The event could not be stored; Stripe will retry.");
    }
    if (!handled && !recorded.duplicate) {
      deps.log("event ignored", { event: event.id, type: event.type, reason: "event type is not handled" });
      return json({ received: true, status: "ignored" });
    }
    if (recorded.status !== "received") {
      return json({ received: true, status: recorded.status, duplicate: true });
    }
    return await applyRecorded(event);
  };
}
