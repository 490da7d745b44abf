/**
 * The Overview's look-ahead arithmetic, kept pure so every edge case is a unit test: the
 * recent consumption rate, how long the spendable balance lasts at that rate, which
 * subscription credits will expire unused, and how much of this period's allowance is used.
 *
 * The forecast spends the balance the way `consume_credits` does: in the organization's
 * spending order (purchased first by default, or the soonest-expiring subscription lot
 * first), at a steady rate, with each subscription lot spendable only until it expires. So a
 * lot that purchased credits shield from use shows up as expiring unused, which is the very
 * thing the Overview warns about.
 */
import type { CreditPrecedence } from "../credits/api/credit-precedence";

const DAY_MS = 86_400_000;

/** The window the recent rate is averaged over; the Overview says so next to the forecast. */
export const RECENT_RATE_DAYS = 7;

/** How soon an expiry must be for the Overview to warn about credits it will take. */
export const EXPIRY_WARNING_DAYS = 7;

/** Credits consumed on one UTC day (a `credit_usage_daily` row; the view's columns are nullable). */
export interface UsageDay {
  day: string | null;
  credits: number | null;
}

/** A subscription credit lot as members read it (RLS) from `credit_lots`. */
export interface SubscriptionLot {
  subscription_id: string | null;
  granted: number;
  remaining: number;
  expires_at: string | null;
}

/** First instant (UTC midnight) of the day `daysBack` days before `now`'s UTC day. */
function utcDayStart(now: Date, daysBack: number): number {
  return Date.UTC(now.getUTCFullYear(), now.getUTCMonth(), now.getUTCDate() - daysBack);
}

/**
 * Average credits consumed per day over the last `days` UTC days, today included (so usage
 * that started today counts at once; a partial today makes the rate a little low, never high).
 */
export function averageDailyConsumption(usage: readonly UsageDay[], now: Date, days = RECENT_RATE_DAYS): number {
  if (days <= 0) return 0;
  const from = utcDayStart(now, days - 1);
  const to = utcDayStart(now, -1);
  let total = 0;
  for (const row of usage) {
    if (!row.day || !row.credits) continue;
    const day = Date.parse(`${row.day.slice(0, 10)}T00:00:00Z`);
    if (day >= from && day < to) total += row.credits;
  }
  return total / days;
}

/** What the forecast says about one subscription lot that will not be spent before it expires. */
export interface ExpiringUnused {
  expiresAt: string;
  /** Credits left in the lot now. */
  amount: number;
  /** Of those, how many the recent rate will not reach before the expiry. */
  unused: number;
}

export interface BalanceForecast {
  /** Days until the spendable balance is gone at the recent rate; null when nothing is being consumed. */
  daysLeft: number | null;
  /** When that is; null with daysLeft. */
  runsOutAt: Date | null;
  /** Subscription lots (soonest expiry first) that will expire with credits left in them. */
  expiringUnused: ExpiringUnused[];
}

/**
 * Spends `purchased` (never expires) and the subscription `lots` at `dailyRate` credits a day
 * from `now`, in the spending order, and says when the balance runs out and what expires
 * unused. Lots already past their expiry and empty lots are not spendable and are ignored.
 * `purchased` and the lots' `remaining` are what can be spent now: reserved credits are
 * already out of them (a reservation takes its credits out of the lots).
 */
export function forecastBalance({
  purchased,
  lots,
  dailyRate,
  precedence,
  now,
}: {
  purchased: number;
  lots: readonly SubscriptionLot[];
  dailyRate: number;
  precedence: CreditPrecedence;
  now: Date;
}): BalanceForecast {
  const expiring = lots
    .filter((lot) => lot.remaining > 0 && lot.expires_at !== null && Date.parse(lot.expires_at) > now.getTime())
    .map((lot) => ({ amount: lot.remaining, expiresAt: lot.expires_at as string, expiresInDays: (Date.parse(lot.expires_at as string) - now.getTime()) / DAY_MS }))
    .sort((a, b) => a.expiresInDays - b.expiresInDays);
  const pools: { amount: number; expiring?: (typeof expiring)[number] }[] = expiring.map((lot) => ({ amount: lot.amount, expiring: lot }));
  const purchasedPool = { amount: Math.max(0, purchased) };
  if (precedence === "purchased_first") pools.unshift(purchasedPool);
  else pools.push(purchasedPool);

  const expiringUnused: ExpiringUnused[] = [];
  if (dailyRate <= 0) {
    for (const lot of expiring) expiringUnused.push({ expiresAt: lot.expiresAt, amount: lot.amount, unused: lot.amount });
    return { daysLeft: null, runsOutAt: null, expiringUnused };
  }

  // Time (in days from now) at which the pool being spent starts to be spent.
  let day = 0;
  for (const pool of pools) {
    if (pool.amount === 0) continue;
    const lot = pool.expiring;
    if (!lot) {
      day += pool.amount / dailyRate;
      continue;
    }
    if (lot.expiresInDays <= day) {
      // Expires before the pools ahead of it in the order are spent.
      expiringUnused.push({ expiresAt: lot.expiresAt, amount: lot.amount, unused: lot.amount });
      continue;
    }
    const spendable = (lot.expiresInDays - day) * dailyRate;
    if (spendable >= lot.amount) {
      day += lot.amount / dailyRate;
    } else {
      // Credits are whole: what the rate reaches is rounded down, so "unused" is never understated.
      expiringUnused.push({ expiresAt: lot.expiresAt, amount: lot.amount, unused: lot.amount - Math.floor(spendable) });
      day = lot.expiresInDays;
    }
  }
  return { daysLeft: day, runsOutAt: new Date(now.getTime() + day * DAY_MS), expiringUnused };
}

