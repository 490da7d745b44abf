/**
 * Builders for every object the emulator hands out, typed with the pinned `stripe` package's
 * own interfaces so the compiler checks that each one has exactly the fields the API version
 * (`Stripe.API_VERSION`) has. Fields the emulator has no use for carry Stripe's defaults
 * (`null`, `[]`, `false`), as a fresh test-mode object would.
 */
import Stripe from "stripe";

const address = (): Stripe.Address => ({ city: null, country: null, line1: null, line2: null, postal_code: null, state: null });

export function buildCustomer(fields: {
  id: string;
  created: number;
  email: string | null;
  name: string | null;
  description: string | null;
  phone: string | null;
  metadata: Stripe.Metadata;
  invoicePrefix: string;
}): Stripe.Customer {
  return {
    id: fields.id,
    object: "customer",
    address: null,
    balance: 0,
    created: fields.created,
    currency: null,
    customer_account: null,
    default_source: null,
    delinquent: false,
    description: fields.description,
    discount: null,
    email: fields.email,
    invoice_prefix: fields.invoicePrefix,
    invoice_settings: { custom_fields: null, default_payment_method: null, footer: null, rendering_options: null },
    livemode: false,
    metadata: fields.metadata,
    name: fields.name,
    next_invoice_sequence: 1,
    phone: fields.phone,
    preferred_locales: [],
    shipping: null,
    tax_exempt: "none",
    test_clock: null,
  };
}

export function buildProduct(fields: {
  id: string;
  created: number;
  name: string;
  description: string | null;
  active: boolean;
  metadata: Stripe.Metadata;
}): Stripe.Product {
  return {
    id: fields.id,
    object: "product",
    active: fields.active,
    created: fields.created,
    default_price: null,
    description: fields.description,
    images: [],
    livemode: false,
    marketing_features: [],
    metadata: fields.metadata,
    name: fields.name,
    package_dimensions: null,
    shippable: null,
    statement_descriptor: null,
    tax_code: null,
    tax_details: null,
    type: "service",
    unit_label: null,
    updated: fields.created,
    url: null,
  };
}

export function buildPrice(fields: {
  id: string;
  created: number;
  product: string;
  currency: string;
  unitAmount: number;
  active: boolean;
  lookupKey: string | null;
  nickname: string | null;
  metadata: Stripe.Metadata;
  recurring: { interval: Stripe.Price.Recurring.Interval; intervalCount: number; trialPeriodDays: number | null } | null;
}): Stripe.Price {
  return {
    id: fields.id,
    object: "price",
    active: fields.active,
    billing_scheme: "per_unit",
    created: fields.created,
    currency: fields.currency,
    custom_unit_amount: null,
    livemode: false,
    lookup_key: fields.lookupKey,
    metadata: fields.metadata,
    nickname: fields.nickname,
    product: fields.product,
    recurring: fields.recurring
      ? {
          interval: fields.recurring.interval,
          interval_count: fields.recurring.intervalCount,
          meter: null,
          trial_period_days: fields.recurring.trialPeriodDays,
          usage_type: "licensed",
        }
      : null,
    tax_behavior: "unspecified",
    tiers_mode: null,
    transform_quantity: null,
    type: fields.recurring ? "recurring" : "one_time",
    unit_amount: fields.unitAmount,
    unit_amount_decimal: Stripe.Decimal.from(fields.unitAmount),
  };
}

/** The legacy `plan` view of a recurring price that subscription items still carry. */
export function planFromPrice(price: Stripe.Price): Stripe.Plan {
  const recurring = price.recurring;
  return {
    id: price.id,
    object: "plan",
    active: price.active,
    amount: price.unit_amount,
    amount_decimal: price.unit_amount_decimal,
    billing_scheme: "per_unit",
    created: price.created,
    currency: price.currency,
    interval: recurring?.interval ?? "month",
    interval_count: recurring?.interval_count ?? 1,
    livemode: false,
    metadata: price.metadata,
    meter: null,
    nickname: price.nickname,
    product: price.product,
    tiers_mode: null,
    transform_usage: null,
    trial_period_days: recurring?.trial_period_days ?? null,
    usage_type: "licensed",
  };
}

