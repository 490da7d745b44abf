/**
 * CLI: `tsx local/stripe-emulator/main.ts`. Reads PORT (default 12111), STRIPE_WEBHOOK_URL and
 * STRIPE_WEBHOOK_SECRET (both needed for webhook delivery), STRIPE_EMULATOR_PUBLIC_URL, and
 * runs until Ctrl-C.
 */
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

const emulator = await startStripeEmulator({ port, webhookUrl: url, webhookSecret: secret, publicUrl: process.env.STRIPE_EMULATOR_PUBLIC_URL || undefined });
console.log(`Stripe emulator listening on ${emulator.url}`);
console.log(url ? `Delivering webhooks to ${url}` : "No STRIPE_WEBHOOK_URL: events are recorded (GET /v1/events) but not delivered.");

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.once(signal, () => {
    void emulator.stop().then(() => process.exit(0));
  });
}
