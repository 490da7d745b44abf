/**
 * Webhook delivery as Stripe does it: every event POSTed to the endpoint as JSON with a
 * `Stripe-Signature` header made by the `stripe` package's own signing helper, retried with
 * growing delays while the endpoint answers non-2xx or cannot be reached, each attempt
 * recorded on the event. Two switches exist for tests of the receiver: `duplicate` delivers
 * every event twice, `reorder` delivers each burst of events (everything one request or page
 * action emitted) in reverse order.
 */
import Stripe from "stripe";
import type { Store, StoredEvent } from "./store.ts";

export interface WebhookOptions {
  /** Where events are POSTed; no delivery when absent. */
  url?: string;
  /** The endpoint's `whsec_...` signing secret. */
  secret?: string;
  /**
   * Delay in milliseconds before each retry (the n-th entry before attempt n+1); the number of
   * entries is the number of retries. Stripe retries for up to three days; the default here
   * keeps that shape (1 min, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h, 24 h) and tests pass milliseconds.
   */
  retryDelaysMs?: number[];
  /** Deliver every event twice. */
  duplicate?: boolean;
  /** Deliver each burst of events in reverse order. */
  reorder?: boolean;
  /** Per-attempt timeout in milliseconds (default 10 s). */
  timeoutMs?: number;
  /**
   * Set to false to stop delivering: events are still created (and listed by `/v1/events`),
   * as when a Stripe endpoint is disabled. Tests use it to replay a history themselves.
   */
  enabled?: boolean;
}

const defaultRetryDelaysMs = [60_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000, 86_400_000];

export class WebhookDispatcher {
  private burst: StoredEvent[] = [];
  private burstScheduled = false;
  private inFlight = 0;
  private readonly timers = new Set<NodeJS.Timeout>();
  private idleWaiters: Array<() => void> = [];
  private stopped = false;
  /** Aborts deliveries on the wire when the emulator stops, so nothing keeps the process alive. */
  private readonly abort = new AbortController();
  /** A serial chain so deliveries leave in the order they were queued. */
  private chain: Promise<void> = Promise.resolve();

  constructor(
    store: Store,
    readonly options: WebhookOptions,
  ) {
    store.onEvent((stored) => this.enqueue(stored));
  }

  /** Changes switches at run time (the `/_emulator/webhooks` endpoint and tests use this). */
  configure(changes: Partial<WebhookOptions>): void {
    Object.assign(this.options, changes);
  }

  private enqueue(stored: StoredEvent): void {
    if (!this.options.url || !this.options.secret || this.options.enabled === false) return;
    stored.event.pending_webhooks = 1;
    this.burst.push(stored);
    this.inFlight += 1;
    if (!this.burstScheduled) {
      this.burstScheduled = true;
      // Everything emitted in the same tick is one burst: what one API call or page action did.
      setImmediate(() => this.flushBurst());
    }
  }

  private flushBurst(): void {
    this.burstScheduled = false;
    const burst = this.options.reorder ? [...this.burst].reverse() : this.burst;
    this.burst = [];
    for (const stored of burst) {
      this.chain = this.chain.then(() => this.attempt(stored, 1, false));
      if (this.options.duplicate) {
        this.inFlight += 1;
        this.chain = this.chain.then(() => this.attempt(stored, 1, true));
      }
    }
  }

  private async attempt(stored: StoredEvent, attempt: number, duplicate: boolean): Promise<void> {
    if (this.stopped) return this.settle();
    const { url, secret } = this.options;
    if (!url || !secret) return this.settle();
    const payload = JSON.stringify(stored.event, null, 2);
    const header = Stripe.webhooks.generateTestHeaderString({ payload, secret });
    let status: number | null = null;
    let error: string | null = null;
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json; charset=utf-8", "stripe-signature": header, "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)" },
        body: payload,
        signal: AbortSignal.any([AbortSignal.timeout(this.options.timeoutMs ?? 10_000), this.abort.signal]),
      });
      status = response.status;
      await response.arrayBuffer().catch(() => undefined);
    } catch (cause) {
      error = cause instanceof Error ? cause.message : String(cause);
    }
    stored.deliveries.push({ attempt, at: Date.now(), status, error, duplicate });
    const ok = status !== null && status >= 200 && status < 300;
    if (ok) {
      stored.event.pending_webhooks = 0;
      return this.settle();
    }
    const delays = this.options.retryDelaysMs ?? defaultRetryDelaysMs;
    const delay = delays[attempt - 1];
    if (delay === undefined || this.stopped) {
      // Out of retries: Stripe gives up on the event (and would eventually disable the endpoint).
      return this.settle();
    }
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      void this.attempt(stored, attempt + 1, duplicate);
    }, delay);
    this.timers.add(timer);
  }

  private settle(): void {
    this.inFlight = Math.max(0, this.inFlight - 1);
    if (this.inFlight === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      for (const resolve of waiters) resolve();
    }
  }

  /** Resolves once every queued delivery, retries included, has succeeded or given up. */
  idle(): Promise<void> {
    if (this.inFlight === 0 && !this.burstScheduled) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Cancels pending retries and deliveries on the wire. */
  stop(): void {
    this.stopped = true;
    this.abort.abort();
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.inFlight = 0;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const resolve of waiters) resolve();
  }
}
