/**
 * Payment Intents and the Charges they make. Every payment in the emulator goes through here:
 * invoices and Checkout, and PaymentIntents created through the API (on-session, or off-session
 * and confirmed at once, as an auto top-up charges a saved card). Create, confirm, cancel,
 * retrieve, list; the page where a customer authenticates a payment their bank wants
 * confirmed (3-D Secure); the receipt page a charge links to.
 */
import type { Context } from "hono";
import type Stripe from "stripe";
import { z } from "zod";
import { type Api, listOf, mergeMetadata, metadataParam } from "../api.ts";
import { cardError, invalidRequest, resourceMissing } from "../errors.ts";
import { bool, expand, int, oneOf, pagination, parseParams, readControlBody, str } from "../form.ts";
import { escapeHtml, formatMoney, layout } from "../html.ts";
import { buildCharge, buildPaymentIntent } from "../objects.ts";
import { newId, snapshot } from "../store.ts";
import { idOf } from "./customers.ts";
import type { Resources } from "./index.ts";

/**
 * Who is present when a card is charged: nobody (`off_session`: renewals, top-ups), the
 * customer in a flow that can ask their bank to authenticate (`on_session`), or the customer
 * who has just authenticated (Checkout's page, the authentication page).
 */
export type Presence = "off_session" | "on_session" | "authenticated";

/** How a charge attempt failed, as Stripe words it. */
interface Decline {
  code: "card_declined" | "authentication_required";
  declineCode: string;
  message: string;
}

const declines: Record<Decline["code"], Decline> = {
  card_declined: { code: "card_declined", declineCode: "generic_decline", message: "Your card was declined." },
  authentication_required: { code: "authentication_required", declineCode: "authentication_required", message: "Your card was declined. This transaction requires authentication." },
};

/** Statuses from which a PaymentIntent can still be canceled (Stripe's list). */
const cancelable = new Set(["requires_payment_method", "requires_capture", "requires_confirmation", "requires_action", "processing"]);

export class PaymentIntents {
  constructor(private readonly r: Resources) {}

  get(id: string, param = "id"): Stripe.PaymentIntent {
    const found = this.r.store.paymentIntents.get(id);
    if (!found) throw resourceMissing("payment_intent", id, param);
    return found;
  }

  charge(id: string, param = "id"): Stripe.Charge {
    const found = this.r.store.charges.get(id);
    if (!found) throw resourceMissing("charge", id, param);
    return found;
  }

  /** The hosted page where the customer authenticates this PaymentIntent. */
  authenticationUrl(paymentIntent: Stripe.PaymentIntent): string {
    return `${this.r.baseUrl()}/payment_intents/${paymentIntent.id}/authenticate`;
  }

  private create(args: { customer: string | null; amount: number; currency: string; description: string | null; metadata: Stripe.Metadata }): Stripe.PaymentIntent {
    const paymentIntent = buildPaymentIntent({ id: newId("pi", 24), created: this.r.store.now(args.customer), ...args });
    this.r.store.paymentIntents.set(paymentIntent.id, paymentIntent);
    return paymentIntent;
  }

