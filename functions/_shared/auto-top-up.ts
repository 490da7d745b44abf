/**
 * Auto top-up's two Stripe-facing pieces, shared by the webhook and the job so both apply a
 * payment the same way (once, in any order):
 *
 * - the card on file: the customer's default card as Stripe has it now, re-read whenever an
 *   event says it may have changed;
 * - a top-up's PaymentIntent: what its state means for the top-up (credits after success, a
 *   counted failure, a card that needs the customer's authentication).
 */
import type Stripe from "stripe";
import type { SqlArgs, SqlFunction, SqlResult } from "./supabase.ts";
import { fromUnix, idOf, organizationIdOf } from "./stripe-mapping.ts";

export interface TopUpDeps {
  stripe: Stripe;
  /**
   * The dashboard's origin: where Stripe sends the customer back after authenticating a
   * payment. Without it no authentication page is asked for (the email then points to the
   * dashboard).
   */
  appUrl?: string;
  rpc<Fn extends SqlFunction>(fn: Fn, args: SqlArgs<Fn>): Promise<SqlResult<Fn>>;
  now(): Date;
}

/** The metadata key that marks a PaymentIntent as one of our top-ups (set by the job). */
export const TOP_UP_METADATA_KEY = "auto_top_up_id";

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The organization and top-up a PaymentIntent pays for, or null when it is not a top-up of ours. */
export function topUpOf(intent: Stripe.PaymentIntent): { organizationId: string; topUpId: string } | null {
  const organizationId = organizationIdOf(intent.metadata);
  const topUpId = intent.metadata?.[TOP_UP_METADATA_KEY];
  if (!organizationId || !topUpId || !UUID.test(topUpId)) return null;
  return { organizationId, topUpId: topUpId.toLowerCase() };
}

interface Card {
  id: string;
  brand: string | null;
  last4: string;
  exp_month: number | null;
  exp_year: number | null;
}

function cardOf(method: Stripe.PaymentMethod | null | undefined): Card | null {
  if (!method?.card) return null;
  return {
    id: method.id,
    brand: method.card.brand ?? null,
    last4: method.card.last4,
    exp_month: method.card.exp_month ?? null,
    exp_year: method.card.exp_year ?? null,
  };
}

/**
 * The card auto top-up charges for a customer, as Stripe has it now: the customer's default
 * payment method (`invoice_settings.default_payment_method`, what the portal changes) when it
 * is a card, else the card saved most recently (a credit pack's Checkout saves the card for
 * off-session use without making it the default), else none. Null for a deleted customer.
 */
export async function readCardOnFile(stripe: Stripe, customerId: string): Promise<Card | null> {
  const customer = await stripe.customers.retrieve(customerId, { expand: ["invoice_settings.default_payment_method"] });
  if (customer.deleted) return null;
  const preferred = customer.invoice_settings?.default_payment_method;
  if (preferred) {
    const card = cardOf(typeof preferred === "string" ? await stripe.paymentMethods.retrieve(preferred) : preferred);
    if (card) return card;
  }
  const saved = await stripe.paymentMethods.list({ customer: customerId, type: "card", limit: 10 });
  const newest = [...saved.data].sort((a, b) => b.created - a.created)[0];
  return cardOf(newest);
}

/** Re-reads the customer's card and records it for the organization (p_event_id: marked processed too). */
export async function syncCardOnFile(
  deps: TopUpDeps,
  eventId: string | null,
  organizationId: string,
  customerId: string,
): Promise<void> {
  const observedAt = deps.now().toISOString();
  const card = await readCardOnFile(deps.stripe, customerId);
  await deps.rpc("apply_card_on_file", {
    p_event_id: eventId,
    p_organization_id: organizationId,
    p_payment_method_id: card?.id ?? null,
    p_brand: card?.brand ?? null,
    p_last4: card?.last4 ?? null,
    p_exp_month: card?.exp_month ?? null,
    p_exp_year: card?.exp_year ?? null,
    p_observed_at: observedAt,
  });
}

