/**
 * The test clock: each customer's clock runs ahead of real time when moved, and moving it
 * performs everything due on the way, in time order: trial reminders, trial conversions,
 * renewals, payment retries, cancellations at period end. Stripe's own test clocks are a
 * separate object; here the clock is per customer and moved through `POST /_emulator/advance`.
 */
import type Stripe from "stripe";
import { z } from "zod";
import type { Api } from "../api.ts";
import { invalidRequest } from "../errors.ts";
import { int, parseParams, readControlBody, str } from "../form.ts";
import { idOf } from "./customers.ts";
import type { Resources } from "./index.ts";
import { day } from "./subscriptions.ts";

export class TestClocks {
  constructor(private readonly r: Resources) {}

  /** The next moment something happens to this subscription on its own, or null. */
  nextMilestone(subscription: Stripe.Subscription): number | null {
    if (subscription.status === "canceled" || subscription.status === "incomplete_expired" || subscription.status === "incomplete") return null;
    const state = this.r.subscriptions.state(subscription.id);
    const item = this.r.subscriptions.item(subscription);
    const candidates: number[] = [];
    if (subscription.status === "trialing" && subscription.trial_end) {
      if (!state.trialWillEndSent) candidates.push(Math.max(subscription.created, subscription.trial_end - 3 * day));
      candidates.push(subscription.trial_end);
    } else {
      if (state.nextRetryAt !== null) candidates.push(state.nextRetryAt);
      if (subscription.status !== "unpaid") candidates.push(item.current_period_end);
    }
    return candidates.length ? Math.min(...candidates) : null;
  }

  /**
   * Runs a customer's clock forward to `to` (default: the earliest next milestone among its
   * subscriptions), performing everything due on the way in time order.
   */
  advance(customerId: string, to?: number): { now: number; subscriptions: Stripe.Subscription[] } {
    const { store } = this.r;
    this.r.customers.get(customerId, "customer");
    const subscriptions = [...store.subscriptions.values()].filter((s) => idOf(s.customer) === customerId);
    const milestones = subscriptions.map((s) => this.nextMilestone(s)).filter((m): m is number => m !== null);
    const target = to ?? (milestones.length ? Math.min(...milestones) : store.now(customerId));
    for (let guard = 0; guard < 10_000; guard++) {
      let due: { subscription: Stripe.Subscription; at: number } | null = null;
      for (const subscription of subscriptions) {
        const at = this.nextMilestone(subscription);
        if (at !== null && at <= target && (!due || at < due.at)) due = { subscription, at };
      }
      if (!due) break;
      store.advanceClock(customerId, due.at);
      this.runMilestone(due.subscription, due.at);
    }
    const before = store.now(customerId);
    store.advanceClock(customerId, target);
    // The clock the run reached, not a fresh reading: the customer's clock keeps ticking with
    // real time, so reading it again could already be a second past the target.
    return { now: Math.max(target, before), subscriptions };
  }

  private runMilestone(subscription: Stripe.Subscription, at: number): void {
    const subscriptions = this.r.subscriptions;
    const state = subscriptions.state(subscription.id);
    const item = subscriptions.item(subscription);
    if (subscription.status === "trialing" && subscription.trial_end) {
      if (!state.trialWillEndSent && at < subscription.trial_end) {
        state.trialWillEndSent = true;
        this.r.store.emit("customer.subscription.trial_will_end", subscription, { customer: idOf(subscription.customer) });
        return;
      }
      state.trialWillEndSent = true;
      subscriptions.renew(subscription);
      return;
    }
    if (state.nextRetryAt !== null && at === state.nextRetryAt && at < item.current_period_end) {
      subscriptions.retry(subscription);
      return;
    }
    subscriptions.renew(subscription);
  }
}

const seconds = z.union([z.number().int().nonnegative(), int]);

export function mountTestClocks({ app }: Api, r: Resources): void {
  /**
   * POST /_emulator/advance {customer | subscription, to?}: runs that customer's clock to `to`
   * (Unix seconds) or, by default, to the next billing event of its subscriptions (trial
   * reminder, trial end, renewal, payment retry).
   */
  app.post("/_emulator/advance", async (c) => {
    const p = parseParams(z.object({ customer: str.optional(), subscription: str.optional(), to: seconds.optional() }).strict(), await readControlBody(c));
    let customer = p.customer;
    if (!customer && p.subscription) customer = String(r.subscriptions.get(p.subscription, "subscription").customer);
    if (!customer) throw invalidRequest("Missing required param: customer (or subscription).", { code: "parameter_missing", param: "customer" });
    const result = r.testClocks.advance(customer, p.to);
    return c.json({ object: "emulator.clock", customer, now: result.now, subscriptions: result.subscriptions });
  });
}