  /**
   * Charges the PaymentIntent's card once, as Stripe's confirmation does: a Charge and
   * `charge.succeeded` + `payment_intent.succeeded`, or `charge.failed` +
   * `payment_intent.payment_failed` (status back to `requires_payment_method`, the error in
   * `last_payment_error`), or, when the bank wants the customer to authenticate and the
   * customer is there, `requires_action` + `payment_intent.requires_action` and no charge yet.
   */
  private attempt(paymentIntent: Stripe.PaymentIntent, paymentMethod: Stripe.PaymentMethod, presence: Presence): Decline | null {
    const { store } = this.r;
    const customerId = idOf(paymentIntent.customer);
    const behavior = this.r.paymentMethods.behaviorOf(paymentMethod);
    paymentIntent.payment_method = paymentMethod.id;
    paymentIntent.next_action = null;
    if (behavior === "requires_authentication" && presence === "on_session") {
      paymentIntent.status = "requires_action";
      paymentIntent.next_action = { type: "redirect_to_url", redirect_to_url: { url: this.authenticationUrl(paymentIntent), return_url: null } };
      store.emit("payment_intent.requires_action", paymentIntent, { customer: customerId });
      return null;
    }
    const decline =
      behavior === "declines" ? declines.card_declined
      : behavior === "fails_off_session" && presence === "off_session" ? declines.card_declined
      : behavior === "requires_authentication" && presence === "off_session" ? declines.authentication_required
      : null;
    const chargeId = newId("ch", 24);
    const charge = buildCharge({
      id: chargeId,
      created: store.now(customerId),
      amount: paymentIntent.amount,
      currency: paymentIntent.currency,
      customer: customerId,
      paymentIntent: paymentIntent.id,
      paymentMethod,
      succeeded: decline === null,
      failure: decline ? { code: decline.code, message: decline.message, declineCode: decline.declineCode } : null,
      receiptUrl: `${this.r.baseUrl()}/receipts/${chargeId}`,
    });
    store.charges.set(charge.id, charge);
    paymentIntent.latest_charge = charge.id;
    if (decline === null) {
      paymentIntent.status = "succeeded";
      paymentIntent.amount_received = paymentIntent.amount;
      paymentIntent.last_payment_error = null;
      store.emit("charge.succeeded", charge, { customer: customerId });
      store.emit("payment_intent.succeeded", paymentIntent, { customer: customerId });
      // setup_future_usage: a card paid with is saved to the customer, as Stripe does.
      const customer = customerId ? store.customers.get(customerId) : undefined;
      if (paymentIntent.setup_future_usage && customer && !paymentMethod.customer) this.r.paymentMethods.attach(paymentMethod, customer);
      return null;
    }
    paymentIntent.status = "requires_payment_method";
    paymentIntent.last_payment_error = {
      type: "card_error",
      charge: charge.id,
      code: decline.code,
      decline_code: decline.declineCode,
      doc_url: `https://docs.stripe.com/error-codes/${decline.code.replaceAll("_", "-")}`,
      message: decline.message,
      payment_method: paymentMethod,
    };
    store.emit("charge.failed", charge, { customer: customerId });
    store.emit("payment_intent.payment_failed", paymentIntent, { customer: customerId });
    return decline;
  }

  /**
   * Charges a card through a new PaymentIntent (an invoice's payment): no
   * `payment_intent.created`, as the invoice flows were specified. Returns the PaymentIntent;
   * its status says whether the money moved.
   */
  pay(args: {
    customer: Stripe.Customer | null;
    amount: number;
    currency: string;
    paymentMethod: Stripe.PaymentMethod | null;
    offSession: boolean;
    description: string | null;
    metadata: Stripe.Metadata;
  }): { paymentIntent: Stripe.PaymentIntent } {
    const customerId = args.customer?.id ?? null;
    const paymentIntent = this.create({ customer: customerId, amount: args.amount, currency: args.currency, description: args.description, metadata: args.metadata });
    if (!args.paymentMethod) {
      paymentIntent.last_payment_error = { type: "invalid_request_error", code: "payment_method_unexpected_state", message: "The customer has no default payment method." };
      this.r.store.emit("payment_intent.payment_failed", paymentIntent, { customer: customerId });
      return { paymentIntent };
    }
    // The first invoice of a Checkout is paid while the customer is on the page.
    this.attempt(paymentIntent, args.paymentMethod, args.offSession ? "off_session" : "authenticated");
    return { paymentIntent };
  }

  /** Confirms through the API; a decline is the 402 Stripe answers, carrying the PaymentIntent. */
  confirm(paymentIntent: Stripe.PaymentIntent, options: { paymentMethod?: Stripe.PaymentMethod; offSession: boolean; returnUrl: string | null }): Stripe.PaymentIntent {
    if (paymentIntent.status !== "requires_payment_method" && paymentIntent.status !== "requires_confirmation") {
      throw invalidRequest(`This PaymentIntent's status is ${paymentIntent.status}; it cannot be confirmed.`, { code: "payment_intent_unexpected_state" });
    }
    const paymentMethod = options.paymentMethod ?? (paymentIntent.payment_method ? this.r.paymentMethods.get(String(idOf(paymentIntent.payment_method)), "payment_method") : undefined);
    if (!paymentMethod) {
      throw invalidRequest("You cannot confirm this PaymentIntent because it's missing a payment method. Specify a payment method attached to this customer along with the customer ID.", { code: "payment_intent_unexpected_state", param: "payment_method" });
    }
    const decline = this.attempt(paymentIntent, paymentMethod, options.offSession ? "off_session" : "on_session");
    if (paymentIntent.next_action?.redirect_to_url) paymentIntent.next_action.redirect_to_url.return_url = options.returnUrl;
    if (decline) {
      throw cardError(decline.code, decline.declineCode, decline.message, {
        charge: String(paymentIntent.latest_charge),
        payment_intent: snapshot(paymentIntent),
        payment_method: snapshot(paymentMethod),
      });
    }
    return paymentIntent;
  }