/**
 * Whether a lot's expiry calls for a warning: it is within `withinDays` of `now` (and not
 * already past) and the recent rate will leave some of it unused.
 */
export function expiresSoonUnused(expiring: ExpiringUnused | undefined, now: Date, withinDays = EXPIRY_WARNING_DAYS): boolean {
  if (!expiring || expiring.unused <= 0) return false;
  const left = Date.parse(expiring.expiresAt) - now.getTime();
  return left > 0 && left <= withinDays * DAY_MS;
}

/** Whether the balance runs out before the subscription renews (or runs out at all when nothing renews). */
export function runsOutBeforeRenewal(forecast: BalanceForecast, renewsAt: string | null): boolean {
  if (!forecast.runsOutAt) return false;
  if (!renewsAt) return true;
  return forecast.runsOutAt.getTime() < Date.parse(renewsAt);
}

export interface AllowanceUsage {
  /** Subscription credits granted for the period in progress (the allowance, plus an upgrade's prorated top-up). */
  granted: number;
  /** Of those, no longer spendable: consumed, or held by a live reservation. */
  used: number;
  remaining: number;
  /** used / granted, 0..1; null when nothing was granted (a plan without an allowance). */
  fraction: number | null;
}

/**
 * This period's subscription credits against what was granted for it: the lots of the
 * subscription that are still spendable and run into its current period (the period's
 * allocation, an upgrade's prorated top-up, a trial's lot during the trial). A lot that ended
 * when the period began (the trial's, once the first paid period starts) or has expired, and
 * lots of other subscriptions, are not this period's. Null when there is no subscription.
 */
export function allowanceUsage(
  lots: readonly SubscriptionLot[],
  subscription: { id: string; current_period_start: string | null } | null,
  now: Date,
): AllowanceUsage | null {
  if (!subscription) return null;
  const periodStart = subscription.current_period_start ? Date.parse(subscription.current_period_start) : -Infinity;
  let granted = 0;
  let remaining = 0;
  for (const lot of lots) {
    if (lot.subscription_id !== subscription.id || !lot.expires_at) continue;
    const expiresAt = Date.parse(lot.expires_at);
    if (expiresAt <= now.getTime() || expiresAt <= periodStart) continue;
    granted += lot.granted;
    remaining += lot.remaining;
  }
  const used = granted - remaining;
  return { granted, used, remaining, fraction: granted > 0 ? used / granted : null };
}

/**
 * The soonest subscription expiry with credits left in it: when, how many credits, and how
 * many of those the forecast leaves unused (lots expiring at the same instant count together).
 */
export function nextExpiry(lots: readonly SubscriptionLot[], forecast: BalanceForecast, now: Date): ExpiringUnused | null {
  const live = lots.filter((lot) => lot.remaining > 0 && lot.expires_at !== null && Date.parse(lot.expires_at) > now.getTime());
  if (live.length === 0) return null;
  const soonest = Math.min(...live.map((lot) => Date.parse(lot.expires_at as string)));
  const at = (iso: string | null) => iso !== null && Date.parse(iso) === soonest;
  const first = live.find((lot) => at(lot.expires_at)) as SubscriptionLot;
  return {
    expiresAt: first.expires_at as string,
    amount: live.filter((lot) => at(lot.expires_at)).reduce((sum, lot) => sum + lot.remaining, 0),
    unused: forecast.expiringUnused.filter((lot) => at(lot.expiresAt)).reduce((sum, lot) => sum + lot.unused, 0),
  };
}
