/**
 * One Stripe client per function: pinned API version, a timeout well under the Edge
 * Function limit (STRIPE_TIMEOUT_MS, default 10 s; with two retries a request gives up in
 * about three timeouts), and the local emulator when STRIPE_API_BASE says so.
 */
import Stripe from "stripe";
import { functionEnv } from "./env.ts";

let client: Stripe | undefined;

export function stripeClient(): Stripe {
  const env = functionEnv();
  if (client) return client;
  const base = env.stripeApiBase ? new URL(env.stripeApiBase) : undefined;
  client = new Stripe(env.stripeSecretKey, {
    apiVersion: Stripe.API_VERSION as Stripe.LatestApiVersion,
    httpClient: Stripe.createFetchHttpClient(),
    timeout: env.stripeTimeoutMs,
    maxNetworkRetries: 2,
    ...(base && {
      host: base.hostname,
      port: Number(base.port || (base.protocol === "https:" ? 443 : 80)),
      protocol: base.protocol.replace(":", "") as "http" | "https",
    }),
  });
  return client;
}

/** Deno has Web Crypto only, so signatures are checked with the async, SubtleCrypto path. */
export const cryptoProvider = Stripe.createSubtleCryptoProvider();