export function buildSubscriptionItem(fields: {
  id: string;
  created: number;
  subscription: string;
  price: Stripe.Price;
  quantity: number;
  periodStart: number;
  periodEnd: number;
}): Stripe.SubscriptionItem {
  return {
    id: fields.id,
    object: "subscription_item",
    billing_thresholds: null,
    created: fields.created,
    current_period_end: fields.periodEnd,
    current_period_start: fields.periodStart,
    current_trial: null,
    discounts: [],
    metadata: {},
    plan: planFromPrice(fields.price),
    price: fields.price,
    quantity: fields.quantity,
    subscription: fields.subscription,
    tax_rates: [],
  };
}

export function buildSubscription(fields: {
  id: string;
  created: number;
  customer: string;
  currency: string;
  item: Stripe.SubscriptionItem;
  status: Stripe.Subscription.Status;
  metadata: Stripe.Metadata;
  defaultPaymentMethod: string | null;
  trialStart: number | null;
  trialEnd: number | null;
  billingCycleAnchor: number;
}): Stripe.Subscription {
  return {
    id: fields.id,
    object: "subscription",
    application: null,
    application_fee_percent: null,
    automatic_tax: { disabled_reason: null, enabled: false, liability: null },
    billing_cycle_anchor: fields.billingCycleAnchor,
    billing_cycle_anchor_config: null,
    billing_mode: { flexible: null, type: "classic" },
    billing_schedules: [],
    billing_thresholds: null,
    cancel_at: null,
    cancel_at_period_end: false,
    canceled_at: null,
    cancellation_details: { comment: null, feedback: null, feedback_option: null, reason: null },
    collection_method: "charge_automatically",
    created: fields.created,
    currency: fields.currency,
    customer: fields.customer,
    customer_account: null,
    days_until_due: null,
    default_payment_method: fields.defaultPaymentMethod,
    default_source: null,
    default_tax_rates: [],
    description: null,
    discounts: [],
    ended_at: null,
    invoice_settings: { account_tax_ids: null, custom_fields: null, description: null, footer: null, issuer: { type: "self" } },
    items: { object: "list", data: [fields.item], has_more: false, url: `/v1/subscription_items?subscription=${fields.id}` },
    latest_invoice: null,
    livemode: false,
    managed_payments: null,
    metadata: fields.metadata,
    next_pending_invoice_item_invoice: null,
    on_behalf_of: null,
    pause_collection: null,
    payment_settings: {
      payment_method_options: null,
      payment_method_types: null,
      save_default_payment_method: "off",
    },
    pending_invoice_item_interval: null,
    pending_setup_intent: null,
    pending_update: null,
    schedule: null,
    start_date: fields.created,
    status: fields.status,
    test_clock: null,
    transfer_data: null,
    trial_end: fields.trialEnd,
    trial_settings: { end_behavior: { billing_cycle_anchor: null, missing_payment_method: "create_invoice" } },
    trial_start: fields.trialStart,
  };
}

export function buildInvoiceLine(fields: {
  id: string;
  invoice: string;
  amount: number;
  currency: string;
  description: string;
  quantity: number;
  price: Stripe.Price;
  periodStart: number;
  periodEnd: number;
  subscription: string | null;
  subscriptionItem: string | null;
  proration: boolean;
}): Stripe.InvoiceLineItem {
  return {
    id: fields.id,
    object: "line_item",
    amount: fields.amount,
    currency: fields.currency,
    description: fields.description,
    discount_amounts: [],
    discountable: true,
    discounts: [],
    invoice: fields.invoice,
    livemode: false,
    metadata: {},
    parent:
      fields.subscription && fields.subscriptionItem
        ? {
            type: "subscription_item_details",
            invoice_item_details: null,
            subscription_item_details: {
              invoice_item: null,
              proration: fields.proration,
              proration_details: { credited_items: null },
              subscription: fields.subscription,
              subscription_item: fields.subscriptionItem,
            },
          }
        : null,
    period: { start: fields.periodStart, end: fields.periodEnd },
    pretax_credit_amounts: [],
    pricing: {
      type: "price_details",
      price_details: { price: fields.price.id, product: fields.price.product as string },
      unit_amount_decimal: fields.price.unit_amount_decimal,
    },
    quantity: fields.quantity,
    quantity_decimal: Stripe.Decimal.from(fields.quantity),
    subscription: fields.subscription,
    subtotal: fields.amount,
    taxes: [],
  };
}

