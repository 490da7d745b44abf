import { z } from "zod/mini";

/**
 * The dashboard's configuration, read once from Vite's `import.meta.env` at start-up.
 * Only public values belong here: the anon key is meant for browsers, and anything that
 * looks like a server secret is refused so it can never be shipped by mistake.
 */
const configSchema = z.object({
  VITE_SUPABASE_URL: z.url({ message: "must be the URL of the Supabase API, e.g. http://127.0.0.1:54321" }),
  VITE_SUPABASE_ANON_KEY: z
    .string({ message: "is required: the project's anon (public) key" })
    .check(z.minLength(20, { message: "is too short to be a Supabase anon key" })),
  VITE_STRIPE_PUBLISHABLE_KEY: z.optional(
    z.string().check(
      z.refine((value) => value === "" || value.startsWith("pk_"), {
        message: "must be a publishable key (pk_…); secret keys never belong in the browser",
      }),
    ),
  ),
});

export interface AppConfig {
  supabaseUrl: string;
  supabaseAnonKey: string;
  stripePublishableKey: string | null;
}

export type ConfigResult = { ok: true; config: AppConfig } | { ok: false; problems: string[] };

/** Validates the VITE_* variables; returns readable problems instead of throwing. */
export function parseConfig(env: Record<string, unknown>): ConfigResult {
  const parsed = configSchema.safeParse(env);
  if (!parsed.success) {
    return {
      ok: false,
      problems: parsed.error.issues.map((issue) => `${issue.path.join(".")} ${issue.message}`),
    };
  }
  return {
    ok: true,
    config: {
      supabaseUrl: parsed.data.VITE_SUPABASE_URL.replace(/\/+$/, ""),
      supabaseAnonKey: parsed.data.VITE_SUPABASE_ANON_KEY,
      stripePublishableKey: parsed.data.VITE_STRIPE_PUBLISHABLE_KEY || null,
    },
  };
}
