/**
 * Checkout: Sessions (create, retrieve, list, line items, expire), the hosted Checkout page
 * that pays one with a test card, and the emulator-only hook that does what the page's submit
 * does (`POST /_emulator/checkout/{id}/pay`). Paying creates what Stripe creates: the
 * customer, the card, then the subscription and its paid invoice, or the one-off payment.
 */
import type { Context } from "hono";
import type Stripe from "stripe";
import { z } from "zod";
import { type Api, type Json, listOf, mergeMetadata, metadataParam } from "../api.ts";
import { cardDeclined, invalidRequest, resourceMissing, StripeApiError, unsupported } from "../errors.ts";
import { bool, expand, int, oneOf, pagination, parseParams, readControlBody, str } from "../form.ts";
import { cardHelp, escapeHtml, formatMoney, layout, priceText } from "../html.ts";
import { buildCharge, buildCheckoutSession, buildCustomerDetails, buildPaymentIntent } from "../objects.ts";
import { type CheckoutPlan, newId, snapshot } from "../store.ts";
import { idOf } from "./customers.ts";
import type { Resources } from "./index.ts";
import { testCard, testCards } from "./payment-methods.ts";

/** Fills the `{CHECKOUT_SESSION_ID}` template variable Stripe substitutes in `success_url`. */
export function fillSessionId(url: string, sessionId: string): string {
  return url.replaceAll("{CHECKOUT_SESSION_ID}", sessionId);
}

export class Checkout {
  constructor(private readonly r: Resources) {}

  /** A Checkout Session by id; one whose `expires_at` has passed is expired first (on read). */
  find(id: string): Stripe.Checkout.Session | undefined {
    const session = this.r.store.checkoutSessions.get(id);
    if (session) this.expireIfDue(session);
    return session;
  }

  get(id: string, param = "session"): Stripe.Checkout.Session {
    const session = this.find(id);
    if (!session) throw resourceMissing("checkout.session", id, param);
    return session;
  }

  expireIfDue(session: Stripe.Checkout.Session): void {
    if (session.status === "open" && this.r.store.now(idOf(session.customer)) >= session.expires_at) this.markExpired(session);
  }

  private markExpired(session: Stripe.Checkout.Session): void {
    session.status = "expired";
    session.url = null;
    this.r.store.emit("checkout.session.expired", session, { customer: idOf(session.customer) });
  }

  expire(sessionId: string): Stripe.Checkout.Session {
    const session = this.get(sessionId);
    if (session.status !== "open") {
      throw invalidRequest(`Only Checkout Sessions with a status in ["open"] can be expired. This Checkout Session has a status of "${session.status ?? "null"}".`, { code: "checkout_session_not_open" });
    }
    this.markExpired(session);
    return session;
  }

  lineItems(session: Stripe.Checkout.Session): Stripe.ApiList<Stripe.LineItem> {
    const { store } = this.r;
    const plan = store.checkoutPlans.get(session.id);
    const price = plan ? store.prices.get(plan.price) : undefined;
    if (!plan || !price) return { object: "list", data: [], has_more: false, url: `/v1/checkout/sessions/${session.id}/line_items` };
    const product = store.products.get(String(price.product));
    const amount = (price.unit_amount ?? 0) * plan.quantity;
    return {
      object: "list",
      has_more: false,
      url: `/v1/checkout/sessions/${session.id}/line_items`,
      data: [{ id: `li_${session.id.slice(8, 32)}`, object: "item", adjustable_quantity: null, amount_discount: 0, amount_subtotal: amount, amount_tax: 0, amount_total: amount, currency: price.currency, description: product?.name ?? null, metadata: {}, price, quantity: plan.quantity }],
    };
  }

