/**
 * The Billing Portal: sessions (create) and the hosted portal page, where a customer switches
 * plan or interval, cancels or resumes, replaces the card, reads invoices, and (emulator only)
 * runs the test clock to the next billing event.
 */
import type Stripe from "stripe";
import { z } from "zod";
import type { Api } from "../api.ts";
import { StripeApiError } from "../errors.ts";
import { expand, parseParams, str } from "../form.ts";
import { cardHelp, escapeHtml, formatDate, formatMoney, layout, priceText } from "../html.ts";
import { buildPortalSession } from "../objects.ts";
import { newId } from "../store.ts";
import type { Resources } from "./index.ts";
import { testCards } from "./payment-methods.ts";

export class BillingPortal {
  constructor(private readonly r: Resources) {}

  create(customerId: string, returnUrl: string | null): Stripe.BillingPortal.Session {
    const customer = this.r.customers.get(customerId, "customer");
    const id = newId("bps", 24);
    const session = buildPortalSession({ id, created: this.r.store.now(customer.id), customer: customer.id, returnUrl, url: `${this.r.baseUrl()}/portal/${id}` });
    this.r.store.portalSessions.set(id, session);
    return session;
  }
}

export function mountBillingPortal({ route, app }: Api, r: Resources): void {
  const { store } = r;

  route("POST", "/v1/billing_portal/sessions", (raw) => {
    const p = parseParams(z.object({ customer: str, return_url: str.optional(), expand }).strict(), raw);
    return r.billingPortal.create(p.customer, p.return_url ?? null);
  });

  // ----- the hosted portal page ----------------------------------------------------------------

  app.get("/portal/:id", (c) => {
    const session = store.portalSessions.get(c.req.param("id"));
    if (!session) return c.html(layout("Not found", `<h1>Portal session not found</h1>`), 404);
    const customerId = String(session.customer);
    const customer = store.customers.get(customerId);
    const notice = c.req.query("notice");
    const error = c.req.query("error");
    const subscriptions = [...store.subscriptions.values()].filter((s) => s.customer === customerId).reverse();
    const recurringPrices = [...store.prices.values()].filter((p) => p.active && p.recurring);
    // The card on file: the customer's default, else the one a live subscription is charged with.
    const liveSubscription = subscriptions.find((s) => s.status !== "canceled" && s.status !== "incomplete_expired");
    const card = customer ? r.paymentMethods.defaultFor(customer, liveSubscription) : null;
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
<p>${card?.card ? `${escapeHtml(card.card.brand)} ending in ${escapeHtml(card.card.last4)}, expires ${String(card.card.exp_month).padStart(2, "0")}/${card.card.exp_year}` : "None on file"}</p>
<form method="post" action="${action}"><input type="hidden" name="action" value="card">
<label for="card">New card number</label><input id="card" name="card_number" inputmode="numeric" required placeholder="4242 4242 4242 4242" aria-describedby="cards">
<div id="cards">${cardHelp(testCards)}</div><button type="submit">Replace card</button></form></section>
<section aria-labelledby="inv"><h2 id="inv">Invoices</h2>${invoiceRows ? `<table><thead><tr><th>Date</th><th>Number</th><th>Amount</th><th>Status</th></tr></thead><tbody>${invoiceRows}</tbody></table>` : "<p>None yet.</p>"}</section>
${session.return_url ? `<p><a href="${escapeHtml(session.return_url)}">Return</a></p>` : ""}`,
      ),
    );
  });

  app.post("/portal/:id", async (c) => {
    const session = store.portalSessions.get(c.req.param("id"));
    if (!session) return c.html(layout("Not found", `<h1>Portal session not found</h1>`), 404);
    const customerId = String(session.customer);
    const form = new URLSearchParams(await c.req.text());
    const back = (key: "notice" | "error", message: string) => c.redirect(`/portal/${session.id}?${key}=${encodeURIComponent(message)}`, 303);
    try {
      const action = form.get("action");
      if (action === "card") {
        const customer = r.customers.get(customerId);
        r.paymentMethods.replaceCard(customer, form.get("card_number") ?? "");
        return back("notice", "Card replaced.");
      }
      const subscription = r.subscriptions.get(form.get("subscription") ?? "", "subscription");
      if (subscription.customer !== customerId) return back("error", "That subscription belongs to another customer.");
      switch (action) {
        case "switch":
          r.subscriptions.changePrice(subscription, r.catalog.price(form.get("price") ?? ""), "create_prorations");
          return back("notice", "Plan changed.");
        case "cancel_at_period_end":
          r.subscriptions.setCancelAtPeriodEnd(subscription, true);
          return back("notice", "Subscription will cancel at the end of the period.");
        case "resume":
          r.subscriptions.setCancelAtPeriodEnd(subscription, false);
          return back("notice", "Subscription resumed.");
        case "cancel_now":
          r.subscriptions.cancelNow(subscription);
          return back("notice", "Subscription canceled.");
        case "advance": {
          const { now } = r.testClocks.advance(customerId);
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
}
