/**
 * The function's configuration, read once and checked up front: a missing secret fails the
 * first request loudly instead of surfacing as a confusing error deep inside a handler.
 */
export interface FunctionEnv {
  supabaseUrl: string;
  supabaseAnonKey: string;
  supabaseServiceRoleKey: string;
  stripeSecretKey: string;
  stripeWebhookSecret: string;
  /** Empty for real Stripe; the emulator's base URL locally. */
  stripeApiBase: string;
  /** Allowed origin for Checkout and portal return URLs. */
  appUrl: string;
  /** Days a past-due subscription keeps its credits spendable. */
  gracePeriodDays: number;
  /** How long one Stripe request may take before it is retried or given up (ms). */
  stripeTimeoutMs: number;
}

function required(name: string): string {
  const value = Deno.env.get(name);
  if (!value) throw new Error(`missing required environment variable ${name}`);
  return value;
}

/** A positive number from the environment, or the default when unset; anything else fails loudly. */
function positive(name: string, fallback: number): number {
  const raw = Deno.env.get(name);
  if (raw === undefined || raw === "") return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number, not ${raw}`);
  return value;
}

let cached: FunctionEnv | undefined;

export function functionEnv(): FunctionEnv {
  cached ??= {
    supabaseUrl: required("SUPABASE_URL"),
    supabaseAnonKey: required("SUPABASE_ANON_KEY"),
    supabaseServiceRoleKey: required("SUPABASE_SERVICE_ROLE_KEY"),
    stripeSecretKey: required("STRIPE_SECRET_KEY"),
    stripeWebhookSecret: required("STRIPE_WEBHOOK_SECRET"),
    stripeApiBase: Deno.env.get("STRIPE_API_BASE") ?? "",
    appUrl: new URL(required("APP_URL")).origin,
    gracePeriodDays: positive("BILLING_GRACE_PERIOD_DAYS", 7),
    stripeTimeoutMs: positive("STRIPE_TIMEOUT_MS", 10_000),
  };
  return cached;
}
