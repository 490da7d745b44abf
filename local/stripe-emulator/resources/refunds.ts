/** Refunds: create (whole or partial, by charge or PaymentIntent), retrieve, list. */
import type Stripe from "stripe";
import { z } from "zod";
import { type Api, listOf, mergeMetadata, metadataParam } from "../api.ts";
import { invalidRequest, resourceMissing } from "../errors.ts";
import { expand, int, oneOf, pagination, parseParams, str } from "../form.ts";
import { buildRefund } from "../objects.ts";
import { newId } from "../store.ts";
import { idOf } from "./customers.ts";
import type { Resources } from "./index.ts";

export class Refunds {
  constructor(private readonly r: Resources) {}

  /** Refunds a succeeded charge (in full by default): `charge.refunded`, then `refund.created`. */
  create(charge: Stripe.Charge, amount: number | undefined, reason: Stripe.Refund.Reason | null, metadata: Stripe.Metadata): Stripe.Refund {
    const { store } = this.r;
    if (charge.status !== "succeeded") throw invalidRequest(`Charge ${charge.id} has not succeeded and cannot be refunded.`, { code: "charge_not_refundable" });
    const refundable = charge.amount - charge.amount_refunded;
    if (refundable <= 0) throw invalidRequest(`Charge ${charge.id} has already been refunded.`, { code: "charge_already_refunded" });
    const value = amount ?? refundable;
    if (value <= 0 || value > refundable) {
      throw invalidRequest(`Refund amount (${value}) is greater than unrefunded amount on charge (${refundable})`, { param: "amount", code: "amount_too_large" });
    }
    const customerId = idOf(charge.customer);
    const refund = buildRefund({ id: newId("re", 24), created: store.now(customerId), amount: value, charge, reason, metadata });
    store.refunds.set(refund.id, refund);
    charge.amount_refunded += value;
    charge.refunded = charge.amount_refunded === charge.amount;
    if (charge.refunds) {
      charge.refunds.data.unshift(refund);
    }
    store.emit("charge.refunded", charge, { customer: customerId, previousAttributes: { amount_refunded: charge.amount_refunded - value, refunded: false } });
    store.emit("refund.created", refund, { customer: customerId });
    return refund;
  }
}

export function mountRefunds({ route }: Api, r: Resources): void {
  const { store } = r;

  route("POST", "/v1/refunds", (raw) => {
    const p = parseParams(
      z
        .object({
          charge: str.optional(),
          payment_intent: str.optional(),
          amount: int.refine((n) => n >= 1, { message: "Invalid integer: amount must be at least 1" }).optional(),
          reason: oneOf(["duplicate", "fraudulent", "requested_by_customer"]).optional(),
          metadata: metadataParam,
          expand,
        })
        .strict(),
      raw,
    );
    let target: Stripe.Charge;
    if (p.charge) target = r.paymentIntents.charge(p.charge, "charge");
    else if (p.payment_intent) {
      const intent = r.paymentIntents.get(p.payment_intent, "payment_intent");
      const latest = typeof intent.latest_charge === "string" ? intent.latest_charge : null;
      if (!latest || intent.status !== "succeeded") throw invalidRequest(`This PaymentIntent (${intent.id}) does not have a successful charge to refund.`, { code: "charge_not_refundable", param: "payment_intent" });
      target = r.paymentIntents.charge(latest, "payment_intent");
    } else throw invalidRequest("One of the following params should be provided for this request: payment_intent or charge.", { code: "parameter_missing", param: "charge" });
    return r.refunds.create(target, p.amount, p.reason ?? null, mergeMetadata({}, p.metadata));
  });

  route("GET", "/v1/refunds", (raw) => {
    const p = parseParams(z.object({ ...pagination, charge: str.optional(), payment_intent: str.optional() }).strict(), raw);
    return listOf([...store.refunds.values()].filter((x) => (p.charge === undefined || x.charge === p.charge) && (p.payment_intent === undefined || x.payment_intent === p.payment_intent)), "/v1/refunds", p);
  });

  route("GET", "/v1/refunds/:id", (raw, c) => {
    parseParams(z.object({ expand }).strict(), raw);
    const id = c.req.param("id") ?? "";
    const found = store.refunds.get(id);
    if (!found) throw resourceMissing("refund", id);
    return found;
  });
}
