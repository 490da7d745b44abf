/**
 * Payment methods: the test cards (typed on the hosted pages) and Stripe's test payment
 * method ids (`pm_card_visa`, ...), cards saved to customers (attach, detach, list), and the
 * customer's default card (`invoice_settings.default_payment_method`).
 */
import type Stripe from "stripe";
import { z } from "zod";
import { type Api, listOf } from "../api.ts";
import { cardDeclined, invalidRequest, resourceMissing } from "../errors.ts";
import { expand, oneOf, pagination, parseParams, str } from "../form.ts";
import { buildPaymentMethod } from "../objects.ts";
import { type CardBehavior, newId } from "../store.ts";
import { idOf } from "./customers.ts";
import type { Resources } from "./index.ts";

/** The test cards the hosted pages accept, and what each does (Stripe's numbers, Stripe's behaviour). */
export const testCards: Record<string, { behavior: CardBehavior; brand: string; description: string }> = {
  "4242424242424242": { behavior: "succeeds", brand: "visa", description: "pays" },
  "4000000000000002": { behavior: "declines", brand: "visa", description: "is declined (generic_decline)" },
  "4000000000000341": { behavior: "fails_off_session", brand: "visa", description: "pays here and is saved, then every later (off-session) charge is declined" },
  "4000002760003184": { behavior: "requires_authentication", brand: "visa", description: "pays here after authentication, then every off-session charge fails with authentication_required" },
};

/**
 * Stripe's test payment method ids for server-side code: each use makes a new PaymentMethod
 * for that card, as Stripe does.
 */
export const testPaymentMethods: Record<string, string> = {
  pm_card_visa: "4242424242424242",
  pm_card_visa_chargeDeclined: "4000000000000002",
  pm_card_chargeCustomerFail: "4000000000000341",
  pm_card_authenticationRequired: "4000002760003184",
};

/** Normalizes a typed card number (spaces and dashes allowed). */
export function normalizeCardNumber(input: string): string {
  return input.replace(/[\s-]/g, "");
}

/** The test card a typed number names; 400 `incorrect_number` for any other number. */
export function testCard(cardNumber: string): { number: string; behavior: CardBehavior; brand: string } {
  const number = normalizeCardNumber(cardNumber);
  const card = testCards[number];
  if (!card) {
    throw invalidRequest(`Your card number is incorrect. The emulator knows the test cards ${Object.keys(testCards).join(", ")}.`, {
      code: "incorrect_number",
      param: "card[number]",
    });
  }
  return { number, behavior: card.behavior, brand: card.brand };
}

export class PaymentMethods {
  constructor(private readonly r: Resources) {}

  get(id: string, param = "id"): Stripe.PaymentMethod {
    const found = this.r.store.paymentMethods.get(id);
    if (!found) throw resourceMissing("payment_method", id, param);
    return found;
  }

  /** A stored payment method, or a new one for a test payment method id (`pm_card_visa`). */
  resolve(idOrTestId: string, param: string): Stripe.PaymentMethod {
    const testNumber = testPaymentMethods[idOrTestId];
    return testNumber ? this.createCard(testNumber) : this.get(idOrTestId, param);
  }

  /** How the card behaves when charged. */
  behaviorOf(paymentMethod: Stripe.PaymentMethod): CardBehavior {
    return this.r.store.cardBehaviors.get(paymentMethod.id) ?? "succeeds";
  }

  /** A card payment method for a test card, attached to nobody yet. */
  createCard(cardNumber: string): Stripe.PaymentMethod {
    const card = testCard(cardNumber);
    const paymentMethod = buildPaymentMethod({
      id: newId("pm", 24),
      created: this.r.store.now(),
      customer: null,
      last4: card.number.slice(-4),
      brand: card.brand,
    });
    this.r.store.paymentMethods.set(paymentMethod.id, paymentMethod);
    this.r.store.cardBehaviors.set(paymentMethod.id, card.behavior);
    return paymentMethod;
  }

  /**
   * Saves a card to a customer: `payment_method.attached`. Stripe checks a card when it is
   * saved, so a card that declines is never attached (402 `card_declined`).
   */
  attach(paymentMethod: Stripe.PaymentMethod, customer: Stripe.Customer): Stripe.PaymentMethod {
    const owner = idOf(paymentMethod.customer);
    if (owner === customer.id) return paymentMethod;
    if (owner) throw invalidRequest("The payment method you provided has already been attached to a customer.", { code: "payment_method_unexpected_state", param: "payment_method" });
    if (this.behaviorOf(paymentMethod) === "declines") throw cardDeclined("generic_decline", "Your card was declined.");
    paymentMethod.customer = customer.id;
    this.r.store.emit("payment_method.attached", paymentMethod, { customer: customer.id });
    return paymentMethod;
  }

