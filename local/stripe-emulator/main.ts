/**
 * CLI: `tsx local/stripe-emulator/main.ts`. Reads PORT (default 12111), STRIPE_WEBHOOK_URL and
 * STRIPE_WEBHOOK_SECRET (both needed for webhook delivery), STRIPE_EMULATOR_PUBLIC_URL,
 * STRIPE_EMULATOR_STATE_FILE (keep the state in that file across restarts; in memory when
 * unset), STRIPE_EMULATOR_RETRY_DELAYS_MS (comma-separated delays before each webhook retry),
 * and runs until Ctrl-C or SIGTERM, which save the state and stop.
 */
import { StateFileError } from "./persistence.ts";
import { startStripeEmulator } from "./server.ts";

const port = Number(process.env.PORT ?? 12111);
if (!Number.isInteger(port) || port < 0 || port > 65535) {
  console.error(`PORT must be a port number, got ${process.env.PORT}`);
  process.exit(1);
}
const url = process.env.STRIPE_WEBHOOK_URL || undefined;
const secret = process.env.STRIPE_WEBHOOK_SECRET || undefined;
if (url && !secret?.startsWith("whsec_")) {
  console.error("STRIPE_WEBHOOK_URL is set but STRIPE_WEBHOOK_SECRET is not a whsec_ secret: webhooks could not be signed.");
  process.exit(1);
}
const stateFile = process.env.STRIPE_EMULATOR_STATE_FILE || undefined;
const retryText = process.env.STRIPE_EMULATOR_RETRY_DELAYS_MS || undefined;
const retryDelaysMs = retryText?.split(",").map((part) => Number(part.trim()));
if (retryDelaysMs?.some((delay) => !Number.isInteger(delay) || delay < 0)) {
  console.error(`STRIPE_EMULATOR_RETRY_DELAYS_MS must be comma-separated whole milliseconds, got ${retryText}`);
  process.exit(1);
}

let emulator;
try {
  emulator = await startStripeEmulator({
    port,
    webhookUrl: url,
    webhookSecret: secret,
    publicUrl: process.env.STRIPE_EMULATOR_PUBLIC_URL || undefined,
    stateFile,
    ...(retryDelaysMs ? { retryDelaysMs } : {}),
  });
} catch (error) {
  // A state file it cannot use is the user's to resolve; the sentence says how.
  if (error instanceof StateFileError) {
    console.error(error.message);
    process.exit(1);
  }
  throw error;
}
const running = emulator;
console.log(`Stripe emulator listening on ${running.url}`);
console.log(stateFile ? `Keeping its state in ${stateFile}` : "No STRIPE_EMULATOR_STATE_FILE: state is in memory and lost when it stops.");
console.log(url ? `Delivering webhooks to ${url}` : "No STRIPE_WEBHOOK_URL: events are recorded (GET /v1/events) but not delivered.");

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    void running.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error("Stripe emulator: stopping failed:", error);
        process.exit(1);
      },
    );
  });
}
