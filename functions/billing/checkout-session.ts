/**
 * Opening a Checkout Session that can be paid. A deterministic Stripe idempotency key makes a
 * double click (or a retry after a timeout) open one session, not two; but Stripe replays the
 * first response for a key, and by then that session may be expired (choosing another plan
 * expires it) or complete. A replayed session is therefore read back, and when it is no
 * longer open the next key in a deterministic chain (the key, "after", the dead session's id)
 * opens a new one: concurrent clicks walk the same chain and still meet on one session.
 */
import type Stripe from "stripe";
import { ApiError } from "./api-error.ts";

/**
 * How long the same request maps to the same session. A subscription's is long because only
 * one subscription is allowed anyway; a credit pack's is short so a second purchase soon
 * after is a new one.
 */
const WINDOW_MS = { subscription: 10 * 60_000, credits: 10_000 } as const;

/** Dead sessions followed before giving up on determinism (ten plan changes in one window). */
const MAX_HOPS = 10;

/** Hex SHA-256 of the request, so a key changes with anything that changes the session. */
async function fingerprint(params: Stripe.Checkout.SessionCreateParams): Promise<string> {
  const bytes = new TextEncoder().encode(JSON.stringify(params));
  const digest = await crypto.subtle.digest("SHA-256", bytes);
  return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, "0")).join("");
}

/** The idempotency key of a checkout: organization, kind, window and the exact parameters. */
export async function checkoutKey(
  kind: keyof typeof WINDOW_MS,
  organization: string,
  params: Stripe.Checkout.SessionCreateParams,
  now = Date.now(),
): Promise<string> {
  return `checkout:${kind}:${organization}:${Math.floor(now / WINDOW_MS[kind])}:${await fingerprint(params)}`;
}

/** Stripe marks a response replayed for an idempotency key with `Idempotent-Replayed: true`. */
function replayed(session: Stripe.Response<Stripe.Checkout.Session>): boolean {
  // The fetch HTTP client hands over a Headers object; the Node one a plain record.
  const headers = session.lastResponse?.headers as Headers | Record<string, string> | undefined;
  const value = headers instanceof Headers ? headers.get("idempotent-replayed") : headers?.["idempotent-replayed"];
  return value === "true";
}

/**
 * A credit pack's Checkout saves the card for later off-session charges (auto top-up), as
 * Stripe asks: `payment_intent_data.setup_future_usage`. A subscription's Checkout saves its
 * card for the renewals already, so only payment mode needs saying.
 */
export function savingTheCard(params: Stripe.Checkout.SessionCreateParams): Stripe.Checkout.SessionCreateParams {
  if (params.mode !== "payment") return params;
  return { ...params, payment_intent_data: { ...params.payment_intent_data, setup_future_usage: "off_session" } };
}

/**
 * Creates (or, for the same request within the window, reuses) a Checkout Session and returns
 * one that is `open`. A subscription session found complete means the organization has just
 * subscribed (its webhook may not have arrived): 409, never a second subscription.
 */
export async function openCheckoutSession(
  stripe: Stripe,
  kind: keyof typeof WINDOW_MS,
  organization: string,
  requested: Stripe.Checkout.SessionCreateParams,
): Promise<Stripe.Checkout.Session> {
  const params = savingTheCard(requested);
  const baseKey = await checkoutKey(kind, organization, params);
  let key = baseKey;
  for (let hop = 0; hop <= MAX_HOPS; hop++) {
    const session = await stripe.checkout.sessions.create(params, { idempotencyKey: key });
    if (!replayed(session)) return session;
    const current = await stripe.checkout.sessions.retrieve(session.id);
    if (current.status === "open") return current;
    if (current.status === "complete" && kind === "subscription") {
      throw new ApiError(409, "subscription_exists", "The organization has just subscribed: change the plan in the customer portal.");
    }
    key = `${baseKey}:after:${session.id}`;
  }
  // Only after ten dead sessions for one item in one window: a key of its own is still payable.
  return await stripe.checkout.sessions.create(params, { idempotencyKey: `${baseKey}:${crypto.randomUUID()}` });
}