  /** Removes a card from its customer: `payment_method.detached`; it stops being the default. */
  detach(paymentMethod: Stripe.PaymentMethod): Stripe.PaymentMethod {
    const owner = idOf(paymentMethod.customer);
    if (!owner) throw invalidRequest("The payment method you provided is not attached to a customer so detachment is impossible.", { code: "payment_method_unexpected_state" });
    const customer = this.r.store.customers.get(owner);
    if (customer && idOf(customer.invoice_settings.default_payment_method) === paymentMethod.id) this.setDefault(customer, null);
    paymentMethod.customer = null;
    this.r.store.emit("payment_method.detached", paymentMethod, { customer: owner, previousAttributes: { customer: owner } });
    return paymentMethod;
  }

  /** Creates a card from a typed test card number and saves it to the customer. */
  saveCard(customer: Stripe.Customer, cardNumber: string): Stripe.PaymentMethod {
    const card = testCard(cardNumber);
    if (card.behavior === "declines") throw cardDeclined("generic_decline", "Your card was declined.");
    return this.attach(this.createCard(card.number), customer);
  }

  /** Sets (or with null clears) the customer's default card for invoices and off-session payments: `customer.updated`. */
  setDefault(customer: Stripe.Customer, paymentMethod: Stripe.PaymentMethod | null): void {
    const previous = customer.invoice_settings.default_payment_method;
    const next = paymentMethod?.id ?? null;
    if (idOf(previous) === next) return;
    customer.invoice_settings.default_payment_method = next;
    this.r.store.emit("customer.updated", customer, {
      customer: customer.id,
      previousAttributes: { invoice_settings: { default_payment_method: previous } },
    });
  }

  /** The card a subscription (or else its customer) is charged with, if any. */
  defaultFor(customer: Stripe.Customer, subscription?: Stripe.Subscription): Stripe.PaymentMethod | null {
    const id = (subscription && idOf(subscription.default_payment_method)) ?? idOf(customer.invoice_settings.default_payment_method);
    return id ? (this.r.store.paymentMethods.get(id) ?? null) : null;
  }

  /**
   * The portal's "replace card": the new card is saved and becomes the customer's and every
   * live subscription's default; a past-due subscription's open invoice is retried at once.
   */
  replaceCard(customer: Stripe.Customer, cardNumber: string): Stripe.PaymentMethod {
    const paymentMethod = this.saveCard(customer, cardNumber);
    this.setDefault(customer, paymentMethod);
    for (const subscription of this.r.store.subscriptions.values()) {
      if (idOf(subscription.customer) !== customer.id) continue;
      if (subscription.status === "canceled") continue;
      const previous = subscription.default_payment_method;
      subscription.default_payment_method = paymentMethod.id;
      this.r.subscriptions.emitUpdated(subscription, { default_payment_method: previous });
      if (subscription.status === "past_due" || subscription.status === "unpaid") this.r.subscriptions.retry(subscription);
    }
    return paymentMethod;
  }

  /** The cards saved to a customer, oldest first. */
  ofCustomer(customerId: string): Stripe.PaymentMethod[] {
    return [...this.r.store.paymentMethods.values()].filter((pm) => idOf(pm.customer) === customerId);
  }
}

const listParams = { ...pagination, type: oneOf(["card"]).optional() };

export function mountPaymentMethods({ route }: Api, r: Resources): void {
  route("GET", "/v1/payment_methods", (raw) => {
    const p = parseParams(z.object({ ...listParams, customer: str.optional() }).strict(), raw);
    if (p.customer === undefined) throw invalidRequest("The Stripe emulator lists the payment methods of one customer: pass customer.", { code: "parameter_missing", param: "customer" });
    r.customers.get(p.customer, "customer");
    return listOf(r.paymentMethods.ofCustomer(p.customer), "/v1/payment_methods", p);
  });

  route("GET", "/v1/customers/:customer/payment_methods", (raw, c) => {
    const p = parseParams(z.object(listParams).strict(), raw);
    const customer = r.customers.get(c.req.param("customer") ?? "", "customer");
    return listOf(r.paymentMethods.ofCustomer(customer.id), `/v1/customers/${customer.id}/payment_methods`, p);
  });

  route("GET", "/v1/payment_methods/:id", (raw, c) => {
    parseParams(z.object({ expand }).strict(), raw);
    return r.paymentMethods.get(c.req.param("id") ?? "");
  });

  route("POST", "/v1/payment_methods/:id/attach", (raw, c) => {
    const p = parseParams(z.object({ customer: str, expand }).strict(), raw);
    const customer = r.customers.get(p.customer, "customer");
    return r.paymentMethods.attach(r.paymentMethods.resolve(c.req.param("id") ?? "", "payment_method"), customer);
  });

  route("POST", "/v1/payment_methods/:id/detach", (raw, c) => {
    parseParams(z.object({ expand }).strict(), raw);
    return r.paymentMethods.detach(r.paymentMethods.get(c.req.param("id") ?? "", "payment_method"));
  });
}
