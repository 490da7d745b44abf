import { describe, expect, it } from "vitest";
import {
  allowanceUsage,
  averageDailyConsumption,
  expiresSoonUnused,
  forecastBalance,
  nextExpiry,
  runsOutBeforeRenewal,
  type SubscriptionLot,
} from "./look-ahead";

const NOW = new Date("2026-12-01T12:00:00Z");
const inDays = (days: number) => new Date(NOW.getTime() + days * 86_400_000).toISOString();

function lot(overrides: Partial<SubscriptionLot> = {}): SubscriptionLot {
  return { subscription_id: "sub-1", granted: 1000, remaining: 1000, expires_at: inDays(10), ...overrides };
}

describe("recent consumption rate", () => {
  it("averages the last 7 UTC days, today included, and ignores older days", () => {
    const usage = [
      { day: "2026-12-01", credits: 70 },
      { day: "2026-11-25", credits: 70 }, // the 7th day back from today
      { day: "2026-11-24", credits: 1000 }, // the 8th: outside the window
    ];
    expect(averageDailyConsumption(usage, NOW)).toBe(20);
  });

  it("is zero when nothing was consumed, whatever nulls the view holds", () => {
    expect(averageDailyConsumption([], NOW)).toBe(0);
    expect(averageDailyConsumption([{ day: null, credits: 5 }, { day: "2026-12-01", credits: null }], NOW)).toBe(0);
  });

  it("can average over 30 days instead", () => {
    expect(averageDailyConsumption([{ day: "2026-11-02", credits: 300 }], NOW, 30)).toBe(10);
  });
});

describe("how long the balance lasts", () => {
  it("says nothing runs out when nothing is consumed, and every expiring lot expires whole", () => {
    const forecast = forecastBalance({ purchased: 500, lots: [lot({ remaining: 300 })], dailyRate: 0, precedence: "purchased_first", now: NOW });
    expect(forecast.daysLeft).toBeNull();
    expect(forecast.runsOutAt).toBeNull();
    expect(forecast.expiringUnused).toEqual([{ expiresAt: inDays(10), amount: 300, unused: 300 }]);
  });

  it("spends purchased credits first, so a subscription lot they shield expires partly unused", () => {
    // 100 a day: the 500 purchased last 5 days, then the lot has 5 days left before it expires: 500 of its 1,000 used.
    const forecast = forecastBalance({ purchased: 500, lots: [lot()], dailyRate: 100, precedence: "purchased_first", now: NOW });
    expect(forecast.expiringUnused).toEqual([{ expiresAt: inDays(10), amount: 1000, unused: 500 }]);
    expect(forecast.daysLeft).toBe(10);
  });

  it("with the expiring-first order, spends the lot before it expires, then the purchased credits", () => {
    const forecast = forecastBalance({ purchased: 500, lots: [lot()], dailyRate: 100, precedence: "expiring_first", now: NOW });
    expect(forecast.expiringUnused).toEqual([]);
    expect(forecast.daysLeft).toBe(15);
    expect(forecast.runsOutAt?.toISOString()).toBe(inDays(15));
  });

  it("wastes a lot whole when the credits ahead of it outlast its expiry", () => {
    const forecast = forecastBalance({ purchased: 5000, lots: [lot({ remaining: 200 })], dailyRate: 100, precedence: "purchased_first", now: NOW });
    expect(forecast.expiringUnused).toEqual([{ expiresAt: inDays(10), amount: 200, unused: 200 }]);
    expect(forecast.daysLeft).toBe(50);
  });

  it("ignores lots already past their expiry (not swept yet) and empty lots: they are not spendable", () => {
    const forecast = forecastBalance({
      purchased: 0,
      lots: [lot({ expires_at: inDays(-1) }), lot({ remaining: 0 }), lot({ remaining: 100, expires_at: inDays(3) })],
      dailyRate: 50,
      precedence: "purchased_first",
      now: NOW,
    });
    expect(forecast.daysLeft).toBe(2);
    expect(forecast.expiringUnused).toEqual([]);
  });

  it("runs out at once with nothing spendable (reserved credits are already out of the lots)", () => {
    const forecast = forecastBalance({ purchased: 0, lots: [], dailyRate: 10, precedence: "purchased_first", now: NOW });
    expect(forecast.daysLeft).toBe(0);
    expect(runsOutBeforeRenewal(forecast, inDays(5))).toBe(true);
  });

  it("spends subscription lots soonest expiry first", () => {
    const later = lot({ remaining: 100, expires_at: inDays(20) });
    const sooner = lot({ remaining: 100, expires_at: inDays(1) });
    // 50 a day: the sooner lot can only give 50 before it expires, then the later one lasts 2 more days.
    const forecast = forecastBalance({ purchased: 0, lots: [later, sooner], dailyRate: 50, precedence: "expiring_first", now: NOW });
    expect(forecast.expiringUnused).toEqual([{ expiresAt: inDays(1), amount: 100, unused: 50 }]);
    expect(forecast.daysLeft).toBe(3);
  });

  it("calls for credits only when the balance runs out before the renewal, or at all with no renewal", () => {
    const forecast = forecastBalance({ purchased: 100, lots: [], dailyRate: 10, precedence: "purchased_first", now: NOW });
    // 100 credits at 10 a day: 10 days.
    expect(runsOutBeforeRenewal(forecast, inDays(5))).toBe(false);
    expect(runsOutBeforeRenewal(forecast, inDays(20))).toBe(true);
    expect(runsOutBeforeRenewal(forecast, null)).toBe(true);
    const idle = forecastBalance({ purchased: 100, lots: [], dailyRate: 0, precedence: "purchased_first", now: NOW });
    expect(runsOutBeforeRenewal(idle, inDays(5))).toBe(false);
  });
});

