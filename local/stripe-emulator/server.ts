/**
 * `startStripeEmulator`: the API, the hosted pages, webhook delivery and the test clock on
 * one HTTP port. State lives in memory, and with `stateFile` also on disk (persistence.ts):
 * every change is durable before the response that caused it is sent, so a restart (or a
 * crash) keeps every Stripe id a database holds valid and resumes pending webhook deliveries.
 */
import { serve } from "@hono/node-server";
import { Hono } from "hono";
import type { AddressInfo } from "node:net";
import { z } from "zod";
import { createApi, errorResponse, mountUnknownEndpoints } from "./api.ts";
import { bool, int, parseParams, readControlBody, str } from "./form.ts";
import { StateFile } from "./persistence.ts";
import { createResources, mountResources, type Resources } from "./resources/index.ts";
import type { DunningOptions } from "./resources/subscriptions.ts";
import { Store } from "./store.ts";
import { WebhookDispatcher, type WebhookOptions } from "./webhooks.ts";

export interface StripeEmulatorOptions extends Omit<WebhookOptions, "url" | "secret"> {
  /** Where events are POSTed (the stripe-webhook function); no delivery when absent. */
  webhookUrl?: string;
  /** That endpoint's `whsec_...` signing secret; required with `webhookUrl`. */
  webhookSecret?: string;
  /** Port to listen on; 0 picks a free one. Default 12111. */
  port?: number;
  /** Interface to bind. Default 127.0.0.1. */
  hostname?: string;
  /** Public base URL of the emulator for page links (defaults to http://<hostname>:<port>). */
  publicUrl?: string;
  /** Renewal retries and the final action; Stripe's defaults are similar (retry over ~1 week, then cancel). */
  dunning?: Partial<DunningOptions>;
  /**
   * Keep the state in this file (created with its directory when missing) and load it at
   * start: objects, events, pending webhook deliveries, idempotency keys, test clocks. Absent:
   * state lives in memory only and is gone when the emulator stops.
   */
  stateFile?: string;
}

export interface StripeEmulator {
  /** Base URL, e.g. http://127.0.0.1:12111 (what STRIPE_API_BASE should be). */
  url: string;
  /** The webhook signing secret deliveries are signed with, when delivery is configured. */
  webhookSecret?: string;
  port: number;
  store: Store;
  /** Every emulated resource and its state changes (resources/), for tests that drive them directly. */
  resources: Resources;
  webhooks: WebhookDispatcher;
  /** Resolves when every queued webhook delivery (and its retries) has finished. */
  webhooksIdle(): Promise<void>;
  stop(): Promise<void>;
}

/** Starts the emulator and resolves once it is listening. */
export async function startStripeEmulator(options: StripeEmulatorOptions = {}): Promise<StripeEmulator> {
  const hostname = options.hostname ?? "127.0.0.1";
  const { webhookUrl, webhookSecret } = options;
  if (webhookUrl && !webhookSecret?.startsWith("whsec_")) {
    throw new Error("startStripeEmulator: webhookUrl needs a webhookSecret starting with whsec_ to sign deliveries.");
  }
  let baseUrl = options.publicUrl ?? "";
  const store = new Store();
  // Loaded before the port opens: no request may see a half-loaded state.
  const state = options.stateFile ? StateFile.open(options.stateFile, store) : null;
  const save = () => state?.save();
  const resources = createResources(store, () => baseUrl, {
    retryDays: options.dunning?.retryDays ?? [3, 5, 7],
    finalAction: options.dunning?.finalAction ?? "cancel",
  });
  const webhooks = new WebhookDispatcher(store, {
    url: webhookUrl,
    secret: webhookSecret,
    retryDelaysMs: options.retryDelaysMs,
    duplicate: options.duplicate,
    reorder: options.reorder,
    timeoutMs: options.timeoutMs,
  }, state ?? undefined);

  const app = new Hono();
  app.onError((error) => errorResponse(error));
  // Whatever a request changed (even one that failed part-way, or a read that expired a
  // Checkout Session) is saved before its response leaves.
  app.use("*", async (c, next) => {
    await next();
    try {
      save();
    } catch (error) {
      console.error("[stripe-emulator] could not save state:", error);
      c.res = errorResponse(new Error(`the state file could not be written (${error instanceof Error ? error.message : String(error)})`));
    }
  });
  // The controls first: their fault switch sits in front of every /v1 route.
  mountEmulatorControls(app, { store, webhooks });
  mountResources(createApi(app, store), resources);
  mountUnknownEndpoints(app);
  app.get("/", (c) => c.text("Stripe emulator. API under /v1, hosted pages under /checkout and /portal, controls under /_emulator.\n"));

  let server: ReturnType<typeof serve>;
  try {
    server = await new Promise<ReturnType<typeof serve>>((resolve, reject) => {
      const s = serve({ fetch: app.fetch, port: options.port ?? 12111, hostname }, () => resolve(s));
      s.once("error", reject);
    });
  } catch (error) {
    state?.close();
    throw error;
  }
  const port = (server.address() as AddressInfo).port;
  if (!baseUrl) baseUrl = `http://${hostname}:${port}`;
  // After listening: a receiver handling a resumed delivery may call back (to re-read an object).
  webhooks.resume();

  return {
    url: baseUrl,
    ...(webhookSecret ? { webhookSecret } : {}),
    port,
    store,
    resources,
    webhooks,
    webhooksIdle: () => webhooks.idle(),
    stop: () =>
      new Promise<void>((resolve, reject) => {
        // Deliveries cut off here stay pending in the state file and resume at the next start.
        webhooks.stop();
        server.close((error) => {
          try {
            state?.close();
          } catch (closeError) {
            reject(closeError as Error);
            return;
          }
          if (error) reject(error);
          else resolve();
        });
        if ("closeAllConnections" in server) server.closeAllConnections();
      }),
  };
}

