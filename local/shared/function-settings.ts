/**
 * The project's settings the Edge Functions read from their environment (the contract's
 * variable names), besides the Supabase URL and keys the gateway gives every function.
 * Whoever starts the functions (the stack, the gateway's own CLI, the benchmark) passes
 * exactly these through from its environment.
 */
export const FUNCTION_SETTING_NAMES = [
  "STRIPE_SECRET_KEY",
  "STRIPE_WEBHOOK_SECRET",
  "STRIPE_API_BASE",
  "STRIPE_TIMEOUT_MS",
  "APP_URL",
  "VITE_STRIPE_PUBLISHABLE_KEY",
  "BILLING_GRACE_PERIOD_DAYS",
  "BILLING_WEBHOOK_URL",
  "BILLING_WEBHOOK_SECRET",
  "SMTP_URL",
  "EMAIL_FROM",
] as const;

/** The function settings set (non-empty) in an environment. */
export function functionSettingsFrom(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const settings: Record<string, string> = {};
  for (const name of FUNCTION_SETTING_NAMES) if (env[name]) settings[name] = env[name]!;
  return settings;
}
