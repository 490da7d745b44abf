/**
 * Edge Function `billing` (verify_jwt = true): the billing API. Wiring only; the routes
 * live in app.ts.
 */
import { functionEnv } from "../_shared/env.ts";
import { serviceClient, userClient } from "../_shared/supabase.ts";
import { stripeClient } from "../_shared/stripe.ts";
import { createBillingApp } from "./app.ts";

const app = createBillingApp({
  stripe: stripeClient(),
  service: serviceClient(),
  userClient,
  appUrl: functionEnv().appUrl,
});

Deno.serve(app.fetch);