export function buildInvoice(fields: {
  id: string;
  created: number;
  customer: Stripe.Customer;
  currency: string;
  lines: Stripe.InvoiceLineItem[];
  billingReason: Stripe.Invoice.BillingReason;
  subscription: string | null;
  subscriptionMetadata: Stripe.Metadata | null;
  periodStart: number;
  periodEnd: number;
  hostedUrl: string;
}): Stripe.Invoice {
  const total = fields.lines.reduce((sum, line) => sum + line.amount, 0);
  return {
    id: fields.id,
    object: "invoice",
    account_country: "US",
    account_name: "Stripe emulator",
    account_tax_ids: null,
    amount_due: total,
    amount_overpaid: 0,
    amount_paid: 0,
    amount_remaining: total,
    amount_shipping: 0,
    application: null,
    attempt_count: 0,
    attempted: false,
    auto_advance: true,
    automatic_tax: { disabled_reason: null, enabled: false, liability: null, provider: null, status: null },
    automatically_finalizes_at: null,
    billing_reason: fields.billingReason,
    collection_method: "charge_automatically",
    created: fields.created,
    currency: fields.currency,
    custom_fields: null,
    customer: fields.customer.id,
    customer_account: null,
    customer_address: null,
    customer_email: fields.customer.email,
    customer_name: fields.customer.name ?? null,
    customer_phone: fields.customer.phone ?? null,
    customer_shipping: null,
    customer_tax_exempt: "none",
    customer_tax_ids: [],
    default_payment_method: null,
    default_source: null,
    default_tax_rates: [],
    description: null,
    discounts: [],
    due_date: null,
    effective_at: null,
    ending_balance: null,
    footer: null,
    from_invoice: null,
    hosted_invoice_url: fields.hostedUrl,
    invoice_pdf: `${fields.hostedUrl}/pdf`,
    issuer: { type: "self" },
    last_finalization_error: null,
    latest_revision: null,
    lines: { object: "list", data: fields.lines, has_more: false, url: `/v1/invoices/${fields.id}/lines` },
    livemode: false,
    metadata: {},
    next_payment_attempt: null,
    number: null,
    on_behalf_of: null,
    parent: fields.subscription
      ? {
          type: "subscription_details",
          quote_details: null,
          subscription_details: { metadata: fields.subscriptionMetadata, subscription: fields.subscription },
        }
      : null,
    payment_settings: { default_mandate: null, payment_method_options: null, payment_method_types: null },
    period_end: fields.periodEnd,
    period_start: fields.periodStart,
    post_payment_credit_notes_amount: 0,
    pre_payment_credit_notes_amount: 0,
    receipt_number: null,
    rendering: null,
    shipping_cost: null,
    shipping_details: null,
    starting_balance: 0,
    statement_descriptor: null,
    status: "draft",
    status_transitions: { finalized_at: null, marked_uncollectible_at: null, paid_at: null, voided_at: null },
    subtotal: total,
    subtotal_excluding_tax: total,
    test_clock: null,
    total,
    total_discount_amounts: [],
    total_excluding_tax: total,
    total_pretax_credit_amounts: [],
    total_taxes: [],
    webhooks_delivered_at: null,
  };
}

export function buildPaymentMethod(fields: {
  id: string;
  created: number;
  customer: string | null;
  last4: string;
  brand: string;
}): Stripe.PaymentMethod {
  return {
    id: fields.id,
    object: "payment_method",
    allow_redisplay: "unspecified",
    billing_details: { address: address(), email: null, name: null, phone: null, tax_id: null },
    card: {
      brand: fields.brand,
      checks: { address_line1_check: null, address_postal_code_check: null, cvc_check: "pass" },
      country: "US",
      display_brand: fields.brand,
      exp_month: 12,
      exp_year: new Date().getUTCFullYear() + 3,
      fingerprint: `fp_${fields.last4}emulator`,
      funding: "credit",
      generated_from: null,
      last4: fields.last4,
      networks: { available: [fields.brand], preferred: null },
      regulated_status: "unregulated",
      three_d_secure_usage: { supported: true },
      wallet: null,
    },
    created: fields.created,
    customer: fields.customer,
    customer_account: null,
    livemode: false,
    metadata: {},
    type: "card",
  };
}

