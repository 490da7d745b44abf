/**
 * Invoices: a subscription's invoice (created, finalized, then collected off the card on
 * file), retrieve, list, list lines, and the hosted invoice page.
 */
import type Stripe from "stripe";
import { z } from "zod";
import { type Api, listOf } from "../api.ts";
import { resourceMissing } from "../errors.ts";
import { expand, oneOf, pagination, parseParams, str } from "../form.ts";
import { escapeHtml, formatDate, formatMoney, layout } from "../html.ts";
import { buildInvoice, buildInvoiceLine } from "../objects.ts";
import { newId } from "../store.ts";
import { idOf } from "./customers.ts";
import type { Resources } from "./index.ts";

/** One line of a subscription invoice before it is built. */
export interface LineDraft {
  price: Stripe.Price;
  quantity: number;
  amount: number;
  description: string;
  start: number;
  end: number;
  proration: boolean;
}

function billingDescription(invoice: Stripe.Invoice): string {
  return invoice.billing_reason === "subscription_create" ? "Subscription creation" : invoice.billing_reason === "subscription_update" ? "Subscription update" : "Subscription cycle";
}

export class Invoices {
  constructor(private readonly r: Resources) {}

  get(id: string): Stripe.Invoice {
    const found = this.r.store.invoices.get(id);
    if (!found) throw resourceMissing("invoice", id);
    return found;
  }

  /** Creates and finalizes a subscription's invoice: `invoice.created`, `invoice.finalized`. */
  createForSubscription(subscription: Stripe.Subscription, billingReason: Stripe.Invoice.BillingReason, lines: LineDraft[]): Stripe.Invoice {
    const { store } = this.r;
    const customer = this.r.customers.get(idOf(subscription.customer) ?? "", "customer");
    const id = newId("in", 24);
    const item = this.r.subscriptions.item(subscription);
    const invoice = buildInvoice({
      id,
      created: store.now(customer.id),
      customer,
      currency: subscription.currency,
      lines: lines.map((line) =>
        buildInvoiceLine({
          id: newId("il", 24),
          invoice: id,
          amount: line.amount,
          currency: subscription.currency,
          description: line.description,
          quantity: line.quantity,
          price: line.price,
          periodStart: line.start,
          periodEnd: line.end,
          subscription: subscription.id,
          subscriptionItem: item.id,
          proration: line.proration,
        }),
      ),
      billingReason,
      subscription: subscription.id,
      subscriptionMetadata: { ...subscription.metadata },
      periodStart: Math.min(...lines.map((l) => l.start)),
      periodEnd: Math.max(...lines.map((l) => l.end)),
      hostedUrl: `${this.r.baseUrl()}/invoices/${id}`,
    });
    store.invoices.set(id, invoice);
    subscription.latest_invoice = id;
    store.emit("invoice.created", invoice, { customer: customer.id });
    invoice.status = "open";
    invoice.number = store.nextInvoiceNumber(customer);
    invoice.effective_at = store.now(customer.id);
    invoice.status_transitions.finalized_at = invoice.effective_at;
    store.emit("invoice.finalized", invoice, { customer: customer.id });
    return invoice;
  }

  private markPaid(invoice: Stripe.Invoice, customerId: string): void {
    const { store } = this.r;
    invoice.status = "paid";
    invoice.amount_paid = invoice.amount_due;
    invoice.amount_remaining = 0;
    invoice.next_payment_attempt = null;
    invoice.status_transitions.paid_at = store.now(customerId);
    store.emit("invoice.paid", invoice, { customer: customerId });
    store.emit("invoice.payment_succeeded", invoice, { customer: customerId });
  }

  /** Attempts to collect an open invoice with the card on file; true when it was paid. */
  collect(invoice: Stripe.Invoice, subscription: Stripe.Subscription, offSession: boolean): boolean {
    const customer = this.r.customers.get(idOf(subscription.customer) ?? "", "customer");
    invoice.attempted = true;
    invoice.attempt_count += 1;
    if (invoice.amount_due === 0) {
      this.markPaid(invoice, customer.id);
      return true;
    }
    const { paymentIntent } = this.r.paymentIntents.pay({
      customer,
      amount: invoice.amount_due,
      currency: invoice.currency,
      paymentMethod: this.r.paymentMethods.defaultFor(customer, subscription),
      offSession,
      description: billingDescription(invoice),
      metadata: {},
    });
    invoice.payments = {
      object: "list",
      has_more: false,
      url: `/v1/invoice_payments?invoice=${invoice.id}`,
      data: [
        {
          id: newId("inpay", 24),
          object: "invoice_payment",
          amount_paid: paymentIntent.status === "succeeded" ? invoice.amount_due : null,
          amount_requested: invoice.amount_due,
          created: paymentIntent.created,
          currency: invoice.currency,
          invoice: invoice.id,
          is_default: true,
          livemode: false,
          payment: { type: "payment_intent", payment_intent: paymentIntent.id },
          status: paymentIntent.status === "succeeded" ? "paid" : "open",
          status_transitions: { canceled_at: null, paid_at: paymentIntent.status === "succeeded" ? paymentIntent.created : null },
        },
      ],
    };
    if (paymentIntent.status === "succeeded") {
      this.markPaid(invoice, customer.id);
      return true;
    }
    return false;
  }
}

export function mountInvoices({ route, app }: Api, r: Resources): void {
  const { store } = r;

  route("GET", "/v1/invoices", (raw) => {
    const p = parseParams(z.object({ ...pagination, customer: str.optional(), subscription: str.optional(), status: oneOf(["draft", "open", "paid", "uncollectible", "void"]).optional() }).strict(), raw);
    const all = [...store.invoices.values()].filter(
      (i) => (p.customer === undefined || i.customer === p.customer) && (p.subscription === undefined || i.parent?.subscription_details?.subscription === p.subscription) && (p.status === undefined || i.status === p.status),
    );
    return listOf(all, "/v1/invoices", p);
  });

  route("GET", "/v1/invoices/:id", (raw, c) => {
    parseParams(z.object({ expand }).strict(), raw);
    return r.invoices.get(c.req.param("id") ?? "");
  });

  route("GET", "/v1/invoices/:id/lines", (raw, c) => {
    const p = parseParams(z.object({ ...pagination }).strict(), raw);
    const found = r.invoices.get(c.req.param("id") ?? "");
    return listOf([...found.lines.data].reverse(), found.lines.url, p);
  });

  // ----- the hosted invoice page (`hosted_invoice_url`) -------------------------------------------

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
}
