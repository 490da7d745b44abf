/**
 * Benchmark baseline for the Stripe webhook: the same Deno runtime, gateway hop, raw-body read
 * and signature check as `functions/stripe-webhook`, then 200 with nothing stored or applied.
 * `npm run bench` compares the real webhook's throughput with this one's.
 */
import Stripe from "stripe";
import { json, errorResponse } from "../../../functions/_shared/http.ts";
import { cryptoProvider } from "../../../functions/_shared/stripe.ts";

const stripe = new Stripe("sk_test_unused", { httpClient: Stripe.createFetchHttpClient() });
const secret = Deno.env.get("STRIPE_WEBHOOK_SECRET") ?? "";

Deno.serve(async (request) => {
  const body = await request.text();
  try {
    const event = await stripe.webhooks.constructEventAsync(body, request.headers.get("stripe-signature") ?? "", secret, 300, cryptoProvider);
    return json({ received: true, id: event.id });
  } catch {
    return errorResponse(400, "invalid_signature", "The Stripe signature does not match this payload.");
  }
});
