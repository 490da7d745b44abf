/**
 * Every amount of money and every credit figure the dashboard shows goes through here, so
 * a currency's minor unit and the wording of credits are decided in one place.
 */

// Stripe's zero-decimal currencies: amounts are already whole units. Intl agrees for most
// of them, but Stripe is the authority on what an amount in our tables means.
const STRIPE_ZERO_DECIMAL = new Set([
  "bif", "clp", "djf", "gnf", "jpy", "kmf", "krw", "mga", "pyg", "rwf", "ugx", "vnd", "vuv", "xaf", "xof", "xpf",
]);

/** Number of minor-unit digits of a currency (2 for usd, 0 for jpy, 3 for kwd). */
export function currencyMinorDigits(currency: string): number {
  const code = currency.toLowerCase();
  if (STRIPE_ZERO_DECIMAL.has(code)) return 0;
  return new Intl.NumberFormat("en", { style: "currency", currency: code.toUpperCase() }).resolvedOptions()
    .maximumFractionDigits ?? 2;
}

/** Formats an amount in the currency's minor unit (Stripe's convention): 1900 usd -> "$19.00". */
export function formatMoney(minorUnits: number, currency: string, locale?: string): string {
  const digits = currencyMinorDigits(currency);
  return new Intl.NumberFormat(locale, {
    style: "currency",
    currency: currency.toUpperCase(),
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  }).format(minorUnits / 10 ** digits);
}

/** "1,000 credits", "1 credit". */
export function formatCredits(credits: number, locale?: string): string {
  const figure = new Intl.NumberFormat(locale).format(credits);
  return `${figure} ${Math.abs(credits) === 1 ? "credit" : "credits"}`;
}

/** A ledger amount with its sign always shown: "+500", "−25". */
export function formatCreditDelta(credits: number, locale?: string): string {
  return new Intl.NumberFormat(locale, { signDisplay: "exceptZero" }).format(credits);
}

/** A bare credit figure for tables and charts: "12,000". */
export function formatCreditNumber(credits: number, locale?: string): string {
  return new Intl.NumberFormat(locale).format(credits);
}

/** A calendar date from an ISO timestamp: "Dec 1, 2026". */
export function formatDate(iso: string, locale?: string): string {
  return new Intl.DateTimeFormat(locale, { dateStyle: "medium" }).format(new Date(iso));
}

/** A calendar date as UTC sees it, for UTC periods (a spend limit's month): "Jan 1, 2027". */
export function formatDateUtc(iso: string, locale?: string): string {
  return new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeZone: "UTC" }).format(new Date(iso));
}

/** A UTC day as the usage views bucket them ("2026-11-23"): "Nov 23", or "Nov 23, 2026" with its year. */
export function formatDay(day: string, options: { year?: boolean; locale?: string } = {}): string {
  return new Intl.DateTimeFormat(options.locale, {
    month: "short",
    day: "numeric",
    ...(options.year ? { year: "numeric" } : {}),
    timeZone: "UTC",
  }).format(new Date(`${day}T00:00:00Z`));
}

/** Date and time from an ISO timestamp: "Dec 1, 2026, 3:04 PM". */
export function formatDateTime(iso: string, locale?: string): string {
  return new Intl.DateTimeFormat(locale, { dateStyle: "medium", timeStyle: "short" }).format(new Date(iso));
}

/** Turns a snake_case enum value into words: "past_due" -> "past due". */
export function humanize(value: string): string {
  return value.replace(/_/g, " ");
}