/**
 * Where the customer completes a top-up their bank wants authenticated (3-D Secure). An
 * off-session charge that needs it fails with `authentication_required`; Stripe's way back is
 * to confirm the PaymentIntent again on-session with a `return_url`, which answers
 * `requires_action` with `next_action.redirect_to_url`: the page the owners' email links to.
 * The confirmation's idempotency key is the top-up's, so the job and the webhook asking at
 * the same time make one. Null when Stripe gives no such page.
 */
async function authenticationUrl(
  deps: TopUpDeps,
  topUpId: string,
  intent: Stripe.PaymentIntent,
): Promise<string | null> {
  let current = intent;
  if (current.status === "requires_payment_method") {
    if (!deps.appUrl) return null;
    const method = idOf(current.payment_method) ?? idOf(current.last_payment_error?.payment_method ?? null);
    if (!method) return null;
    current = await deps.stripe.paymentIntents.confirm(current.id, {
      payment_method: method,
      return_url: `${deps.appUrl}/?auto_top_up=authenticated`,
    }, { idempotencyKey: `auto_top_up:${topUpId}:authenticate` });
  }
  const url = current.next_action?.redirect_to_url?.url ?? null;
  return url && /^https?:\/\//.test(url) ? url : null;
}

/** The receipt of the PaymentIntent's charge (reading the charge when it is not expanded). */
async function receiptOf(
  stripe: Stripe,
  intent: Stripe.PaymentIntent,
): Promise<{ url: string | null; at: number | null }> {
  const latest = intent.latest_charge;
  if (!latest) return { url: null, at: null };
  const charge = typeof latest === "string" ? await stripe.charges.retrieve(latest) : latest;
  return { url: charge.receipt_url ?? null, at: charge.created ?? null };
}

export type TopUpOutcome = "succeeded" | "failed" | "requires_action" | "pending";

/**
 * Applies what a top-up's PaymentIntent says now: `succeeded` credits the pack (once per
 * PaymentIntent), a failed payment is counted (once per top-up), anything still under way is
 * left for the next report. `failure` overrides the intent's own error (the job passes the
 * error Stripe answered the create with). Marks eventId processed when an outcome is applied.
 */
export async function applyTopUpPaymentIntent(
  deps: TopUpDeps,
  eventId: string | null,
  top: { organizationId: string; topUpId: string },
  intent: Stripe.PaymentIntent,
  failure?: { code: string | null; message: string | null },
): Promise<TopUpOutcome> {
  if (intent.status === "succeeded") {
    const receipt = await receiptOf(deps.stripe, intent);
    await deps.rpc("apply_payment_intent_succeeded", {
      p_event_id: eventId,
      p_organization_id: top.organizationId,
      p_top_up_id: top.topUpId,
      p_payment_intent_id: intent.id,
      p_amount: intent.amount_received || intent.amount,
      p_currency: intent.currency,
      p_occurred_at: fromUnix(receipt.at ?? intent.created),
      p_details: { receipt_url: receipt.url, stripe_charge_id: idOf(intent.latest_charge) },
    });
    return "succeeded";
  }
  const needsAction = intent.status === "requires_action";
  const failed = needsAction || intent.status === "canceled" ||
    (intent.status === "requires_payment_method" && (intent.last_payment_error !== null || failure !== undefined));
  if (!failed) return "pending";
  const error = intent.last_payment_error;
  const code = failure?.code ?? error?.code ??
    (needsAction ? "authentication_required" : intent.status === "canceled" ? "canceled" : null);
  const link = code === "authentication_required" ? await authenticationUrl(deps, top.topUpId, intent) : null;
  await deps.rpc("apply_payment_intent_failed", {
    p_event_id: eventId,
    p_organization_id: top.organizationId,
    p_top_up_id: top.topUpId,
    p_payment_intent_id: intent.id,
    p_failure_code: code,
    p_failure_message: failure?.message ?? error?.message ?? null,
    p_authentication_url: link,
    p_occurred_at: deps.now().toISOString(),
  });
  return code === "authentication_required" ? "requires_action" : "failed";
}