export function buildPaymentIntent(fields: {
  id: string;
  created: number;
  amount: number;
  currency: string;
  customer: string | null;
  description: string | null;
  metadata: Stripe.Metadata;
}): Stripe.PaymentIntent {
  return {
    id: fields.id,
    object: "payment_intent",
    allowed_payment_method_types: null,
    amount: fields.amount,
    amount_capturable: 0,
    amount_details: { tip: {} },
    amount_received: 0,
    application: null,
    application_fee_amount: null,
    automatic_payment_methods: null,
    canceled_at: null,
    cancellation_reason: null,
    capture_method: "automatic",
    client_secret: `${fields.id}_secret_emulator`,
    confirmation_method: "automatic",
    created: fields.created,
    currency: fields.currency,
    customer: fields.customer,
    customer_account: null,
    description: fields.description,
    excluded_payment_method_types: null,
    last_payment_error: null,
    latest_charge: null,
    livemode: false,
    managed_payments: null,
    metadata: fields.metadata,
    next_action: null,
    on_behalf_of: null,
    payment_method: null,
    payment_method_configuration_details: null,
    payment_method_options: null,
    payment_method_types: ["card"],
    payment_record: null,
    processing: null,
    receipt_email: null,
    review: null,
    setup_future_usage: null,
    shipping: null,
    source: null,
    statement_descriptor: null,
    statement_descriptor_suffix: null,
    status: "requires_payment_method",
    transfer_data: null,
    transfer_group: null,
  };
}

export function buildCharge(fields: {
  id: string;
  created: number;
  amount: number;
  currency: string;
  customer: string | null;
  paymentIntent: string;
  paymentMethod: Stripe.PaymentMethod;
  succeeded: boolean;
  failure: { code: string; message: string; declineCode: string } | null;
  receiptUrl: string;
}): Stripe.Charge {
  const card = fields.paymentMethod.card;
  return {
    id: fields.id,
    object: "charge",
    amount: fields.amount,
    amount_captured: fields.succeeded ? fields.amount : 0,
    amount_refunded: 0,
    application: null,
    application_fee: null,
    application_fee_amount: null,
    balance_transaction: fields.succeeded ? `txn_${fields.id.slice(3)}` : null,
    billing_details: fields.paymentMethod.billing_details,
    calculated_statement_descriptor: "STRIPE EMULATOR",
    captured: fields.succeeded,
    created: fields.created,
    currency: fields.currency,
    customer: fields.customer,
    description: null,
    disputed: false,
    failure_balance_transaction: null,
    failure_code: fields.failure?.code ?? null,
    failure_message: fields.failure?.message ?? null,
    fraud_details: {},
    livemode: false,
    metadata: {},
    on_behalf_of: null,
    outcome: {
      advice_code: null,
      network_advice_code: null,
      network_decline_code: null,
      network_status: fields.succeeded ? "approved_by_network" : "declined_by_network",
      reason: fields.failure?.declineCode ?? null,
      risk_level: "normal",
      seller_message: fields.succeeded ? "Payment complete." : "The bank did not return any further details with this decline.",
      type: fields.succeeded ? "authorized" : "issuer_declined",
    },
    paid: fields.succeeded,
    payment_intent: fields.paymentIntent,
    payment_method: fields.paymentMethod.id,
    payment_method_details: {
      type: "card",
      card: {
        amount_authorized: fields.succeeded ? fields.amount : null,
        authorization_code: null,
        brand: card?.brand ?? "visa",
        checks: { address_line1_check: null, address_postal_code_check: null, cvc_check: "pass" },
        country: "US",
        electronic_commerce_indicator: null,
        exp_month: card?.exp_month ?? 12,
        exp_year: card?.exp_year ?? 2030,
        extended_authorization: { status: "disabled" },
        fingerprint: card?.fingerprint ?? null,
        funding: "credit",
        incremental_authorization: { status: "unavailable" },
        installments: null,
        last4: card?.last4 ?? "4242",
        mandate: null,
        multicapture: { status: "unavailable" },
        network: card?.brand ?? "visa",
        network_token: { used: false },
        network_transaction_id: null,
        overcapture: { maximum_amount_capturable: fields.amount, status: "unavailable" },
        regulated_status: "unregulated",
        three_d_secure: null,
        transaction_link_id: null,
        wallet: null,
      },
    },
    receipt_email: null,
    receipt_number: null,
    receipt_url: fields.receiptUrl,
    refunded: false,
    refunds: { object: "list", data: [], has_more: false, url: `/v1/charges/${fields.id}/refunds` },
    review: null,
    shipping: null,
    source: null,
    source_transfer: null,
    statement_descriptor: null,
    statement_descriptor_suffix: null,
    status: fields.succeeded ? "succeeded" : "failed",
    transfer_data: null,
    transfer_group: null,
  };
}