  /**
   * Pays a Checkout Session with a test card, as the hosted page's submit does. Throws a
   * `card_error` (402) when the card is declined; the session stays open then.
   */
  complete(sessionId: string, input: { cardNumber: string; email: string | null; saveCard?: boolean }): Stripe.Checkout.Session {
    const { store } = this.r;
    const session = this.find(sessionId);
    if (!session) throw resourceMissing("checkout.session", sessionId);
    if (session.status !== "open") throw invalidRequest(`This Checkout Session is ${session.status ?? "closed"} and can no longer be paid.`);
    const plan = store.checkoutPlans.get(sessionId);
    if (!plan) throw resourceMissing("checkout.session", sessionId);
    const card = testCard(input.cardNumber);
    if (card.behavior === "declines") throw cardDeclined("generic_decline", "Your card was declined.");

    const price = this.r.catalog.price(plan.price);
    const existing = idOf(session.customer);
    let customer: Stripe.Customer | null = existing ? this.r.customers.get(existing, "customer") : null;
    const email = session.customer_email ?? input.email;
    if (!customer && (session.mode === "subscription" || session.customer_creation === "always")) {
      customer = this.r.customers.create({ email, name: null, description: null, phone: null, metadata: {} });
    }
    if (session.mode === "subscription") {
      if (!customer) throw invalidRequest("A subscription needs a customer.");
      // A subscription's card is always saved: it pays every renewal.
      return this.completeSubscription(session, plan, price, customer, this.r.paymentMethods.saveCard(customer, card.number));
    }
    // mode: payment (credit packs). The card is saved to the customer only when the session
    // asked for it (setup_future_usage), or offered it and the customer accepted, as Stripe does.
    const save = customer !== null && (Boolean(plan.setupFutureUsage) || (Boolean(plan.offerToSaveCard) && input.saveCard === true));
    const usedCard = save && customer ? this.r.paymentMethods.saveCard(customer, card.number) : this.r.paymentMethods.createCard(card.number);
    const customerId = customer?.id ?? null;
    session.status = "complete";
    session.payment_status = "paid";
    session.customer = customerId;
    session.customer_details = customer
      ? buildCustomerDetails(customer)
      : { address: null, business_name: null, email, individual_name: null, name: null, phone: null, tax_exempt: "none", tax_ids: [] };
    // The PaymentIntent and Charge exist before the session completes (their ids are on it);
    // their events follow checkout.session.completed, the order packs are specified with.
    const paymentIntent = buildPaymentIntent({
      id: newId("pi", 24),
      created: store.now(customerId),
      amount: session.amount_total ?? 0,
      currency: session.currency ?? price.currency,
      customer: customerId,
      description: null,
      metadata: plan.paymentIntentMetadata,
    });
    paymentIntent.setup_future_usage = plan.setupFutureUsage ?? null;
    const charge = buildCharge({
      id: newId("ch", 24),
      created: paymentIntent.created,
      amount: paymentIntent.amount,
      currency: paymentIntent.currency,
      customer: customerId,
      paymentIntent: paymentIntent.id,
      paymentMethod: usedCard,
      succeeded: true,
      failure: null,
      receiptUrl: `${this.r.baseUrl()}/receipts/${paymentIntent.id}`,
    });
    paymentIntent.status = "succeeded";
    paymentIntent.amount_received = paymentIntent.amount;
    paymentIntent.payment_method = usedCard.id;
    paymentIntent.latest_charge = charge.id;
    store.paymentIntents.set(paymentIntent.id, paymentIntent);
    store.charges.set(charge.id, charge);
    session.payment_intent = paymentIntent.id;
    store.emit("checkout.session.completed", session, { customer: customerId });
    store.emit("payment_intent.succeeded", paymentIntent, { customer: customerId });
    store.emit("charge.succeeded", charge, { customer: customerId });
    return session;
  }

  private completeSubscription(
    session: Stripe.Checkout.Session,
    plan: CheckoutPlan,
    price: Stripe.Price,
    customer: Stripe.Customer,
    paymentMethod: Stripe.PaymentMethod,
  ): Stripe.Checkout.Session {
    const subscriptions = this.r.subscriptions;
    const subscription = subscriptions.createForCheckout({
      customer,
      price,
      quantity: plan.quantity,
      trialPeriodDays: plan.trialPeriodDays,
      metadata: plan.subscriptionMetadata,
      paymentMethod,
    });
    const trialing = subscription.status === "trialing";
    session.status = "complete";
    session.payment_status = trialing ? "no_payment_required" : "paid";
    session.customer = customer.id;
    session.customer_details = buildCustomerDetails(customer);
    session.subscription = subscription.id;
    this.r.store.emit("checkout.session.completed", session, { customer: customer.id });
    const invoice = subscriptions.startFirstPeriod(subscription);
    session.invoice = invoice.id;
    // The customer is present and the card was checked on the page: the first charge is on-session.
    const paid = this.r.invoices.collect(invoice, subscription, false);
    if (!paid) throw cardDeclined("generic_decline", "Your card was declined.");
    subscriptions.activate(subscription);
    return session;
  }
}

const lineItemParam = z
  .object({
    price: str,
    quantity: int.refine((n) => n >= 1, { message: "Invalid integer: quantity must be at least 1" }).optional(),
  })
  .strict();