describe("expiring soon", () => {
  it("warns within 7 days when some of the lot will be left", () => {
    expect(expiresSoonUnused({ expiresAt: inDays(6.9), amount: 1000, unused: 1 }, NOW)).toBe(true);
  });

  it("does not warn when the rate uses the lot up, when the expiry is further off, or already past", () => {
    expect(expiresSoonUnused({ expiresAt: inDays(3), amount: 1000, unused: 0 }, NOW)).toBe(false);
    expect(expiresSoonUnused({ expiresAt: inDays(8), amount: 1000, unused: 1000 }, NOW)).toBe(false);
    expect(expiresSoonUnused({ expiresAt: inDays(-1), amount: 1000, unused: 1000 }, NOW)).toBe(false);
    expect(expiresSoonUnused(undefined, NOW)).toBe(false);
  });
});

describe("subscription credits used this period", () => {
  const current = { id: "sub-1", current_period_start: inDays(-20) };

  it("counts the running lots of this subscription, an upgrade's prorated top-up included", () => {
    const usage = allowanceUsage([lot({ remaining: 400 }), lot({ granted: 300, remaining: 300 })], current, NOW);
    expect(usage).toEqual({ granted: 1300, used: 600, remaining: 700, fraction: 600 / 1300 });
  });

  it("leaves out other subscriptions' lots, expired lots (swept or not) and a lot that ended when this period began", () => {
    const usage = allowanceUsage(
      [
        lot({ subscription_id: "sub-old", remaining: 0 }),
        lot({ expires_at: inDays(-2), remaining: 10 }),
        // The trial's lot ends where the first paid period starts (a test clock can put that in the future).
        lot({ expires_at: inDays(5), granted: 500, remaining: 500 }),
        lot({ granted: 500, remaining: 125, expires_at: inDays(35) }),
      ],
      { id: "sub-1", current_period_start: inDays(5) },
      NOW,
    );
    expect(usage).toEqual({ granted: 500, used: 375, remaining: 125, fraction: 0.75 });
  });

  it("counts a trial's lot during the trial", () => {
    const trial = { id: "sub-1", current_period_start: inDays(-1) };
    expect(allowanceUsage([lot({ granted: 500, remaining: 450, expires_at: inDays(13) })], trial, NOW)?.used).toBe(50);
  });

  it("has no fraction for a plan without an allowance, and nothing without a subscription", () => {
    expect(allowanceUsage([], current, NOW)).toEqual({ granted: 0, used: 0, remaining: 0, fraction: null });
    expect(allowanceUsage([lot()], null, NOW)).toBeNull();
  });
});

describe("what expires next", () => {
  it("adds up the lots expiring soonest and what the forecast leaves of them", () => {
    const lots = [lot({ remaining: 300, expires_at: inDays(2) }), lot({ remaining: 200, expires_at: inDays(2) }), lot({ expires_at: inDays(30) })];
    const forecast = forecastBalance({ purchased: 1000, lots, dailyRate: 100, precedence: "purchased_first", now: NOW });
    const next = nextExpiry(lots, forecast, NOW);
    expect(next).toEqual({ expiresAt: inDays(2), amount: 500, unused: 500 });
    expect(expiresSoonUnused(next ?? undefined, NOW)).toBe(true);
  });

  it("does not warn when the expiring-first order spends the lot in time", () => {
    const lots = [lot({ remaining: 150, expires_at: inDays(2) })];
    const forecast = forecastBalance({ purchased: 1000, lots, dailyRate: 100, precedence: "expiring_first", now: NOW });
    const next = nextExpiry(lots, forecast, NOW);
    expect(next).toEqual({ expiresAt: inDays(2), amount: 150, unused: 0 });
    expect(expiresSoonUnused(next ?? undefined, NOW)).toBe(false);
  });

  it("is nothing when only purchased credits (which never expire) or expired lots are left", () => {
    const lots = [lot({ expires_at: inDays(-1) }), lot({ remaining: 0 })];
    const forecast = forecastBalance({ purchased: 1000, lots, dailyRate: 0, precedence: "purchased_first", now: NOW });
    expect(nextExpiry(lots, forecast, NOW)).toBeNull();
  });
});
