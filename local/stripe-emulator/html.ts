/**
 * What the hosted pages share (Checkout, the Billing Portal, invoices, receipts, payment
 * authentication): one layout, escaping, money and date formatting, the test-card list. Plain
 * HTML forms, no scripts: every action is a POST answered with a redirect.
 */
import type Stripe from "stripe";
import type { Store } from "./store.ts";

export function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch] ?? ch);
}

/** Minor units to a display amount: 2900 usd -> "$29.00" (zero-decimal currencies not handled). */
export function formatMoney(amount: number, currency: string): string {
  return new Intl.NumberFormat("en-US", { style: "currency", currency: currency.toUpperCase() }).format(amount / 100);
}

export function formatDate(seconds: number | null): string {
  return seconds === null ? "—" : new Date(seconds * 1000).toISOString().slice(0, 10);
}

export function layout(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>${escapeHtml(title)} · Stripe emulator</title>
<style>
  body { font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 2rem auto; padding: 0 1rem; color: #1a1a1a; }
  .banner { background: #fff4d6; border: 1px solid #e6c35c; padding: .5rem .75rem; border-radius: .375rem; font-size: .875rem; }
  .error { background: #fde8e8; border: 1px solid #d64545; padding: .5rem .75rem; border-radius: .375rem; }
  .notice { background: #e8f5e9; border: 1px solid #4caf50; padding: .5rem .75rem; border-radius: .375rem; }
  section { border: 1px solid #ddd; border-radius: .5rem; padding: 1rem; margin: 1rem 0; }
  label { display: block; margin: .75rem 0 .25rem; font-weight: 600; }
  input, select { font: inherit; padding: .4rem; width: 100%; box-sizing: border-box; }
  button { font: inherit; padding: .5rem 1rem; margin: .5rem .5rem 0 0; cursor: pointer; }
  form.inline { display: inline; }
  table { border-collapse: collapse; width: 100%; }
  td, th { text-align: left; padding: .25rem .5rem; border-bottom: 1px solid #eee; }
</style>
</head>
<body>
<p class="banner" role="note">Stripe emulator: test mode, no real money moves.</p>
${body}
</body>
</html>`;
}

/** `Pro: $29.00 per month`, escaped for HTML. */
export function priceText(store: Store, price: Stripe.Price, quantity = 1): string {
  const product = store.products.get(String(price.product));
  const name = product?.name ?? String(price.product);
  const amount = formatMoney((price.unit_amount ?? 0) * quantity, price.currency);
  const every = price.recurring ? ` per ${price.recurring.interval_count > 1 ? `${price.recurring.interval_count} ` : ""}${price.recurring.interval}${price.recurring.interval_count > 1 ? "s" : ""}` : "";
  return `${escapeHtml(name)}${quantity > 1 ? ` × ${quantity}` : ""}: ${amount}${every}`;
}

/** The test cards as a list, for the pages that take a card number. */
export function cardHelp(cards: Record<string, { description: string }>): string {
  return `<ul>${Object.entries(cards)
    .map(([number, card]) => `<li><code>${number.replace(/(\d{4})(?=\d)/g, "$1 ")}</code> ${escapeHtml(card.description)}</li>`)
    .join("")}</ul>`;
}
