/**
 * Payment Intents and the Charges they make: charging a card (how every payment in the
 * emulator moves money), retrieve and list, and the receipt page a charge links to.
 */
import type Stripe from "stripe";
import { z } from "zod";
import { type Api, listOf } from "../api.ts";
import { resourceMissing } from "../errors.ts";
import { expand, pagination, parseParams, str } from "../form.ts";
import { escapeHtml, layout } from "../html.ts";
import { buildCharge, buildPaymentIntent } from "../objects.ts";
import { newId } from "../store.ts";
import type { Resources } from "./index.ts";

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

  /**
   * Charges a card through a new PaymentIntent and Charge, emitting their events. Returns the
   * PaymentIntent; its status says whether the money moved.
   */
  pay(args: {
    customer: Stripe.Customer | null;
    amount: number;
    currency: string;
    paymentMethod: Stripe.PaymentMethod | null;
    offSession: boolean;
    description: string | null;
    metadata: Stripe.Metadata;
  }): { paymentIntent: Stripe.PaymentIntent; charge: Stripe.Charge | null } {
    const { store } = this.r;
    const customerId = args.customer?.id ?? null;
    const now = store.now(customerId);
    const paymentIntent = buildPaymentIntent({
      id: newId("pi", 24),
      created: now,
      amount: args.amount,
      currency: args.currency,
      customer: customerId,
      description: args.description,
      metadata: args.metadata,
    });
    store.paymentIntents.set(paymentIntent.id, paymentIntent);
    const paymentMethod = args.paymentMethod;
    if (!paymentMethod) {
      paymentIntent.last_payment_error = {
        type: "invalid_request_error",
        code: "payment_method_unexpected_state",
        message: "The customer has no default payment method.",
      };
      store.emit("payment_intent.payment_failed", paymentIntent, { customer: customerId });
      return { paymentIntent, charge: null };
    }
    const behavior = store.cardBehaviors.get(paymentMethod.id) ?? "succeeds";
    const succeeded = behavior === "succeeds" || (behavior === "fails_off_session" && !args.offSession);
    const chargeId = newId("ch", 24);
    const charge = buildCharge({
      id: chargeId,
      created: now,
      amount: args.amount,
      currency: args.currency,
      customer: customerId,
      paymentIntent: paymentIntent.id,
      paymentMethod,
      succeeded,
      failure: succeeded ? null : { code: "card_declined", message: "Your card was declined.", declineCode: "generic_decline" },
      receiptUrl: `${this.r.baseUrl()}/receipts/${chargeId}`,
    });
    store.charges.set(charge.id, charge);
    paymentIntent.payment_method = paymentMethod.id;
    paymentIntent.latest_charge = charge.id;
    if (succeeded) {
      paymentIntent.status = "succeeded";
      paymentIntent.amount_received = args.amount;
      store.emit("charge.succeeded", charge, { customer: customerId });
      store.emit("payment_intent.succeeded", paymentIntent, { customer: customerId });
    } else {
      paymentIntent.status = "requires_payment_method";
      paymentIntent.last_payment_error = {
        type: "card_error",
        charge: charge.id,
        code: "card_declined",
        decline_code: "generic_decline",
        message: "Your card was declined.",
        payment_method: paymentMethod,
      };
      store.emit("charge.failed", charge, { customer: customerId });
      store.emit("payment_intent.payment_failed", paymentIntent, { customer: customerId });
    }
    return { paymentIntent, charge };
  }
}

export function mountPaymentIntents({ route, app }: Api, r: Resources): void {
  const { store } = r;

  route("GET", "/v1/payment_intents", (raw) => {
    const p = parseParams(z.object({ ...pagination, customer: str.optional() }).strict(), raw);
    return listOf([...store.paymentIntents.values()].filter((x) => p.customer === undefined || x.customer === p.customer), "/v1/payment_intents", p);
  });

  route("GET", "/v1/payment_intents/:id", (raw, c) => {
    parseParams(z.object({ expand, client_secret: str.optional() }).strict(), raw);
    return r.paymentIntents.get(c.req.param("id") ?? "");
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
}