  /**
   * The customer authenticates (or refuses to) on the hosted page: a PaymentIntent waiting for
   * it (`requires_action`), or one an off-session charge left with `authentication_required`.
   * Authenticated, the card is charged at once (`charge.succeeded`, `payment_intent.succeeded`);
   * refused, `payment_intent.payment_failed` with `payment_intent_authentication_failure`.
   */
  authenticate(paymentIntent: Stripe.PaymentIntent, outcome: "complete" | "fail"): Stripe.PaymentIntent {
    if (!this.awaitsAuthentication(paymentIntent)) {
      throw invalidRequest(`This PaymentIntent (status ${paymentIntent.status}) is not waiting for the customer to authenticate.`, { code: "payment_intent_unexpected_state" });
    }
    const paymentMethodId = idOf(paymentIntent.payment_method) ?? idOf(paymentIntent.last_payment_error?.payment_method ?? null);
    const paymentMethod = this.r.paymentMethods.get(paymentMethodId ?? "", "payment_method");
    if (outcome === "complete") {
      this.attempt(paymentIntent, paymentMethod, "authenticated");
      return paymentIntent;
    }
    paymentIntent.status = "requires_payment_method";
    paymentIntent.next_action = null;
    paymentIntent.last_payment_error = {
      type: "invalid_request_error",
      code: "payment_intent_authentication_failure",
      doc_url: "https://docs.stripe.com/error-codes/payment-intent-authentication-failure",
      message: "The provided PaymentMethod has failed authentication. You can provide payment_method_data or a new PaymentMethod to attempt to fulfill this PaymentIntent again.",
      payment_method: paymentMethod,
    };
    this.r.store.emit("payment_intent.payment_failed", paymentIntent, { customer: idOf(paymentIntent.customer) });
    return paymentIntent;
  }

  awaitsAuthentication(paymentIntent: Stripe.PaymentIntent): boolean {
    return paymentIntent.status === "requires_action" || (paymentIntent.status === "requires_payment_method" && paymentIntent.last_payment_error?.code === "authentication_required");
  }

  cancel(paymentIntent: Stripe.PaymentIntent, reason: Stripe.PaymentIntent.CancellationReason | null): Stripe.PaymentIntent {
    if (!cancelable.has(paymentIntent.status)) {
      throw invalidRequest(`You cannot cancel this PaymentIntent because it has a status of ${paymentIntent.status}. Only a PaymentIntent with one of the following statuses may be canceled: ${[...cancelable].join(", ")}.`, { code: "payment_intent_unexpected_state" });
    }
    paymentIntent.status = "canceled";
    paymentIntent.canceled_at = this.r.store.now(idOf(paymentIntent.customer));
    paymentIntent.cancellation_reason = reason;
    paymentIntent.next_action = null;
    this.r.store.emit("payment_intent.canceled", paymentIntent, { customer: idOf(paymentIntent.customer) });
    return paymentIntent;
  }

  /**
   * `POST /v1/payment_intents`: creates the PaymentIntent (`payment_intent.created`) and, with
   * `confirm`, charges it at once (see `confirm`).
   */
  createFromApi(p: {
    amount: number;
    currency: string;
    customer: Stripe.Customer | null;
    paymentMethod: Stripe.PaymentMethod | null;
    confirm: boolean;
    offSession: boolean;
    setupFutureUsage: "off_session" | "on_session" | null;
    description: string | null;
    metadata: Stripe.Metadata;
    returnUrl: string | null;
  }): Stripe.PaymentIntent {
    const customerId = p.customer?.id ?? null;
    const owner = p.paymentMethod ? idOf(p.paymentMethod.customer) : null;
    if (owner && owner !== customerId) {
      throw invalidRequest(
        customerId
          ? `The provided PaymentMethod ${p.paymentMethod?.id} belongs to another Customer; a PaymentIntent can only use a PaymentMethod attached to its own Customer.`
          : `The provided PaymentMethod ${p.paymentMethod?.id} is attached to a Customer: pass that Customer's ID as customer to use it.`,
        { param: "payment_method" },
      );
    }
    const paymentIntent = this.create({ customer: customerId, amount: p.amount, currency: p.currency, description: p.description, metadata: p.metadata });
    paymentIntent.setup_future_usage = p.setupFutureUsage;
    if (p.paymentMethod) {
      paymentIntent.payment_method = p.paymentMethod.id;
      paymentIntent.status = "requires_confirmation";
    }
    this.r.store.emit("payment_intent.created", paymentIntent, { customer: customerId });
    if (!p.confirm) return paymentIntent;
    return this.confirm(paymentIntent, { offSession: p.offSession, returnUrl: p.returnUrl });
  }
}

