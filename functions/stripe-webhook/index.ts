/**
 * Edge Function `stripe-webhook` (verify_jwt = false: authenticity comes only from the
 * Stripe-Signature header). Wiring only; the behaviour lives in handler.ts and apply.ts.
 */
import { functionEnv } from "../_shared/env.ts";
import { preflight } from "../_shared/http.ts";
import { rpc, serviceClient, userClient } from "../_shared/supabase.ts";
import { cryptoProvider, stripeClient } from "../_shared/stripe.ts";
import { waitUntil } from "../_shared/edge-runtime.ts";
import { directSql } from "../_shared/direct-sql.ts";
import { createWebhookHandler } from "./handler.ts";

const env = functionEnv();
const db = serviceClient();
// Edge Functions get SUPABASE_DB_URL on hosted Supabase (and from the local gateway): the
// store before the acknowledgement goes straight to Postgres, one hop fewer than the REST API.
const databaseUrl = Deno.env.get("SUPABASE_DB_URL");
const direct = databaseUrl ? directSql(databaseUrl) : undefined;

const handle = createWebhookHandler({
  stripe: stripeClient(),
  appUrl: env.appUrl,
  webhookSecret: env.stripeWebhookSecret,
  serviceRoleKey: env.supabaseServiceRoleKey,
  cryptoProvider,
  toleranceSeconds: 300,
  gracePeriodDays: env.gracePeriodDays,
  now: () => new Date(),
  waitUntil,
  rpc: (fn, args) => rpc(db, fn, args),
  store: direct ? (fn, args) => direct.call(fn, args) : undefined,
  // Through the Stripe-id lookup (a reference table when sharded), not a scan of organizations.
  // rpc throws a DatabaseFailure, so the database being down is a 503 (Stripe retries).
  organizationOfCustomer: (customerId) => rpc(db, "organization_of_stripe_customer", { p_stripe_customer_id: customerId }),
  // The caller's own token asks the database; anything that is not a signed-in user fails the call.
  isOperator: async (authorization) => {
    const { data, error } = await userClient(authorization).rpc("is_billing_operator");
    return error ? null : data === true;
  },
  log: (message, fields) => console.log(JSON.stringify({ message, ...fields })),
});

Deno.serve((request) => preflight(request) ?? handle(request));
