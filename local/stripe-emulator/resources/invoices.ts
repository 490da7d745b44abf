/**
 * Invoices: a subscription's invoice (created, finalized, then collected off the card on
 * file), retrieve, list, list lines, and the hosted invoice page.
 */
import type Stripe from "stripe";
import { z } from "zod";
import { type Api, listOf } from "../api.ts";
import { invalidRequest, resourceMissing, unsupported } from "../errors.ts";
import { expand, int, oneOf, pagination, parseParams, str } from "../form.ts";
import { escapeHtml, formatDate, formatMoney, layout } from "../html.ts";
import { buildInvoice, buildInvoiceLine } from "../objects.ts";
import { type LineDraft, newId } from "../store.ts";
import { idOf } from "./customers.ts";
import type { Resources } from "./index.ts";

/**
 * How a customer's balance meets an invoice's total, as Stripe applies it at finalization: a
 * credit (negative balance) pays what it can, a debit is added, and a negative total (a net
 * proration credit) is credited to the balance with nothing due.
 */
export function applyBalance(total: number, balance: number): { amountDue: number; endingBalance: number } {
  if (total < 0) return { amountDue: 0, endingBalance: balance + total };
  const amountDue = Math.max(0, total + balance);
  return { amountDue, endingBalance: total + balance - amountDue };
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

  /**
   * An invoice built from `lines` and not stored (a preview): Stripe's shape, `status: draft`,
   * `billing_reason: upcoming`, the customer's balance applied as finalization would.
   */
  preview(subscription: Stripe.Subscription, customer: Stripe.Customer, lines: LineDraft[], immediate: boolean): Stripe.Invoice {
    const id = newId("upcoming_in", 24);
    const invoice = this.build(id, subscription, customer, lines, "upcoming", "", "il_tmp");
    this.applyCustomerBalance(invoice, customer);
    invoice.hosted_invoice_url = null;
    invoice.invoice_pdf = null;
    invoice.lines.url = `/v1/invoices/${id}/lines`;
    // When it would be charged: at once for a change invoiced now, else at the renewal.
    invoice.next_payment_attempt = immediate ? invoice.created : (lines.find((line) => !line.proration)?.start ?? invoice.period_end);
    return invoice;
  }

  /**
   * A subscription invoice from its line drafts, in Stripe's shape, before any balance is applied.
   */
  private build(
    id: string,
    subscription: Stripe.Subscription,
    customer: Stripe.Customer,
    lines: LineDraft[],
    billingReason: Stripe.Invoice.BillingReason,
    hostedUrl: string,
    linePrefix: string,
  ): Stripe.Invoice {
    const item = this.r.subscriptions.item(subscription);
    const invoice = buildInvoice({
      id,
      created: this.r.store.now(customer.id),
      customer,
      currency: subscription.currency,
      lines: lines.map((line) =>
        buildInvoiceLine({
          id: newId(linePrefix, 24),
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
      hostedUrl,
    });
    return invoice;
  }

  /** Applies the customer's balance to the invoice as finalization does; returns the balance it leaves. */
  private applyCustomerBalance(invoice: Stripe.Invoice, customer: Stripe.Customer): number {
    const { amountDue, endingBalance } = applyBalance(invoice.total, customer.balance);
    invoice.starting_balance = customer.balance;
    invoice.ending_balance = endingBalance;
    invoice.amount_due = amountDue;
    invoice.amount_remaining = amountDue;
    return endingBalance;
  }

  /** Creates and finalizes a subscription's invoice: `invoice.created`, `invoice.finalized`. */
  createForSubscription(subscription: Stripe.Subscription, billingReason: Stripe.Invoice.BillingReason, lines: LineDraft[]): Stripe.Invoice {
    const { store } = this.r;
    const customer = this.r.customers.get(idOf(subscription.customer) ?? "", "customer");
    const id = newId("in", 24);
    const invoice = this.build(id, subscription, customer, lines, billingReason, `${this.r.baseUrl()}/invoices/${id}`, "il");
    store.invoices.set(id, invoice);
    subscription.latest_invoice = id;
    store.emit("invoice.created", invoice, { customer: customer.id });
    // Finalizing applies the customer's balance: a credit from an earlier proration pays this.
    customer.balance = this.applyCustomerBalance(invoice, customer);
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

  /**
   * Voids an open invoice nobody paid (a change refused for a declined card): the balance it
   * took from the customer goes back, and `invoice.voided` says it is void.
   */
  voidUnpaid(invoice: Stripe.Invoice): void {
    const customer = this.r.customers.get(idOf(invoice.customer as string) ?? "", "customer");
    customer.balance = invoice.starting_balance;
    invoice.status = "void";
    invoice.amount_remaining = 0;
    invoice.next_payment_attempt = null;
    invoice.status_transitions.voided_at = this.r.store.now(customer.id);
    this.r.store.emit("invoice.voided", invoice, { customer: customer.id });
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

const previewParams = z
  .object({
    customer: str.optional(),
    subscription: str.optional(),
    subscription_details: z
      .object({
        items: z.array(z.object({ id: str.optional(), price: str.optional(), quantity: int.optional() }).strict()).max(1, { message: "Invalid items: the emulator supports one subscription item" }).optional(),
        proration_behavior: oneOf(["create_prorations", "always_invoice", "none"]).optional(),
        proration_date: int.optional(),
      })
      .strict()
      .optional(),
    expand,
  })
  .strict();

export function mountInvoices({ route, app }: Api, r: Resources): void {
  const { store } = r;

  route("GET", "/v1/invoices", (raw) => {
    const p = parseParams(z.object({ ...pagination, customer: str.optional(), subscription: str.optional(), status: oneOf(["draft", "open", "paid", "uncollectible", "void"]).optional() }).strict(), raw);
    const all = [...store.invoices.values()].filter(
      (i) => (p.customer === undefined || i.customer === p.customer) && (p.subscription === undefined || i.parent?.subscription_details?.subscription === p.subscription) && (p.status === undefined || i.status === p.status),
    );
    return listOf(all, "/v1/invoices", p);
  });

  /**
   * The invoice a subscription will get next, computed and not saved (`invoices.createPreview`):
   * with `subscription_details`, the one a price change would make, proration lines included.
   */
  route("POST", "/v1/invoices/create_preview", (raw) => {
    const p = parseParams(previewParams, raw);
    if (!p.subscription) throw invalidRequest("The Stripe emulator previews a subscription's next invoice: pass subscription.", { code: "parameter_missing", param: "subscription" });
    const subscription = r.subscriptions.get(p.subscription, "subscription");
    const customerId = idOf(subscription.customer) ?? "";
    if (p.customer && p.customer !== customerId) throw invalidRequest(`The subscription ${subscription.id} does not belong to customer ${p.customer}.`, { param: "customer" });
    const customer = r.customers.get(customerId, "customer");
    const details = p.subscription_details;
    const item = details?.items?.[0];
    const current = r.subscriptions.item(subscription);
    if (item?.id && item.id !== current.id) throw resourceMissing("subscription item", item.id, "subscription_details[items][0][id]");
    if (item && !item.id && item.price) throw unsupported("adding a second item to a subscription (pass subscription_details[items][0][id])", "subscription_details[items][0][id]");
    const price = item?.price ? r.catalog.price(item.price, "subscription_details[items][0][price]") : undefined;
    const changes = Boolean(price || item?.quantity !== undefined);
    const { lines, immediate } = r.subscriptions.previewLines(
      subscription,
      changes || details?.proration_behavior
        ? {
            ...(price ? { price } : {}),
            ...(item?.quantity !== undefined ? { quantity: item.quantity } : {}),
            prorationBehavior: details?.proration_behavior ?? "create_prorations",
            ...(details?.proration_date !== undefined ? { prorationDate: details.proration_date } : {}),
          }
        : null,
    );
    return r.invoices.preview(subscription, customer, lines, immediate);
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
