/**
 * The Billing Portal: configurations (create, retrieve), sessions (create) and the hosted
 * portal page, where a customer cancels or resumes, replaces the card, reads invoices, switches
 * plan or interval when the session's configuration allows it
 * (`features.subscription_update.enabled`), and (emulator only) runs the test clock to the
 * next billing event. Sessions without a configuration get the emulator's default one, which
 * does not offer plan switching: the product changes plans in its own app.
 */
import type Stripe from "stripe";
import { z } from "zod";
import type { Api } from "../api.ts";
import { metadataParam } from "../api.ts";
import { resourceMissing, StripeApiError } from "../errors.ts";
import { bool, expand, oneOf, parseParams, str } from "../form.ts";
import { cardHelp, escapeHtml, formatDate, formatMoney, layout, priceText } from "../html.ts";
import { buildPortalSession } from "../objects.ts";
import { newId } from "../store.ts";
import type { Resources } from "./index.ts";
import { testCards } from "./payment-methods.ts";

/** The configuration a session gets when it names none: no plan switching. */
export const DEFAULT_PORTAL_CONFIGURATION = "bpc_emulator_default";

/** What the portal page offers, from a configuration's features. */
interface PortalFeatures {
  subscriptionUpdate: { enabled: boolean; prorationBehavior: "create_prorations" | "always_invoice" | "none" };
}

const configurationParams = z
  .object({
    features: z
      .object({
        subscription_update: z
          .object({
            enabled: bool,
            proration_behavior: oneOf(["create_prorations", "always_invoice", "none"]).optional(),
          })
          .strict()
          .optional(),
      })
      .strict(),
    default_return_url: str.optional(),
    metadata: metadataParam,
    expand,
  })
  .strict();

export class BillingPortal {
  constructor(private readonly r: Resources) {}

  create(customerId: string, returnUrl: string | null, configuration = DEFAULT_PORTAL_CONFIGURATION): Stripe.BillingPortal.Session {
    const customer = this.r.customers.get(customerId, "customer");
    if (configuration !== DEFAULT_PORTAL_CONFIGURATION) this.configuration(configuration, "configuration");
    const id = newId("bps", 24);
    const session = buildPortalSession({ id, created: this.r.store.now(customer.id), customer: customer.id, returnUrl, url: `${this.r.baseUrl()}/portal/${id}` });
    session.configuration = configuration;
    this.r.store.portalSessions.set(id, session);
    return session;
  }

  configuration(id: string, param = "id"): Stripe.BillingPortal.Configuration {
    const found = this.r.store.portalConfigurations.get(id);
    if (!found) throw resourceMissing("billing_portal.configuration", id, param);
    return found;
  }

  createConfiguration(p: z.output<typeof configurationParams>): Stripe.BillingPortal.Configuration {
    const now = this.r.store.now();
    const update = p.features.subscription_update;
    const configuration = {
      id: newId("bpc", 24),
      object: "billing_portal.configuration",
      active: true,
      application: null,
      business_profile: { headline: null, privacy_policy_url: null, terms_of_service_url: null },
      created: now,
      default_return_url: p.default_return_url ?? null,
      features: {
        subscription_update: {
          billing_cycle_anchor: null,
          default_allowed_updates: update?.enabled ? ["price"] : [],
          enabled: update?.enabled ?? false,
          products: null,
          proration_behavior: update?.proration_behavior ?? "create_prorations",
          schedule_at_period_end: { conditions: [] },
          trial_update_behavior: "end_trial",
        },
      },
      is_default: false,
      livemode: false,
      login_page: { enabled: false, url: null },
      metadata: p.metadata ?? {},
      name: null,
      updated: now,
    } as unknown as Stripe.BillingPortal.Configuration;
    this.r.store.portalConfigurations.set(configuration.id, configuration);
    return configuration;
  }

  /** What a session's page offers. */
  features(session: Stripe.BillingPortal.Session): PortalFeatures {
    const id = typeof session.configuration === "string" ? session.configuration : session.configuration.id;
    const found = id === DEFAULT_PORTAL_CONFIGURATION ? undefined : this.r.store.portalConfigurations.get(id);
    const update = found?.features.subscription_update;
    const behavior: string = update?.proration_behavior ?? "create_prorations";
    const prorationBehavior = behavior === "always_invoice" || behavior === "none" ? behavior : "create_prorations";
    return { subscriptionUpdate: { enabled: update?.enabled ?? false, prorationBehavior } };
  }
}

export function mountBillingPortal({ route, app }: Api, r: Resources): void {
  const { store } = r;

  route("POST", "/v1/billing_portal/sessions", (raw) => {
    const p = parseParams(z.object({ customer: str, return_url: str.optional(), configuration: str.optional(), expand }).strict(), raw);
    return r.billingPortal.create(p.customer, p.return_url ?? null, p.configuration);
  });

  route("POST", "/v1/billing_portal/configurations", (raw) => r.billingPortal.createConfiguration(parseParams(configurationParams, raw)));

  route("GET", "/v1/billing_portal/configurations/:id", (raw, c) => {
    parseParams(z.object({ expand }).strict(), raw);
    return r.billingPortal.configuration(c.req.param("id") ?? "");
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
    const features = r.billingPortal.features(session);
    const subscriptionSections = subscriptions
      .map((s) => {
        const item = s.items.data[0];
        if (!item) return "";
        const live = s.status !== "canceled" && s.status !== "incomplete_expired";
        const options = !features.subscriptionUpdate.enabled ? "" : recurringPrices
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
        case "switch": {
          const update = r.billingPortal.features(session).subscriptionUpdate;
          if (!update.enabled) return back("error", "This portal does not offer plan changes.");
          r.subscriptions.changePrice(subscription, r.catalog.price(form.get("price") ?? ""), update.prorationBehavior);
          return back("notice", "Plan changed.");
        }
        case "cancel_at_period_end": {
          // The portal lets a scheduled change go when the customer cancels, as Stripe's does.
          const schedule = r.subscriptionSchedules.of(subscription);
          if (schedule) r.subscriptionSchedules.release(schedule);
          r.subscriptions.setCancelAtPeriodEnd(subscription, true);
          return back("notice", "Subscription will cancel at the end of the period.");
        }
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
