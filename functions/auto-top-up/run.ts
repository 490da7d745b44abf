/**
 * One run of the auto top-up job: makes the top-ups that are due (`claim_auto_top_ups`: one
 * per organization below its threshold, at most one in flight, within the monthly limit) and
 * charges each pack off-session on the organization's customer and card on file.
 *
 * The PaymentIntent's idempotency key is the top-up's own, so a run that dies after Stripe
 * answered, or two runs that take the same top-up after its lease ran out, make one charge.
 * Stripe's answer is applied at once, the same way the webhook applies the events that
 * follow (`applyTopUpPaymentIntent`): whichever comes first counts, the other changes nothing.
 */
import Stripe from "stripe";
import {
  applyTopUpPaymentIntent,
  TOP_UP_METADATA_KEY,
  type TopUpDeps,
  type TopUpOutcome,
} from "../_shared/auto-top-up.ts";

export interface RunDeps extends TopUpDeps {
  log(message: string, fields?: Record<string, unknown>): void;
}

export type RunCounts = Record<TopUpOutcome | "claimed" | "retry_later", number>;

/** Top-ups charged per run; the rest wait for the next run (the schedule runs every 10 s). */
const CLAIM_LIMIT = 50;

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

export async function runAutoTopUps(deps: RunDeps): Promise<RunCounts> {
  const counts: RunCounts = { claimed: 0, succeeded: 0, failed: 0, requires_action: 0, pending: 0, retry_later: 0 };
  const due = await deps.rpc("claim_auto_top_ups", { p_limit: CLAIM_LIMIT });
  counts.claimed = due.length;
  for (const topUp of due) {
    const top = { organizationId: topUp.organization_id, topUpId: topUp.top_up_id };
    if (topUp.stripe_payment_intent_id) {
      // Created earlier, outcome never applied: Stripe's PaymentIntent as it is now decides.
      try {
        const current = await deps.stripe.paymentIntents.retrieve(topUp.stripe_payment_intent_id, {
          expand: ["latest_charge"],
        });
        counts[await applyTopUpPaymentIntent(deps, null, top, current)]++;
      } catch (error) {
        deps.log("auto top-up could not be read back; retried later", {
          top_up: topUp.top_up_id,
          error: describe(error),
        });
        counts.retry_later++;
      }
      continue;
    }
    let intent: Stripe.PaymentIntent;
    let failure: { code: string | null; message: string | null } | undefined;
    try {
      intent = await deps.stripe.paymentIntents.create({
        amount: topUp.amount,
        currency: topUp.currency,
        customer: topUp.stripe_customer_id,
        payment_method: topUp.stripe_payment_method_id,
        off_session: true,
        confirm: true,
        description: `Auto top-up: ${topUp.credits} credits`,
        metadata: {
          organization_id: topUp.organization_id,
          [TOP_UP_METADATA_KEY]: topUp.top_up_id,
          product_code: topUp.product_code,
        },
      }, { idempotencyKey: topUp.idempotency_key });
    } catch (error) {
      if (error instanceof Stripe.errors.StripeCardError && error.payment_intent) {
        // Declined, or the card needs the customer's authentication: Stripe made the
        // PaymentIntent and says why it failed.
        intent = error.payment_intent;
        failure = { code: error.code ?? null, message: error.message };
      } else if (
        error instanceof Stripe.errors.StripeCardError || error instanceof Stripe.errors.StripeInvalidRequestError
      ) {
        // Stripe refused the charge outright (the card was detached, the customer deleted):
        // a failed top-up all the same, with no PaymentIntent to show for it.
        await deps.rpc("apply_payment_intent_failed", {
          p_event_id: null,
          p_organization_id: top.organizationId,
          p_top_up_id: top.topUpId,
          p_payment_intent_id: null,
          p_failure_code: (error as Stripe.errors.StripeError).code ?? "payment_refused",
          p_failure_message: (error as Error).message,
          p_authentication_url: null,
          p_occurred_at: deps.now().toISOString(),
        });
        counts.failed++;
        continue;
      } else {
        // Stripe unreachable or failing: the top-up stays pending, and a run after its lease
        // (two minutes) tries again with the same idempotency key.
        deps.log("auto top-up could not reach Stripe; retried later", {
          top_up: topUp.top_up_id,
          error: describe(error),
        });
        counts.retry_later++;
        continue;
      }
    }
    try {
      await deps.rpc("record_auto_top_up_payment_intent", {
        p_organization_id: top.organizationId,
        p_top_up_id: top.topUpId,
        p_payment_intent_id: intent.id,
      });
      counts[await applyTopUpPaymentIntent(deps, null, top, intent, failure)]++;
    } catch (error) {
      // Stripe has the payment; its webhook events apply the outcome the same way (and the
      // next run finds the top-up no longer pending), so one top-up's trouble does not stop
      // the others.
      deps.log("auto top-up outcome left to the webhook", { top_up: topUp.top_up_id, error: describe(error) });
      counts.retry_later++;
    }
  }
  if (due.length > 0) deps.log("auto top-ups charged", counts);
  return counts;
}