export function buildRefund(fields: {
  id: string;
  created: number;
  amount: number;
  charge: Stripe.Charge;
  reason: Stripe.Refund.Reason | null;
  metadata: Stripe.Metadata;
}): Stripe.Refund {
  return {
    id: fields.id,
    object: "refund",
    amount: fields.amount,
    balance_transaction: `txn_${fields.id.slice(3)}`,
    charge: fields.charge.id,
    created: fields.created,
    currency: fields.charge.currency,
    customer: typeof fields.charge.customer === "string" ? fields.charge.customer : null,
    customer_account: null,
    destination_details: { type: "card", card: { type: "refund", reference_status: "pending", reference_type: "acquirer_reference_number" } },
    metadata: fields.metadata,
    payment_intent: typeof fields.charge.payment_intent === "string" ? fields.charge.payment_intent : null,
    payment_method: typeof fields.charge.payment_method === "string" ? fields.charge.payment_method : null,
    reason: fields.reason,
    receipt_number: null,
    source_transfer_reversal: null,
    status: "succeeded",
    transfer_reversal: null,
  };
}

export function buildCheckoutSession(fields: {
  id: string;
  created: number;
  expiresAt: number;
  mode: Stripe.Checkout.Session.Mode;
  customer: string | null;
  customerEmail: string | null;
  clientReferenceId: string | null;
  metadata: Stripe.Metadata;
  successUrl: string | null;
  cancelUrl: string | null;
  currency: string;
  amountTotal: number;
  url: string;
}): Stripe.Checkout.Session {
  return {
    id: fields.id,
    object: "checkout.session",
    adaptive_pricing: null,
    after_expiration: null,
    allow_promotion_codes: null,
    allowed_payment_method_types: null,
    amount_subtotal: fields.amountTotal,
    amount_total: fields.amountTotal,
    automatic_tax: { enabled: false, liability: null, provider: null, status: null },
    billing_address_collection: null,
    cancel_url: fields.cancelUrl,
    client_reference_id: fields.clientReferenceId,
    client_secret: null,
    collected_information: null,
    consent: null,
    consent_collection: null,
    created: fields.created,
    currency: fields.currency,
    currency_conversion: null,
    custom_fields: [],
    custom_text: { after_submit: null, shipping_address: null, submit: null, terms_of_service_acceptance: null },
    customer: fields.customer,
    customer_account: null,
    customer_creation: fields.customer ? null : fields.mode === "payment" ? "if_required" : "always",
    customer_details: null,
    customer_email: fields.customerEmail,
    discounts: [],
    expires_at: fields.expiresAt,
    integration_identifier: null,
    invoice: null,
    invoice_creation: fields.mode === "payment" ? { enabled: false, invoice_data: { account_tax_ids: null, custom_fields: null, description: null, footer: null, issuer: null, metadata: {}, rendering_options: null } } : null,
    livemode: false,
    locale: null,
    managed_payments: null,
    metadata: fields.metadata,
    mode: fields.mode,
    origin_context: null,
    payment_intent: null,
    payment_link: null,
    payment_method_collection: "always",
    payment_method_configuration_details: null,
    payment_method_options: {},
    payment_method_types: ["card"],
    payment_status: "unpaid",
    permissions: null,
    phone_number_collection: { enabled: false },
    recovered_from: null,
    saved_payment_method_options: null,
    setup_intent: null,
    shipping_address_collection: null,
    shipping_cost: null,
    shipping_options: [],
    status: "open",
    submit_type: null,
    subscription: null,
    success_url: fields.successUrl,
    total_details: { amount_discount: 0, amount_shipping: 0, amount_tax: 0 },
    ui_mode: "hosted",
    url: fields.url,
    wallet_options: null,
  };
}

export function buildPortalSession(fields: {
  id: string;
  created: number;
  customer: string;
  returnUrl: string | null;
  url: string;
}): Stripe.BillingPortal.Session {
  return {
    id: fields.id,
    object: "billing_portal.session",
    configuration: "bpc_emulator_default",
    created: fields.created,
    customer: fields.customer,
    customer_account: null,
    flow: null,
    livemode: false,
    locale: null,
    on_behalf_of: null,
    return_url: fields.returnUrl,
    url: fields.url,
  };
}

export function buildCustomerDetails(customer: Stripe.Customer): Stripe.Checkout.Session.CustomerDetails {
  return {
    address: null,
    business_name: null,
    email: customer.email,
    individual_name: null,
    name: customer.name ?? null,
    phone: customer.phone ?? null,
    tax_exempt: "none",
    tax_ids: [],
  };
}
