/**
 * Webhook delivery as Stripe does it: every event POSTed to the endpoint as JSON with a
 * `Stripe-Signature` header made by the `stripe` package's own signing helper, retried with
 * growing delays while the endpoint answers non-2xx or cannot be reached, each attempt
 * recorded on the event. Two switches exist for tests of the receiver: `duplicate` delivers
 * every event twice, `reorder` delivers each burst of events (everything one request or page
 * action emitted) in reverse order.
 *
 * With a state file, an event's delivery schedule (`nextAttemptAt`) is part of the saved
 * state: the event is saved before its first attempt leaves, attempts' outcomes are saved
 * shortly after, and `resume()` after a restart sends what is due at once and schedules the
 * rest. An attempt cut off by `stop()` is not recorded, so the event is simply still due.
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

/** How the dispatcher keeps delivery state durable (the state file); without it, state is in memory only. */
export interface DeliveryPersistence {
  /** Makes sure the event is in the state file before it leaves: after a crash it must still exist. */
  ensureSaved(stored: StoredEvent): void;
  /**
   * Saves delivery outcomes shortly (with the next request, or after a moment). One lost to a
   * crash means the event is delivered again, which Stripe's at-least-once delivery allows.
   */
  saveSoon(): void;
}

/** How long after a start resumed deliveries wait for an endpoint that refuses connections. */
const resumeGraceMs = 60_000;

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
  private readonly startedAt = Date.now();

  constructor(
    private readonly store: Store,
    readonly options: WebhookOptions,
    private readonly persistence?: DeliveryPersistence,
  ) {
    store.onEvent((stored) => this.enqueue(stored));
  }

  /**
   * Picks up deliveries a previous run left pending (loaded from the state file): those due go
   * out now, in emission order (waiting up to a minute for an endpoint that is not listening
   * yet); later retries wait for their time. Nothing happens without an endpoint; the events
   * stay pending for a run that has one.
   */
  resume(): void {
    if (!this.deliveryConfigured()) return;
    const now = Date.now();
    for (const stored of this.store.events) {
      const due = stored.nextAttemptAt;
      if (due === null) continue;
      const attempt = stored.deliveries.filter((d) => !d.duplicate).length + 1;
      this.inFlight += 1;
      if (due <= now) this.chain = this.chain.then(() => this.attempt(stored, attempt, false, true));
      else this.later(due - now, () => void this.attempt(stored, attempt, false, true));
    }
  }

  private deliveryConfigured(): boolean {
    return Boolean(this.options.url && this.options.secret && this.options.enabled !== false);
  }

  private later(delayMs: number, run: () => void): void {
    const timer = setTimeout(() => {
      this.timers.delete(timer);
      run();
    }, delayMs);
    this.timers.add(timer);
  }

  /** Changes switches at run time (the `/_emulator/webhooks` endpoint and tests use this). */
  configure(changes: Partial<WebhookOptions>): void {
    Object.assign(this.options, changes);
  }

  private enqueue(stored: StoredEvent): void {
    if (!this.deliveryConfigured()) return;
    stored.event.pending_webhooks = 1;
    stored.nextAttemptAt = Date.now();
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

  /** POSTs the event once; `refused` when nothing listens at the URL. */
  private async post(url: string, secret: string, stored: StoredEvent): Promise<{ status: number | null; error: string | null; refused: boolean }> {
    const payload = JSON.stringify(stored.event, null, 2);
    const header = Stripe.webhooks.generateTestHeaderString({ payload, secret });
    try {
      const response = await fetch(url, {
        method: "POST",
        headers: { "content-type": "application/json; charset=utf-8", "stripe-signature": header, "user-agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)" },
        body: payload,
        signal: AbortSignal.any([AbortSignal.timeout(this.options.timeoutMs ?? 10_000), this.abort.signal]),
      });
      await response.arrayBuffer().catch(() => undefined);
      return { status: response.status, error: null, refused: false };
    } catch (cause) {
      const code = (cause as { cause?: { code?: unknown } } | null)?.cause?.code;
      return { status: null, error: cause instanceof Error ? cause.message : String(cause), refused: code === "ECONNREFUSED" };
    }
  }

  private async attempt(stored: StoredEvent, attempt: number, duplicate: boolean, resumed = false): Promise<void> {
    if (this.stopped) return this.settle();
    const { url, secret } = this.options;
    if (!url || !secret) return this.settle();
    try {
      this.persistence?.ensureSaved(stored);
    } catch (cause) {
      console.error("[stripe-emulator] could not save state before a webhook delivery; trying again in a second:", cause);
      this.later(1000, () => void this.attempt(stored, attempt, duplicate, resumed));
      return;
    }
    let sent = await this.post(url, secret, stored);
    // After a restart the endpoint is often still starting alongside the emulator (npm start
    // starts it before the functions): while nothing listens there yet, a resumed delivery
    // waits for it instead of failing into the retry schedule (a minute, by default).
    while (resumed && sent.refused && !this.stopped && Date.now() - this.startedAt < resumeGraceMs) {
      await new Promise<void>((resolve) => this.later(250, resolve));
      sent = await this.post(url, secret, stored);
    }
    const { status, error } = sent;
    // Cut off by stop(): not an attempt the endpoint failed, so nothing is recorded and the
    // event is still due when the emulator starts again on the same state.
    if (this.stopped) return this.settle();
    const at = Date.now();
    stored.deliveries.push({ attempt, at, status, error, duplicate });
    const ok = status !== null && status >= 200 && status < 300;
    const delays = this.options.retryDelaysMs ?? defaultRetryDelaysMs;
    const delay = ok ? undefined : delays[attempt - 1];
    if (ok) {
      stored.event.pending_webhooks = 0;
      stored.nextAttemptAt = null;
    } else if (!duplicate && stored.event.pending_webhooks > 0) {
      // When the next retry is due; none left means Stripe gives up on the event (and would
      // eventually disable the endpoint).
      stored.nextAttemptAt = delay === undefined ? null : at + delay;
    }
    this.store.deliveryChanged(stored);
    this.persistence?.saveSoon();
    if (delay === undefined) return this.settle();
    this.later(delay, () => void this.attempt(stored, attempt + 1, duplicate));
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

  /** Cancels pending retries and deliveries on the wire; with a state file they resume after a restart. */
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
