/**
 * vitest globalSetup: builds web/dist once before the suites, the way `npm run build` does,
 * with the environment a real deployment has (public VITE_* values next to server secrets),
 * so the bundle test can prove that only the public ones reach the browser.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "vite";
import { LOCAL_ANON_KEY, LOCAL_SERVICE_ROLE_KEY } from "./local-keys";

const webRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../..");

export default async function buildOnce(): Promise<void> {
  if (process.env.WEB_TEST_SKIP_BUILD === "1") return;
  Object.assign(process.env, {
    VITE_SUPABASE_URL: process.env.VITE_SUPABASE_URL ?? "http://127.0.0.1:54321",
    VITE_SUPABASE_ANON_KEY: process.env.VITE_SUPABASE_ANON_KEY ?? LOCAL_ANON_KEY,
    SUPABASE_SERVICE_ROLE_KEY: process.env.SUPABASE_SERVICE_ROLE_KEY ?? LOCAL_SERVICE_ROLE_KEY,
    STRIPE_SECRET_KEY: process.env.STRIPE_SECRET_KEY ?? "sk_test_local_emulator",
    STRIPE_WEBHOOK_SECRET: process.env.STRIPE_WEBHOOK_SECRET ?? "whsec_local_emulator",
  });
  // vitest sets NODE_ENV=test, and Vite keeps a NODE_ENV it finds: React would be built in
  // development mode (a third larger), and the bundle-size test would measure that, not production.
  const nodeEnv = process.env.NODE_ENV;
  process.env.NODE_ENV = "production";
  try {
    await build({ root: webRoot, configFile: path.join(webRoot, "vite.config.ts"), logLevel: "warn", mode: "production" });
  } finally {
    if (nodeEnv === undefined) delete process.env.NODE_ENV;
    else process.env.NODE_ENV = nodeEnv;
  }
}
