/**
 * Payment methods: the test cards the hosted pages accept, cards attached to customers (and
 * made their default), and retrieve.
 */
import type Stripe from "stripe";
import { z } from "zod";
import type { Api } from "../api.ts";
import { cardDeclined, invalidRequest, resourceMissing } from "../errors.ts";
import { expand, parseParams } from "../form.ts";
import { buildPaymentMethod } from "../objects.ts";
import { type CardBehavior, newId } from "../store.ts";
import { idOf } from "./customers.ts";
import type { Resources } from "./index.ts";

/** The test cards the hosted pages accept, and what each does. */
export const testCards: Record<string, { behavior: CardBehavior; brand: string; description: string }> = {
  "4242424242424242": { behavior: "succeeds", brand: "visa", description: "pays" },
  "4000000000000002": { behavior: "declines", brand: "visa", description: "is declined (generic_decline)" },
  "4000000000000341": { behavior: "fails_off_session", brand: "visa", description: "attaches, then every later (renewal) charge fails" },
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

  /** A card payment method for a test card, attached to nobody (a one-off payment's card). */
  createCard(cardNumber: string, customer: string | null): Stripe.PaymentMethod {
    const card = testCard(cardNumber);
    // Stripe checks a card when it is saved: a card that declines is never attached.
    if (customer && card.behavior === "declines") throw cardDeclined("generic_decline", "Your card was declined.");
    const paymentMethod = buildPaymentMethod({
      id: newId("pm", 24),
      created: this.r.store.now(customer),
      customer,
      last4: card.number.slice(-4),
      brand: card.brand,
    });
    this.r.store.paymentMethods.set(paymentMethod.id, paymentMethod);
    this.r.store.cardBehaviors.set(paymentMethod.id, card.behavior);
    return paymentMethod;
  }

  /** Creates a card payment method from a test card number and makes it the customer's default. */
  attachCard(customer: Stripe.Customer, cardNumber: string): Stripe.PaymentMethod {
    const paymentMethod = this.createCard(cardNumber, customer.id);
    this.r.store.emit("payment_method.attached", paymentMethod, { customer: customer.id });
    const previous = customer.invoice_settings.default_payment_method;
    customer.invoice_settings.default_payment_method = paymentMethod.id;
    this.r.store.emit("customer.updated", customer, {
      customer: customer.id,
      previousAttributes: { invoice_settings: { default_payment_method: previous } },
    });
    return paymentMethod;
  }

  /** The card a subscription (or else its customer) is charged with, if any. */
  defaultFor(customer: Stripe.Customer, subscription?: Stripe.Subscription): Stripe.PaymentMethod | null {
    const id = (subscription && idOf(subscription.default_payment_method)) ?? idOf(customer.invoice_settings.default_payment_method);
    return id ? (this.r.store.paymentMethods.get(id) ?? null) : null;
  }

  /** A new card replaces the default one; a past-due subscription's open invoice is retried at once. */
  replaceCard(customer: Stripe.Customer, cardNumber: string): Stripe.PaymentMethod {
    const paymentMethod = this.attachCard(customer, cardNumber);
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
}

export function mountPaymentMethods({ route }: Api, r: Resources): void {
  route("GET", "/v1/payment_methods/:id", (raw, c) => {
    parseParams(z.object({ expand }).strict(), raw);
    return r.paymentMethods.get(c.req.param("id") ?? "");
  });
}
