/**
 * Edge Function `auto-top-up` (verify_jwt = false: the route checks the service role key
 * itself). Wiring only; the behaviour lives in handler.ts and run.ts.
 */
import { functionEnv } from "../_shared/env.ts";
import { preflight } from "../_shared/http.ts";
import { rpc, serviceClient } from "../_shared/supabase.ts";
import { stripeClient } from "../_shared/stripe.ts";
import { createAutoTopUpHandler } from "./handler.ts";

const env = functionEnv();
const db = serviceClient();

const handle = createAutoTopUpHandler({
  stripe: stripeClient(),
  appUrl: env.appUrl,
  serviceRoleKey: env.supabaseServiceRoleKey,
  rpc: (fn, args) => rpc(db, fn, args),
  now: () => new Date(),
  log: (message, fields) => console.log(JSON.stringify({ message, ...fields })),
});

Deno.serve((request) => preflight(request) ?? handle(request));
