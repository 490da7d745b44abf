/**
 * The webhook: verify -> persist -> acknowledge -> apply in the background.
 *
 * - A missing, forged, re-serialized or stale signature is a 400 and nothing is stored.
 * - A verified event goes into the inbox (keyed by its id) and is acknowledged (200) as soon
 *   as it is stored; it is then applied in the background (`EdgeRuntime.waitUntil`), so
 *   Stripe never waits on Stripe re-reads or a busy organization. A redelivery of an event
 *   already processed or ignored is acknowledged without being applied again; one of an event
 *   still `received` is applied again (every effect is keyed by business ids, so at most once).
 * - Applying writes its effects and marks the event processed in one transaction.
 * - Unhandled types and unknown customers are acknowledged (200), recorded as ignored and
 *   logged, never 4xx: Stripe would retry for days and then disable the endpoint.
 * - A body signed with our secret that is not a Stripe event (no event id, type or creation
 *   time, text Postgres cannot store) is a 400 and nothing is stored.
 * - The database unreachable while storing is a 503 with Retry-After, anything else a 500,
 *   so Stripe retries: nothing is acknowledged that is not stored.
 * - A background apply that fails with what will fail again (data we refuse) parks the event
 *   with its error; one that may pass (a lock, the database or Stripe briefly away) leaves it
 *   `received`, its error noted, and the sweep applies it later. So does a process that dies
 *   between the answer and the apply.
 * - `POST /stripe-webhook/sweep` with the service role key applies every event still
 *   `received` that nobody took up for a while (a scheduled job calls it every minute) and
 *   answers the counts `{applied, ignored, parked, failed}`.
 * - `POST /stripe-webhook/redrive/<event id>` with the service role key (or an operator's
 *   token: the operator console's re-drive button) applies a parked event again, once whatever
 *   made it fail is fixed, and answers how that went.
 * - `POST /stripe-webhook/reconcile` with the service role key or an operator's token compares
 *   Stripe with our records for a period (reconcile.ts), repairs on request, and, run by the
 *   daily job, raises an operator alert on drift. A signed-in non-operator gets 403.
 */
import Stripe from "stripe";
import { z } from "zod";
import { errorResponse, json, serviceUnavailable } from "../_shared/http.ts";
import { DatabaseFailure, type Json } from "../_shared/supabase.ts";
import { isServiceRole } from "../_shared/service-key.ts";
import { describeIssues, readOptionalBody, stripeEventEnvelope, unacceptableJson } from "../_shared/validate.ts";
import { type ApplyDeps, applyEvent, handles } from "./apply.ts";
import { type Difference, findDifferences, type RepairOutcome, repairDifferences } from "./reconcile.ts";

export interface WebhookDeps extends ApplyDeps {
  webhookSecret: string;
  /** The only credential the sweep and re-drive endpoints accept. */
  serviceRoleKey: string;
  cryptoProvider: Stripe.CryptoProvider;
  /** Seconds a signature stays valid (Stripe's libraries default to 300). */
  toleranceSeconds: number;
  /**
   * Keeps the function alive until `task` settles, after the response is sent: the Edge
   * runtime's `EdgeRuntime.waitUntil`. `task` never rejects.
   */
  waitUntil(task: Promise<unknown>): void;
  /**
   * How `record_stripe_event`, the store before the acknowledgement, is called: a direct
   * Postgres connection where the function has one (index.ts), else `rpc`.
   */
  store?: ApplyDeps["rpc"];
  /**
   * Whether the bearer of this Authorization header is a billing operator: true or false for
   * a signed-in user, null when it names nobody (no token, the anon key, an invalid token).
   */
  isOperator?(authorization: string): Promise<boolean | null>;
  log(message: string, fields?: Record<string, unknown>): void;
}

interface RecordResult {
  status: "received" | "processed" | "ignored" | "parked";
  duplicate: boolean;
}

/** How one attempt at an event ended; `failed` means it stays received for a later attempt. */
type Settled =
  | { result: "applied" | "ignored" | "parked" }
  | { result: "failed"; error: unknown };

/**
 * The sweep's optional body: how long an event must have waited, and how many to take. The
 * schedule (pg_cron through pg_net, or the local scheduler) names itself with `job`.
 */
const sweepBody = z.strictObject({
  older_than_seconds: z.number().int().min(0).max(86_400).optional(),
  limit: z.number().int().min(1).max(1000).optional(),
  job: z.string().max(100).optional(),
});

/**
 * Background applies running at once in one function instance; the rest wait their turn.
 * Applying (Stripe re-reads, the organization's lock) costs far more than acknowledging, so
 * unbounded it would starve the acknowledgements Stripe is waiting for; a queued event is
 * stored, and the sweep applies it if the instance stops first.
 */
