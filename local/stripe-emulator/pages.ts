/**
 * The hosted pages a user clicks through: Checkout (pay with a test card), the Billing Portal
 * (switch plan or interval, cancel, resume, replace the card, and an emulator-only button that
 * runs the test clock to the next renewal), and minimal invoice and receipt pages. Plain HTML
 * forms, no scripts: every action is a POST answered with a redirect.
 */
import type { Context, Hono } from "hono";
import type Stripe from "stripe";
import type { Billing } from "./billing.ts";
import { testCards } from "./billing.ts";
import { StripeApiError } from "./errors.ts";
import type { Store } from "./store.ts";

export interface PagesContext {
  store: Store;
  billing: Billing;
}

function escapeHtml(value: string): string {
  return value.replace(/[&<>"']/g, (ch) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[ch] ?? ch);
}

/** Minor units to a display amount: 2900 usd -> "$29.00" (zero-decimal currencies not handled). */
export function formatMoney(amount: number, currency: string): string {
  return new Intl.NumberFormat("en-US", { style: "currency", currency: currency.toUpperCase() }).format(amount / 100);
}

function formatDate(seconds: number | null): string {
  return seconds === null ? "—" : new Date(seconds * 1000).toISOString().slice(0, 10);
}

function layout(title: string, body: string): string {
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

function priceText(store: Store, price: Stripe.Price, quantity = 1): string {
  const product = store.products.get(String(price.product));
  const name = product?.name ?? String(price.product);
  const amount = formatMoney((price.unit_amount ?? 0) * quantity, price.currency);
  const every = price.recurring ? ` per ${price.recurring.interval_count > 1 ? `${price.recurring.interval_count} ` : ""}${price.recurring.interval}${price.recurring.interval_count > 1 ? "s" : ""}` : "";
  return `${escapeHtml(name)}${quantity > 1 ? ` × ${quantity}` : ""}: ${amount}${every}`;
}

function cardHelp(): string {
  return `<ul>${Object.entries(testCards)
    .map(([number, card]) => `<li><code>${number.replace(/(\d{4})(?=\d)/g, "$1 ")}</code> ${escapeHtml(card.description)}</li>`)
    .join("")}</ul>`;
}

/** Adds the hosted pages to the app. */
export function mountPages(app: Hono, ctx: PagesContext): void {
  const { store, billing } = ctx;

  // ----- Checkout ------------------------------------------------------------------------------

  function checkoutPage(c: Context, sessionId: string, error: string | null, status: 200 | 402 | 400 | 404 = 200) {
    const session = billing.findCheckoutSession(sessionId);
    const plan = store.checkoutPlans.get(sessionId);
    if (!session || !plan) return c.html(layout("Not found", `<h1>Checkout session not found</h1>`), 404);
    const price = store.prices.get(plan.price);
    if (session.status !== "open") {
      return c.html(layout("Checkout closed", `<h1>This checkout is ${escapeHtml(session.status ?? "closed")}</h1>${session.success_url && session.status === "complete" ? `<p><a href="${escapeHtml(fillSessionId(session.success_url, session.id))}">Continue</a></p>` : ""}`), 410);
    }
    const customer = typeof session.customer === "string" ? store.customers.get(session.customer) : undefined;
    const email = session.customer_email ?? customer?.email ?? "";
    const trial = plan.trialPeriodDays ? `<p>Includes a ${plan.trialPeriodDays}-day free trial: nothing is charged today.</p>` : "";
    return c.html(
      layout(
        "Checkout",
        `<h1>${session.mode === "subscription" ? "Subscribe" : "Pay"}</h1>
<section aria-labelledby="summary"><h2 id="summary">Order summary</h2>
<p>${price ? priceText(store, price, plan.quantity) : ""}</p>${trial}
<p><strong>Total due today: ${formatMoney(plan.trialPeriodDays ? 0 : (session.amount_total ?? 0), session.currency ?? "usd")}</strong></p></section>
${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ""}
<form method="post" action="/checkout/${escapeHtml(session.id)}">
<label for="email">Email</label>
<input id="email" name="email" type="email" autocomplete="email" value="${escapeHtml(email)}" ${session.customer_email || customer ? "readonly" : "required"}>
<label for="card">Card number</label>
<input id="card" name="card_number" inputmode="numeric" autocomplete="cc-number" required placeholder="4242 4242 4242 4242" aria-describedby="cards">
<div id="cards"><p>Test cards:</p>${cardHelp()}</div>
<button type="submit">${session.mode === "subscription" ? (plan.trialPeriodDays ? "Start trial" : "Subscribe") : "Pay"}</button>
${session.cancel_url ? `<a href="${escapeHtml(session.cancel_url)}">Cancel and go back</a>` : ""}
</form>`,
      ),
      status,
    );
  }

  app.get("/checkout/:id", (c) => checkoutPage(c, c.req.param("id"), null));

  app.post("/checkout/:id", async (c) => {
    const sessionId = c.req.param("id");
    const form = new URLSearchParams(await c.req.text());
    try {
      const session = billing.completeCheckout(sessionId, { cardNumber: form.get("card_number") ?? "", email: form.get("email") || null });
      if (session.success_url) return c.redirect(fillSessionId(session.success_url, session.id), 303);
      return c.html(layout("Paid", `<h1>Thanks, payment complete</h1><p>Session <code>${escapeHtml(session.id)}</code>.</p>`));
    } catch (error) {
      if (error instanceof StripeApiError) return checkoutPage(c, sessionId, error.body.message, error.status === 402 ? 402 : 400);
      throw error;
    }
  });

  // ----- Billing portal -------------------------------------------------------------------------

  function portalSession(id: string): Stripe.BillingPortal.Session | undefined {
    return store.portalSessions.get(id);
  }

  app.get("/portal/:id", (c) => {
    const session = portalSession(c.req.param("id"));
    if (!session) return c.html(layout("Not found", `<h1>Portal session not found</h1>`), 404);
    const customerId = String(session.customer);
    const customer = store.customers.get(customerId);
    const notice = c.req.query("notice");
    const error = c.req.query("error");
    const subscriptions = [...store.subscriptions.values()].filter((s) => s.customer === customerId).reverse();
    const recurringPrices = [...store.prices.values()].filter((p) => p.active && p.recurring);
    const card = customer?.invoice_settings.default_payment_method ? store.paymentMethods.get(String(customer.invoice_settings.default_payment_method)) : undefined;
    const invoices = [...store.invoices.values()].filter((i) => i.customer === customerId).reverse();
    const action = `/portal/${escapeHtml(session.id)}`;
    const subscriptionSections = subscriptions
      .map((s) => {
        const item = s.items.data[0];
        if (!item) return "";
        const live = s.status !== "canceled" && s.status !== "incomplete_expired";
        const options = recurringPrices
          .filter((p) => p.id !== item.price.id)
          .map((p) => `<option value="${escapeHtml(p.id)}">${priceText(store, p)}</option>`)
          .join("");
        return `<section aria-label="Subscription ${escapeHtml(s.id)}">
<h2>${priceText(store, item.price, item.quantity ?? 1)}</h2>
<p>Status: <strong>${escapeHtml(s.status)}</strong>${s.cancel_at_period_end ? ` · cancels on ${formatDate(item.current_period_end)}` : ""}</p>
<p>Current period: ${formatDate(item.current_period_start)} to ${formatDate(item.current_period_end)}${s.trial_end && s.status === "trialing" ? ` · trial ends ${formatDate(s.trial_end)}` : ""}</p>
${
  live
    ? `${options ? `<form method="post" action="${action}"><input type="hidden" name="subscription" value="${escapeHtml(s.id)}"><input type="hidden" name="action" value="switch"><label for="price-${escapeHtml(s.id)}">Switch plan or interval</label><select id="price-${escapeHtml(s.id)}" name="price">${options}</select><button type="submit">Switch</button></form>` : ""}
<form method="post" action="${action}" class="inline"><input type="hidden" name="subscription" value="${escapeHtml(s.id)}">
${s.cancel_at_period_end ? `<button name="action" value="resume">Resume subscription</button>` : `<button name="action" value="cancel_at_period_end">Cancel at period end</button>`}
<button name="action" value="cancel_now">Cancel now</button>
<button name="action" value="advance" title="Emulator only: run this customer's test clock to the next renewal, trial end or payment retry">Emulator: advance to next billing event</button>
</form>`
    : ""
}
</section>`;
      })
      .join("");
    const invoiceRows = invoices
      .map((i) => `<tr><td>${formatDate(i.created)}</td><td>${escapeHtml(i.number ?? i.id)}</td><td>${formatMoney(i.amount_due, i.currency)}</td><td>${escapeHtml(i.status ?? "")}</td></tr>`)
      .join("");
    return c.html(
      layout(
        "Billing",
        `<h1>Billing${customer?.email ? ` for ${escapeHtml(customer.email)}` : ""}</h1>
${notice ? `<p class="notice" role="status">${escapeHtml(notice)}</p>` : ""}
${error ? `<p class="error" role="alert">${escapeHtml(error)}</p>` : ""}
${subscriptionSections || "<p>No subscriptions.</p>"}
<p><small>Emulator clock for this customer: ${new Date(store.now(customerId) * 1000).toISOString().slice(0, 16).replace("T", " ")} UTC</small></p>
<section aria-labelledby="pm"><h2 id="pm">Payment method</h2>
<p>${card?.card ? `${escapeHtml(card.card.brand)} ending in ${escapeHtml(card.card.last4)}` : "None on file"}</p>
<form method="post" action="${action}"><input type="hidden" name="action" value="card">
<label for="card">New card number</label><input id="card" name="card_number" inputmode="numeric" required placeholder="4242 4242 4242 4242" aria-describedby="cards">
<div id="cards">${cardHelp()}</div><button type="submit">Replace card</button></form></section>
<section aria-labelledby="inv"><h2 id="inv">Invoices</h2>${invoiceRows ? `<table><thead><tr><th>Date</th><th>Number</th><th>Amount</th><th>Status</th></tr></thead><tbody>${invoiceRows}</tbody></table>` : "<p>None yet.</p>"}</section>
${session.return_url ? `<p><a href="${escapeHtml(session.return_url)}">Return</a></p>` : ""}`,
      ),
    );
  });

  app.post("/portal/:id", async (c) => {
    const session = portalSession(c.req.param("id"));
    if (!session) return c.html(layout("Not found", `<h1>Portal session not found</h1>`), 404);
    const customerId = String(session.customer);
    const form = new URLSearchParams(await c.req.text());
    const back = (key: "notice" | "error", message: string) => c.redirect(`/portal/${session.id}?${key}=${encodeURIComponent(message)}`, 303);
    try {
      const action = form.get("action");
      if (action === "card") {
        const customer = billing.customer(customerId);
        billing.replaceCard(customer, form.get("card_number") ?? "");
        return back("notice", "Card replaced.");
      }
      const subscription = billing.subscription(form.get("subscription") ?? "", "subscription");
      if (subscription.customer !== customerId) return back("error", "That subscription belongs to another customer.");
      switch (action) {
        case "switch":
          billing.changePrice(subscription, billing.price(form.get("price") ?? ""), "create_prorations");
          return back("notice", "Plan changed.");
        case "cancel_at_period_end":
          billing.setCancelAtPeriodEnd(subscription, true);
          return back("notice", "Subscription will cancel at the end of the period.");
        case "resume":
          billing.setCancelAtPeriodEnd(subscription, false);
          return back("notice", "Subscription resumed.");
        case "cancel_now":
          billing.cancelNow(subscription);
          return back("notice", "Subscription canceled.");
        case "advance": {
          const { now } = billing.advance(customerId);
          return back("notice", `Test clock advanced to ${new Date(now * 1000).toISOString()}.`);
        }
        default:
          return back("error", "Unknown action.");
      }
    } catch (error) {
      if (error instanceof StripeApiError) return back("error", error.body.message);
      throw error;
    }
  });

  // ----- invoice and receipt pages -----------------------------------------------------------------

  app.get("/invoices/:id/pdf", (c) => c.redirect(`/invoices/${c.req.param("id")}`, 302));
  app.get("/invoices/:id", (c) => {
    const invoice = store.invoices.get(c.req.param("id"));
    if (!invoice) return c.html(layout("Not found", "<h1>Invoice not found</h1>"), 404);
    const rows = invoice.lines.data.map((l) => `<tr><td>${escapeHtml(l.description ?? "")}</td><td>${formatDate(l.period.start)} to ${formatDate(l.period.end)}</td><td>${formatMoney(l.amount, l.currency)}</td></tr>`).join("");
    return c.html(
      layout(
        `Invoice ${invoice.number ?? invoice.id}`,
        `<h1>Invoice ${escapeHtml(invoice.number ?? invoice.id)}</h1><p>Status: <strong>${escapeHtml(invoice.status ?? "")}</strong></p><table><tbody>${rows}</tbody></table><p>Amount due: ${formatMoney(invoice.amount_due, invoice.currency)} · paid: ${formatMoney(invoice.amount_paid, invoice.currency)}</p>`,
      ),
    );
  });
  app.get("/receipts/:id", (c) => c.html(layout("Receipt", `<h1>Receipt</h1><p>Payment <code>${escapeHtml(c.req.param("id"))}</code> (test mode).</p>`)));
}

/** Fills the `{CHECKOUT_SESSION_ID}` template variable Stripe substitutes in `success_url`. */
export function fillSessionId(url: string, sessionId: string): string {
  return url.replaceAll("{CHECKOUT_SESSION_ID}", sessionId);
}
