/**
 * Runs the gateway on its own: `tsx local/gateway/main.ts`. Reads DATABASE_URL (required: a
 * prepared database), API_PORT (default 54321; 0 = any free port), JWT_SECRET,
 * GATEWAY_FUNCTIONS=0 to leave the Edge Functions out, GATEWAY_FUNCTIONS_DIR and
 * GATEWAY_FUNCTIONS_CONFIG to serve other functions than functions/ with supabase/config.toml,
 * and passes the functions' settings (local/shared/function-settings.ts) through from its
 * environment. Prints `GATEWAY_URL=…` once listening;
 * SIGINT/SIGTERM stop it. The benchmark runs it this way, in a process of its own as under
 * `npm start`, so the load generator does not share its event loop.
 */
import { startGateway } from "./gateway.ts";
import { apiKeys } from "./keys.ts";
import { functionSettingsFrom } from "../shared/function-settings.ts";

async function main(): Promise<void> {
  const databaseUrl = process.env.DATABASE_URL;
  if (!databaseUrl) throw new Error("DATABASE_URL is required (a database prepared with npm run db:up)");
  const gateway = await startGateway({
    port: Number(process.env.API_PORT ?? 54321),
    databaseUrl,
    keys: await apiKeys(),
    functions: process.env.GATEWAY_FUNCTIONS !== "0",
    functionsDir: process.env.GATEWAY_FUNCTIONS_DIR || undefined,
    configFile: process.env.GATEWAY_FUNCTIONS_CONFIG || undefined,
    secrets: functionSettingsFrom(),
  });
  for (const fn of gateway.functions) if (fn.error) console.error(`function ${fn.name} failed to start: ${fn.error}`);
  console.log(`GATEWAY_URL=${gateway.url}`);
  const stop = () => void gateway.close().then(() => process.exit(0));
  process.once("SIGINT", stop);
  process.once("SIGTERM", stop);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