/** `off_session`: `true`, or Stripe's `one_off` / `recurring` (both mean "the customer is not here"). */
const offSessionParam = z.union([bool, oneOf(["one_off", "recurring"])]).optional().transform((v) => v === true || v === "one_off" || v === "recurring");

export function mountPaymentIntents({ route, app }: Api, r: Resources): void {
  const { store } = r;

  route("POST", "/v1/payment_intents", (raw) => {
    const p = parseParams(
      z
        .object({
          amount: int.refine((n) => n >= 1, { message: "Invalid integer: amount must be at least 1" }),
          currency: z.string().regex(/^[a-z]{3}$/, { message: "Invalid currency: must be a three-letter ISO code in lowercase" }),
          customer: str.optional(),
          payment_method: str.optional(),
          payment_method_types: z.array(z.literal("card")).optional(),
          automatic_payment_methods: z.object({ enabled: bool, allow_redirects: oneOf(["always", "never"]).optional() }).strict().optional(),
          confirm: bool.optional(),
          off_session: offSessionParam,
          setup_future_usage: oneOf(["off_session", "on_session"]).optional(),
          return_url: str.optional(),
          description: str.optional(),
          metadata: metadataParam,
          expand,
        })
        .strict(),
      raw,
    );
    if (p.off_session && !p.confirm) throw invalidRequest("You can only pass `off_session` when `confirm` is true.", { param: "off_session" });
    if (p.off_session && p.setup_future_usage === "on_session") throw invalidRequest("`setup_future_usage=on_session` cannot be used with `off_session`.", { param: "setup_future_usage" });
    if (p.currency === "usd" && p.amount < 50) throw invalidRequest("Amount must be at least $0.50 usd", { code: "amount_too_small", param: "amount" });
    return r.paymentIntents.createFromApi({
      amount: p.amount,
      currency: p.currency,
      customer: p.customer ? r.customers.get(p.customer, "customer") : null,
      paymentMethod: p.payment_method ? r.paymentMethods.resolve(p.payment_method, "payment_method") : null,
      confirm: p.confirm ?? false,
      offSession: p.off_session,
      setupFutureUsage: p.setup_future_usage ?? null,
      description: p.description ?? null,
      metadata: mergeMetadata({}, p.metadata),
      returnUrl: p.return_url ?? null,
    });
  });

  route("GET", "/v1/payment_intents", (raw) => {
    const p = parseParams(z.object({ ...pagination, customer: str.optional() }).strict(), raw);
    return listOf([...store.paymentIntents.values()].filter((x) => p.customer === undefined || x.customer === p.customer), "/v1/payment_intents", p);
  });

  route("GET", "/v1/payment_intents/:id", (raw, c) => {
    parseParams(z.object({ expand, client_secret: str.optional() }).strict(), raw);
    return r.paymentIntents.get(c.req.param("id") ?? "");
  });

  route("POST", "/v1/payment_intents/:id/confirm", (raw, c) => {
    const p = parseParams(z.object({ payment_method: str.optional(), off_session: offSessionParam, return_url: str.optional(), expand }).strict(), raw);
    const paymentIntent = r.paymentIntents.get(c.req.param("id") ?? "");
    const paymentMethod = p.payment_method ? r.paymentMethods.resolve(p.payment_method, "payment_method") : undefined;
    return r.paymentIntents.confirm(paymentIntent, { ...(paymentMethod ? { paymentMethod } : {}), offSession: p.off_session, returnUrl: p.return_url ?? null });
  });

  route("POST", "/v1/payment_intents/:id/cancel", (raw, c) => {
    const p = parseParams(z.object({ cancellation_reason: oneOf(["duplicate", "fraudulent", "requested_by_customer", "abandoned"]).optional(), expand }).strict(), raw);
    return r.paymentIntents.cancel(r.paymentIntents.get(c.req.param("id") ?? ""), p.cancellation_reason ?? null);
  });

  // ----- charges -------------------------------------------------------------------------------

  route("GET", "/v1/charges", (raw) => {
    const p = parseParams(z.object({ ...pagination, customer: str.optional(), payment_intent: str.optional() }).strict(), raw);
    return listOf([...store.charges.values()].filter((x) => (p.customer === undefined || x.customer === p.customer) && (p.payment_intent === undefined || x.payment_intent === p.payment_intent)), "/v1/charges", p);
  });

  route("GET", "/v1/charges/:id", (raw, c) => {
    parseParams(z.object({ expand }).strict(), raw);
    return r.paymentIntents.charge(c.req.param("id") ?? "");
  });

  // A charge's `receipt_url`.
  app.get("/receipts/:id", (c) => c.html(layout("Receipt", `<h1>Receipt</h1><p>Payment <code>${escapeHtml(c.req.param("id"))}</code> (test mode).</p>`)));

  // ----- authentication (3-D Secure) -------------------------------------------------------------

  function authenticationPage(c: Context, paymentIntent: Stripe.PaymentIntent | undefined) {
    if (!paymentIntent) return c.html(layout("Not found", "<h1>Payment not found</h1>"), 404);
    const amount = formatMoney(paymentIntent.amount, paymentIntent.currency);
    if (!r.paymentIntents.awaitsAuthentication(paymentIntent)) {
      return c.html(layout("Payment", `<h1>Nothing to authenticate</h1><p>This payment of ${amount} is <strong>${escapeHtml(paymentIntent.status)}</strong>.</p>`), 409);
    }
    const paymentMethodId = idOf(paymentIntent.payment_method) ?? idOf(paymentIntent.last_payment_error?.payment_method ?? null);
    const card = paymentMethodId ? store.paymentMethods.get(paymentMethodId)?.card : undefined;
    const action = `/payment_intents/${escapeHtml(paymentIntent.id)}/authenticate`;
    return c.html(
      layout(
        "Authenticate payment",
        `<h1>Confirm your payment</h1>
<p>Your bank asks you to confirm a payment of <strong>${amount}</strong>${card ? ` with the ${escapeHtml(card.brand)} card ending in ${escapeHtml(card.last4)}` : ""}.</p>
<p><small>Emulator: this stands in for the bank's 3-D Secure page.</small></p>
<form method="post" action="${action}"><button name="outcome" value="complete">Complete authentication</button><button name="outcome" value="fail">Fail authentication</button></form>`,
      ),
    );
  }

  app.get("/payment_intents/:id/authenticate", (c) => authenticationPage(c, store.paymentIntents.get(c.req.param("id"))));

  app.post("/payment_intents/:id/authenticate", async (c) => {
    const paymentIntent = store.paymentIntents.get(c.req.param("id"));
    if (!paymentIntent || !r.paymentIntents.awaitsAuthentication(paymentIntent)) return authenticationPage(c, paymentIntent);
    const form = new URLSearchParams(await c.req.text());
    const returnUrl = paymentIntent.next_action?.redirect_to_url?.return_url ?? null;
    r.paymentIntents.authenticate(paymentIntent, form.get("outcome") === "fail" ? "fail" : "complete");
    if (returnUrl) {
      const target = new URL(returnUrl);
      target.searchParams.set("payment_intent", paymentIntent.id);
      target.searchParams.set("payment_intent_client_secret", paymentIntent.client_secret ?? "");
      return c.redirect(target.toString(), 303);
    }
    const done = paymentIntent.status === "succeeded";
    return c.html(layout("Payment", `<h1>${done ? "Payment complete" : "Authentication failed"}</h1><p>${formatMoney(paymentIntent.amount, paymentIntent.currency)}: <strong>${escapeHtml(paymentIntent.status)}</strong>. You can close this page.</p>`));
  });

  /** POST /_emulator/payment_intents/:id/authenticate {outcome?: "complete" | "fail"}: what the page's buttons do. */
  app.post("/_emulator/payment_intents/:id/authenticate", async (c) => {
    const p = parseParams(z.object({ outcome: z.enum(["complete", "fail"]).optional() }).strict(), await readControlBody(c));
    const paymentIntent = r.paymentIntents.get(c.req.param("id"));
    return c.json(r.paymentIntents.authenticate(paymentIntent, p.outcome ?? "complete"));
  });
}