export function mountCheckout({ route, app }: Api, r: Resources): void {
  const { store } = r;

  route("POST", "/v1/checkout/sessions", (raw) => {
    const p = parseParams(
      z
        .object({
          mode: oneOf(["payment", "setup", "subscription"]),
          line_items: z.array(lineItemParam).min(1, { message: "line_items must have at least one item" }),
          customer: str.optional(),
          customer_email: str.optional(),
          customer_creation: oneOf(["always", "if_required"]).optional(),
          client_reference_id: str.max(200).optional(),
          metadata: metadataParam,
          success_url: str.optional(),
          cancel_url: str.optional(),
          ui_mode: z.literal("hosted").optional(),
          payment_method_types: z.array(z.literal("card")).optional(),
          subscription_data: z.object({ trial_period_days: int.optional(), metadata: metadataParam, description: str.optional() }).strict().optional(),
          payment_intent_data: z.object({ metadata: metadataParam, description: str.optional(), setup_future_usage: oneOf(["off_session", "on_session"]).optional() }).strict().optional(),
          saved_payment_method_options: z.object({ payment_method_save: oneOf(["enabled", "disabled"]).optional() }).strict().optional(),
          expires_at: int.optional(), // checked below: 30 minutes to 24 hours ahead
          expand,
        })
        .strict(),
      raw,
    );
    if (p.mode === "setup") throw unsupported("Checkout Sessions in setup mode", "mode");
    if (p.line_items.length > 1) throw unsupported("more than one line item per Checkout Session", "line_items[1]");
    if (p.customer && p.customer_email) throw invalidRequest("You may only specify one of these parameters: customer, customer_email.", { code: "parameters_exclusive", param: "customer_email" });
    if (p.customer) r.customers.get(p.customer, "customer");
    if (p.mode === "subscription" && p.customer_creation) throw invalidRequest("`customer_creation` can only be used in `payment` mode.", { param: "customer_creation" });
    if (p.mode === "payment" && p.subscription_data) throw invalidRequest("You can only pass subscription_data in subscription mode.", { param: "subscription_data" });
    if (p.mode === "subscription" && p.payment_intent_data) throw invalidRequest("You can not pass `payment_intent_data` in `subscription` mode.", { param: "payment_intent_data" });
    const savesCard = Boolean(p.payment_intent_data?.setup_future_usage) || p.saved_payment_method_options?.payment_method_save === "enabled";
    if (p.mode === "payment" && savesCard && !p.customer && p.customer_creation !== "always") {
      // A saved card belongs to a customer: Stripe refuses to save one for a guest.
      throw invalidRequest("Saving the payment method needs a customer: pass `customer`, or `customer_creation=always`.", {
        param: p.payment_intent_data?.setup_future_usage ? "payment_intent_data[setup_future_usage]" : "saved_payment_method_options[payment_method_save]",
      });
    }
    const line = p.line_items[0] as { price: string; quantity?: number };
    const price = r.catalog.price(line.price, "line_items[0][price]");
    if (!price.active) throw invalidRequest(`The price specified is inactive. This field only accepts active prices.`, { param: "line_items[0][price]" });
    if (p.mode === "subscription" && !price.recurring) {
      throw invalidRequest("You must provide at least one recurring price in `subscription` mode when using prices.", { param: "line_items[0][price]" });
    }
    if (p.mode === "payment" && price.recurring) {
      throw invalidRequest("You specified `payment` mode but passed a recurring price. Either switch to `subscription` mode or use only one-time prices.", { param: "line_items[0][price]" });
    }
    const trial = p.subscription_data?.trial_period_days;
    if (trial !== undefined && trial < 1) throw invalidRequest("The trial period must be at least 1 day.", { param: "subscription_data[trial_period_days]" });
    const quantity = line.quantity ?? 1;
    const id = newId("cs_test", 58);
    const now = store.now(p.customer);
    if (p.expires_at !== undefined && (p.expires_at < now + 1800 || p.expires_at > now + 86_400)) {
      throw invalidRequest("The `expires_at` timestamp must be between 30 minutes and 24 hours from Checkout Session creation.", { param: "expires_at" });
    }
    const session = buildCheckoutSession({
      id,
      created: now,
      expiresAt: p.expires_at ?? now + 24 * 3600,
      mode: p.mode,
      customer: p.customer ?? null,
      customerEmail: p.customer_email ?? null,
      clientReferenceId: p.client_reference_id ?? null,
      metadata: mergeMetadata({}, p.metadata),
      successUrl: p.success_url ?? null,
      cancelUrl: p.cancel_url ?? null,
      currency: price.currency,
      amountTotal: (price.unit_amount ?? 0) * quantity,
      url: `${r.baseUrl()}/checkout/${id}`,
    });
    if (p.mode === "payment") session.customer_creation = p.customer ? null : (p.customer_creation ?? "if_required");
    store.checkoutSessions.set(id, session);
    store.checkoutPlans.set(id, {
      price: price.id,
      quantity,
      trialPeriodDays: trial ?? null,
      subscriptionMetadata: mergeMetadata({}, p.subscription_data?.metadata),
      paymentIntentMetadata: mergeMetadata({}, p.payment_intent_data?.metadata),
      setupFutureUsage: p.payment_intent_data?.setup_future_usage ?? null,
      offerToSaveCard: p.saved_payment_method_options?.payment_method_save === "enabled",
    });
    if (p.saved_payment_method_options) {
      session.saved_payment_method_options = { allow_redisplay_filters: ["always"], payment_method_remove: null, payment_method_save: p.saved_payment_method_options.payment_method_save ?? null };
    }
    return session;
  });

  route("GET", "/v1/checkout/sessions", (raw) => {
    const p = parseParams(z.object({ ...pagination, customer: str.optional(), subscription: str.optional(), payment_intent: str.optional(), status: oneOf(["open", "complete", "expired"]).optional() }).strict(), raw);
    for (const session of store.checkoutSessions.values()) r.checkout.expireIfDue(session);
    const all = [...store.checkoutSessions.values()].filter(
      (s) => (p.customer === undefined || s.customer === p.customer) && (p.subscription === undefined || s.subscription === p.subscription) && (p.payment_intent === undefined || s.payment_intent === p.payment_intent) && (p.status === undefined || s.status === p.status),
    );
    return listOf(all, "/v1/checkout/sessions", p);
  });

  route("GET", "/v1/checkout/sessions/:id", (raw, c) => {
    const p = parseParams(z.object({ expand }).strict(), raw);
    const session = r.checkout.get(c.req.param("id") ?? "");
    if (p.expand?.includes("line_items")) {
      // line_items is not stored on the session: expanding it means attaching the list.
      const copy = snapshot(session) as Json;
      copy.line_items = r.checkout.lineItems(session);
      return copy;
    }
    return session;
  });

  route("GET", "/v1/checkout/sessions/:id/line_items", (raw, c) => {
    parseParams(z.object({ ...pagination }).strict(), raw);
    return r.checkout.lineItems(r.checkout.get(c.req.param("id") ?? ""));
  });

  route("POST", "/v1/checkout/sessions/:id/expire", (raw, c) => {
    parseParams(z.object({ expand }).strict(), raw);
    return r.checkout.expire(c.req.param("id") ?? "");
  });

  // ----- the hosted Checkout page --------------------------------------------------------------

  function checkoutPage(c: Context, sessionId: string, error: string | null, status: 200 | 402 | 400 | 404 = 200) {
    const session = r.checkout.find(sessionId);
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
<div id="cards"><p>Test cards:</p>${cardHelp(testCards)}</div>
${session.mode === "payment" && plan.offerToSaveCard && !plan.setupFutureUsage ? `<label><input type="checkbox" name="save_card" value="true" style="width:auto"> Save my card for future purchases</label>` : ""}
${session.mode === "subscription" || plan.setupFutureUsage ? `<p><small>Your card will be saved for future payments.</small></p>` : ""}
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
      const session = r.checkout.complete(sessionId, { cardNumber: form.get("card_number") ?? "", email: form.get("email") || null, saveCard: form.get("save_card") === "true" });
      if (session.success_url) return c.redirect(fillSessionId(session.success_url, session.id), 303);
      return c.html(layout("Paid", `<h1>Thanks, payment complete</h1><p>Session <code>${escapeHtml(session.id)}</code>.</p>`));
    } catch (error) {
      if (error instanceof StripeApiError) return checkoutPage(c, sessionId, error.body.message, error.status === 402 ? 402 : 400);
      throw error;
    }
  });

  /**
   * POST /_emulator/checkout/:id/pay {card_number, email?, save_card?}: what the hosted page's
   * submit does (`save_card`: the customer ticked "save my card", where the session offers it).
   */
  app.post("/_emulator/checkout/:id/pay", async (c) => {
    const p = parseParams(z.object({ card_number: str, email: str.optional(), save_card: z.union([z.boolean(), bool]).optional() }).strict(), await readControlBody(c));
    const session = r.checkout.complete(c.req.param("id"), { cardNumber: p.card_number, email: p.email ?? null, saveCard: p.save_card ?? false });
    return c.json(session);
  });
}
