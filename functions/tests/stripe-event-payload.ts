/**
 * A Stripe event as Stripe would send it, for whoever signs and delivers events themselves:
 * the webhook suites (through support.ts) and the webhook benchmark (bench/webhook.ts). No
 * environment is read here, so Node can import it as well as Deno.
 */
import Stripe from "stripe";

export function eventPayload(id: string, type: string, object: Record<string, unknown> = { id: "cus_unknown", object: "customer" }) {
  return JSON.stringify({
    id,
    object: "event",
    api_version: Stripe.API_VERSION,
    created: Math.floor(Date.now() / 1000),
    livemode: false,
    pending_webhooks: 1,
    request: { id: null, idempotency_key: null },
    type,
    data: { object },
  });
}