/**
 * Emulator-only endpoints that belong to no Stripe resource: the webhook switches and delivery
 * log, and the API's fault switch. (The test clock and the Checkout pay hook live with their
 * resources.) JSON in (or form), JSON out.
 */
function mountEmulatorControls(app: Hono, ctx: { store: Store; webhooks: WebhookDispatcher }): void {
  const { store, webhooks } = ctx;
  const faults: { api: "ok" | "down" | "error" | "slow"; delayMs: number } = { api: "ok", delayMs: 30_000 };

  /** GET /_emulator/webhooks: the switches and every event's delivery attempts. */
  app.get("/_emulator/webhooks", (c) =>
    c.json({
      url: webhooks.options.url ?? null,
      duplicate: webhooks.options.duplicate ?? false,
      reorder: webhooks.options.reorder ?? false,
      enabled: webhooks.options.enabled ?? true,
      retry_delays_ms: webhooks.options.retryDelaysMs ?? null,
      deliveries: store.events.map((s) => ({ event: s.event.id, type: s.event.type, pending_webhooks: s.event.pending_webhooks, attempts: s.deliveries })),
    }),
  );

  /** POST /_emulator/webhooks {url?, secret?, duplicate?, reorder?, enabled?}: changes the switches at run time. */
  app.post("/_emulator/webhooks", async (c) => {
    const flag = z.union([z.boolean(), bool]);
    const p = parseParams(
      z.object({ url: str.optional(), secret: str.optional(), duplicate: flag.optional(), reorder: flag.optional(), enabled: flag.optional() }).strict(),
      await readControlBody(c),
    );
    webhooks.configure({
      ...(p.url !== undefined ? { url: p.url } : {}),
      ...(p.secret !== undefined ? { secret: p.secret } : {}),
      ...(p.duplicate !== undefined ? { duplicate: p.duplicate } : {}),
      ...(p.reorder !== undefined ? { reorder: p.reorder } : {}),
      ...(p.enabled !== undefined ? { enabled: p.enabled } : {}),
    });
    return c.json({
      url: webhooks.options.url ?? null,
      duplicate: webhooks.options.duplicate ?? false,
      reorder: webhooks.options.reorder ?? false,
      enabled: webhooks.options.enabled ?? true,
    });
  });

  /**
   * GET/POST /_emulator/faults {api: "ok" | "down" | "error" | "slow", delay_ms?}: how the
   * API under /v1 misbehaves, for tests of callers. `down` resets every connection (Stripe
   * unreachable), `error` answers 500 api_error, `slow` answers after `delay_ms` (default
   * 30 s) and still does the work, as Stripe does when a client gives up waiting.
   */
  app.get("/_emulator/faults", (c) => c.json(faultView()));
  app.post("/_emulator/faults", async (c) => {
    const p = parseParams(
      z.object({ api: z.enum(["ok", "down", "error", "slow"]), delay_ms: z.union([z.number().int().nonnegative(), int]).optional() }).strict(),
      await readControlBody(c),
    );
    faults.api = p.api;
    faults.delayMs = p.delay_ms ?? 30_000;
    return c.json(faultView());
  });
  const faultView = () => ({ api: faults.api, delay_ms: faults.delayMs });

  app.use("/v1/*", async (c, next) => {
    if (faults.api === "down") {
      // Drop the connection without an answer, as an unreachable host looks to a client.
      const incoming = (c.env as { incoming?: { socket?: { destroy(): void } } } | undefined)?.incoming;
      incoming?.socket?.destroy();
      return c.body(null, 503);
    }
    if (faults.api === "error") {
      return c.json({ error: { type: "api_error", message: "The Stripe emulator is failing on purpose (/_emulator/faults)." } }, 500);
    }
    if (faults.api === "slow") await new Promise((resolve) => setTimeout(resolve, faults.delayMs));
    await next();
  });
}