const BACKGROUND_APPLIES = 4;

/**
 * The reconciliation's body: the period (default: the two days before now, which a daily run
 * covers with a day's overlap), whether to repair, and which differences (by Stripe id) when
 * not all of them.
 */
const reconcileBody = z.strictObject({
  from: z.string().datetime({ offset: true }).optional(),
  to: z.string().datetime({ offset: true }).optional(),
  repair: z.boolean().optional(),
  stripe_ids: z.array(z.string().regex(/^(sub|in|cs|cus)_[A-Za-z0-9_]{1,250}$/)).min(1).max(1000).optional(),
  job: z.string().max(100).optional(),
});
const RECONCILE_DEFAULT_DAYS = 2;
const RECONCILE_MAX_DAYS = 400;

/** Events left `received` this long are the sweep's: the live path has had its chance. */
const SWEEP_AFTER_SECONDS = 60;
const SWEEP_LIMIT = 100;

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

export function createWebhookHandler(deps: WebhookDeps): (request: Request) => Promise<Response> {
  /**
   * One attempt at a recorded event: applied, ignored or parked (each recorded in the inbox),
   * or failed for now (left received, its error noted). Never throws.
   */
  const settle = async (event: Stripe.Event): Promise<Settled> => {
    try {
      const outcome = await applyEvent(deps, event);
      if (outcome.status === "ignored") {
        deps.log("event ignored", { event: event.id, type: event.type, reason: outcome.reason });
        await deps.rpc("finish_stripe_event", { p_event_id: event.id, p_status: "ignored" });
        return { result: "ignored" };
      }
      return { result: "applied" };
    } catch (error) {
      if (isPermanent(error)) {
        deps.log("event parked", { event: event.id, type: event.type, error: describe(error) });
        try {
          await deps.rpc("finish_stripe_event", { p_event_id: event.id, p_status: "parked", p_error: describe(error) });
          return { result: "parked" };
        } catch (parkError) {
          deps.log("could not park event", { event: event.id, error: describe(parkError) });
          return { result: "failed", error: parkError };
        }
      }
      deps.log("event failed for now; it stays received for the sweep", { event: event.id, type: event.type, error: describe(error) });
      // Best effort: the note is for operators; the event stays received either way.
      await deps.rpc("note_stripe_event_failure", { p_event_id: event.id, p_error: describe(error) }).catch(() => {});
      return { result: "failed", error };
    }
  };

  let applying = 0;
  const waitingTurn: Array<() => void> = [];
  /** Resolves when one of the BACKGROUND_APPLIES slots is ours. */
  const turn = (): Promise<void> => {
    if (applying < BACKGROUND_APPLIES) {
      applying++;
      return Promise.resolve();
    }
    return new Promise((resolve) => waitingTurn.push(resolve));
  };
  /** Hands the slot to the next waiting apply, or frees it. */
  const endTurn = () => {
    const next = waitingTurn.shift();
    if (next) next();
    else applying--;
  };

  /** Applies an acknowledged event after the response, as the Edge runtime allows. */
  const applyInBackground = (event: Stripe.Event) => {
    const task = (async () => {
      await turn();
      try {
        await settle(event);
      } finally {
        endTurn();
      }
    })();
    deps.waitUntil(task.catch((error) => deps.log("background apply crashed", { event: event.id, error: describe(error) })));
  };

  /** Null when the caller is the service role or an operator, else the 401 or 403 to answer. */
  const refuseUnlessOperator = async (request: Request, what: string): Promise<Response | null> => {
    if (isServiceRole(request, deps.serviceRoleKey)) return null;
    const authorization = request.headers.get("authorization");
    const operator = authorization && deps.isOperator ? await deps.isOperator(authorization) : null;
    if (operator === true) return null;
    if (operator === false) return errorResponse(403, "forbidden", `${what} is for billing operators only.`);
    return errorResponse(401, "unauthorized", `${what} needs the service role key or an operator's sign-in.`);
  };

  const reconcile = async (request: Request): Promise<Response> => {
    const refused = await refuseUnlessOperator(request, "Reconciliation");
    if (refused) return refused;
    const options = await readOptionalBody(request, reconcileBody);
    if (options.error) return options.error;
    const to = options.data.to ? new Date(options.data.to) : deps.now();
    const from = options.data.from ? new Date(options.data.from) : new Date(to.getTime() - RECONCILE_DEFAULT_DAYS * 86_400_000);
    if (!(from < to) || to.getTime() - from.getTime() > RECONCILE_MAX_DAYS * 86_400_000) {
      return errorResponse(400, "invalid_period", `The period needs from before to, at most ${RECONCILE_MAX_DAYS} days apart.`);
    }
    try {
      let differences: Difference[] = await findDifferences(deps, { from, to });
      let repairs: RepairOutcome[] = [];
      if (options.data.repair) {
        repairs = await repairDifferences(deps, differences, options.data.stripe_ids ? new Set(options.data.stripe_ids) : undefined);
        // What is left after the repairs, read again: a repair that did not take shows here.
        if (repairs.length > 0) differences = await findDifferences(deps, { from, to });
      }
      if (options.data.job && differences.length > 0) {
        await deps.rpc("raise_operator_alert", {
          p_kind: "reconciliation_drift",
          p_severity: "warning",
          p_title: "Our records differ from Stripe",
          p_message: `The daily reconciliation found ${differences.length} difference(s) between ${from.toISOString()} and ${to.toISOString()}. Open Operations > Reconciliation to review and repair them.`,
          p_data: { from: from.toISOString(), to: to.toISOString(), differences: differences.length, kinds: [...new Set(differences.map((d) => d.kind))] },
          p_dedupe_key: "reconciliation_drift",
        });
      }
      if (differences.length > 0 || repairs.length > 0) deps.log("reconciled", { differences: differences.length, repairs: repairs.length });
      return json({ from: from.toISOString(), to: to.toISOString(), differences, repairs });
    } catch (error) {
      deps.log("reconciliation failed", { error: describe(error) });
      if (unavailable(error)) return serviceUnavailable();
      if (error instanceof Stripe.errors.StripeError) {
        return errorResponse(502, "stripe_unavailable", "Stripe could not be read right now; nothing was changed. Try again shortly.");
      }
      throw error;
    }
  };

  const redrive = async (request: Request, eventId: string): Promise<Response> => {
    const refused = await refuseUnlessOperator(request, "Re-driving events");
    if (refused) return refused;
    let payload: Stripe.Event;
    try {
      payload = await deps.rpc("redrive_stripe_event", { p_event_id: eventId }) as unknown as Stripe.Event;
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
    // An operator is waiting for the outcome: applied here, not in the background.
    const settled = await settle(payload);
    if (settled.result === "failed") {
      if (unavailable(settled.error)) return serviceUnavailable();
      return errorResponse(500, "apply_failed", "The event could not be applied right now; the sweep will retry it.");
    }
    return json({ received: true, status: settled.result === "applied" ? "processed" : settled.result });
  };

  const sweep = async (request: Request): Promise<Response> => {
    if (!isServiceRole(request, deps.serviceRoleKey)) {
      return errorResponse(401, "unauthorized", "Sweeping the inbox needs the service role key.");
    }
    const options = await readOptionalBody(request, sweepBody);
    if (options.error) return options.error;
    let due: Array<{ event_id: string; payload: unknown }>;
    try {
      due = await deps.rpc("claim_stripe_events_to_sweep", {
        p_older_than_seconds: options.data.older_than_seconds ?? SWEEP_AFTER_SECONDS,
        p_limit: options.data.limit ?? SWEEP_LIMIT,
      });
    } catch (error) {
      deps.log("sweep could not claim events", { error: describe(error) });
      if (unavailable(error)) return serviceUnavailable();
      return errorResponse(500, "storage_unavailable", "The inbox could not be read; the next sweep will try again.");
    }
    const counts = { applied: 0, ignored: 0, parked: 0, failed: 0 };
    // One at a time: the sweep is a backstop, and it should not crowd the live path.
    for (const { payload } of due) counts[(await settle(payload as Stripe.Event)).result]++;
    if (due.length > 0) deps.log("inbox swept", counts);
    return json(counts);
  };

  return async (request) => {
    if (request.method !== "POST") return errorResponse(405, "method_not_allowed", "Use POST.");
    const pathname = new URL(request.url).pathname;
    if (/\/sweep$/.test(pathname)) return await sweep(request);
    if (/\/reconcile$/.test(pathname)) return await reconcile(request);
    const redriveMatch = /\/redrive\/(evt_[A-Za-z0-9_]+)$/.exec(pathname);
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
      recorded = await (deps.store ?? deps.rpc)("record_stripe_event", {
        p_event_id: event.id,
        p_type: event.type,
        p_created_at: new Date(event.created * 1000).toISOString(),
        p_livemode: event.livemode,
        p_payload: event as unknown as Json,
        p_handled: handled,
      }) as unknown as RecordResult;
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
    // Stored: Stripe's part is done. Applying is ours, after the answer.
    applyInBackground(event);
    return json({ received: true, status: "received", ...(recorded.duplicate ? { duplicate: true } : {}) });
  };
}
