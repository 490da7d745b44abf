/**
 * The billing API (`/functions/v1/billing/*`), a Hono router. Reads go through a client
 * scoped to the caller's JWT, so RLS decides what they see; consumption goes through the
 * consume_credits RPC; checkout and portal need an owner or admin, take prices and the
 * customer from our tables, and build return URLs from APP_URL, never from the request.
 */
import { Hono, type Context } from "hono";
import type Stripe from "stripe";
import { z } from "zod";
import { corsHeaders, errorResponse, json, RETRY_AFTER_SECONDS, serviceUnavailable } from "../_shared/http.ts";
import { type DatabaseClient, dataOf, DatabaseFailure, rpc } from "../_shared/supabase.ts";
import {
  consumeBody,
  creditCheckoutBody,
  describeIssues,
  organizationId,
  page,
  portalBody,
  subscriptionCheckoutBody,
  unacceptableJson,
} from "../_shared/validate.ts";
import { ApiError, stripeErrorType } from "./api-error.ts";
import { openCheckoutSession } from "./checkout-session.ts";
import { type PlanRow, planPrice, type ProductRow, productPrice } from "./stripe-catalog.ts";
import { customerFor, existingCustomerFor, hasLiveSubscription } from "./stripe-customer.ts";
import { checkoutTrialDays, trialEligibility } from "./trial.ts";

export interface BillingDeps {
  stripe: Stripe;
  /** Service-role client: customers, prices. Never used to read a caller's data. */
  service: DatabaseClient;
  /** A client acting as the caller (their Authorization header). */
  userClient(authorization: string): DatabaseClient;
  appUrl: string;
}

const MAX_BODY_BYTES = 16 * 1024;

/** SQLSTATEs of the billing functions, as HTTP. */
function fromDatabase(error: DatabaseFailure): ApiError | undefined {
  switch (error.code) {
    case "PT402":
      return new ApiError(402, "insufficient_credits", error.message);
    case "42501":
      return new ApiError(403, "forbidden", "You are not allowed to do this for this organization.");
    case "PT404":
      return new ApiError(404, "not_found", error.message);
    case "PT409":
      return new ApiError(409, "conflict", error.message);
    case "22023":
    case "22P02":
      return new ApiError(400, "invalid_request", error.message);
    case "PGRST301":
    case "PGRST302":
      return new ApiError(401, "unauthorized", "A valid session is required.");
  }
  // Any other data exception (class 22: a value the database refused) is the caller's input.
  if (error.code.startsWith("22")) return new ApiError(400, "invalid_request", "A value in the request was refused.");
  return undefined;
}

const tooLarge = () => new ApiError(413, "payload_too_large", `The body must be at most ${MAX_BODY_BYTES} bytes.`);

/**
 * The request body as JSON checked against a schema. Refused, each with a 4xx: another
 * content type, more than MAX_BODY_BYTES, bytes that are not UTF-8, text that is not JSON,
 * text Postgres cannot hold or that does not round-trip (NUL, lone surrogates), nesting
 * deeper than any body needs, and anything the schema does not allow.
 */
async function readJson<T>(c: Context, schema: z.ZodType<T>): Promise<T> {
  const type = c.req.header("content-type") ?? "";
  if (!type.toLowerCase().startsWith("application/json")) {
    throw new ApiError(415, "unsupported_media_type", "Send a JSON body with Content-Type: application/json.");
  }
  const declared = Number(c.req.header("content-length") ?? "0");
  if (declared > MAX_BODY_BYTES) throw tooLarge();
  const bytes = await c.req.arrayBuffer();
  if (bytes.byteLength > MAX_BODY_BYTES) throw tooLarge();
  let text: string;
  try {
    // fatal: two bodies that differ only in invalid bytes must not both read as U+FFFD.
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new ApiError(400, "invalid_request", "The body must be UTF-8 text.");
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ApiError(400, "invalid_json", "The body is not valid JSON.");
  }
  const unacceptable = unacceptableJson(body);
  if (unacceptable) throw new ApiError(400, "invalid_request", `The body was refused: ${unacceptable}.`);
  const parsed = schema.safeParse(body);
  if (!parsed.success) throw new ApiError(400, "invalid_request", describeIssues(parsed.error));
  return parsed.data;
}

function organizationParam(c: Context): string {
  const parsed = organizationId.safeParse(c.req.param("org_id"));
  if (!parsed.success) throw new ApiError(400, "invalid_request", "The organization id must be a UUID.");
  return parsed.data;
}

/** The caller's user id, from their JWT (which the platform verified before we ran). */
function callerId(authorization: string): string {
  const token = authorization.replace(/^Bearer\s+/i, "");
  const payload = token.split(".")[1];
  let sub: unknown;
  try {
    sub = payload ? JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/"))).sub : undefined;
  } catch {
    sub = undefined;
  }
  if (typeof sub !== "string") throw new ApiError(401, "unauthorized", "Sign in to use the billing API.");
  return sub;
}

export function createBillingApp(deps: BillingDeps): Hono {
  const app = new Hono().basePath("/billing");

  const authorization = (c: Context): string => {
    const header = c.req.header("authorization");
    if (!header) throw new ApiError(401, "unauthorized", "Sign in to use the billing API.");
    return header;
  };
  const asCaller = (c: Context) => deps.userClient(authorization(c));

  /** The caller's role in the organization (their own membership row, as RLS shows it), or null. */
  const roleIn = async (c: Context, organization: string): Promise<string | null> => {
    const data = dataOf(await asCaller(c).from("organization_members").select("role")
      .eq("organization_id", organization).eq("user_id", callerId(authorization(c))).maybeSingle());
    return data?.role ?? null;
  };

  /** Raises 403 unless the caller belongs to the organization (rather than answering "nothing here"). */
  const requireMember = async (c: Context, organization: string): Promise<void> => {
    if (!(await roleIn(c, organization))) {
      throw new ApiError(403, "forbidden", "You are not a member of this organization.");
    }
  };

  /** Raises 403 unless the caller is an owner or admin of the organization. */
  const requireManager = async (c: Context, organization: string): Promise<void> => {
    const role = await roleIn(c, organization);
    if (!role || !["owner", "admin"].includes(role)) {
      throw new ApiError(403, "forbidden", "Only an owner or admin of the organization can manage billing.");
    }
  };

  /**
   * One subscription per organization: an older subscription Checkout Session still open (a
   * tab left open, another plan chosen earlier) could be paid as well and start a second
   * subscription, so opening a new one expires the others.
   */
  const expireOtherSubscriptionCheckouts = async (customer: string, keep: string): Promise<void> => {
    for await (const open of deps.stripe.checkout.sessions.list({ customer, status: "open", limit: 100 })) {
      if (open.mode !== "subscription" || open.id === keep) continue;
      try {
        await deps.stripe.checkout.sessions.expire(open.id);
      } catch (error) {
        // Paid or expired meanwhile: the live-subscription check and the webhook deal with that.
        if (!(error instanceof Error && (error as { type?: string }).type === "StripeInvalidRequestError")) throw error;
      }
    }
  };

  app.get("/plans", async (c) => {
    const data = dataOf(await asCaller(c).from("subscription_plans")
      .select("code, name, description, currency, monthly_unit_amount, annual_unit_amount, monthly_credits, annual_credits, features, trial_days, trial_credits")
      .eq("is_active", true).order("sort_order"));
    // ?organization_id= adds whether that organization's checkout would include a trial.
    const organization = c.req.query("organization_id");
    if (organization === undefined) return json({ plans: data });
    const parsed = organizationId.safeParse(organization);
    if (!parsed.success) throw new ApiError(400, "invalid_request", "The organization id must be a UUID.");
    await requireMember(c, parsed.data);
    return json({ plans: data, trial: await trialEligibility(asCaller(c), parsed.data) });
  });

  app.get("/credit-products", async (c) => {
    const data = dataOf(await asCaller(c).from("credit_products")
      .select("code, name, description, credits, currency, unit_amount")
      .eq("is_active", true).order("sort_order"));
    return json({ credit_products: data });
  });

  app.post("/subscription/checkout", async (c) => {
    const body = await readJson(c, subscriptionCheckoutBody);
    await requireManager(c, body.organization_id);
    if (await hasLiveSubscription(deps.service, body.organization_id)) {
      throw new ApiError(409, "subscription_exists", "The organization already has a subscription: change it in the customer portal.");
    }
    const plan = dataOf(await deps.service.from("subscription_plans").select("*")
      .eq("code", body.plan_code).eq("is_active", true).maybeSingle<PlanRow>());
    if (!plan) throw new ApiError(404, "plan_not_found", `There is no active plan ${body.plan_code}.`);

    // One trial per owner: the database says whether this organization may have one.
    const trialDays = await checkoutTrialDays(asCaller(c), body.organization_id, plan);
    const customer = await customerFor(deps.stripe, deps.service, body.organization_id);
    const price = await planPrice(deps.stripe, deps.service, plan, body.interval);
    const session = await openCheckoutSession(deps.stripe, "subscription", body.organization_id, {
      mode: "subscription",
      customer,
      line_items: [{ price, quantity: 1 }],
      client_reference_id: body.organization_id,
      metadata: { organization_id: body.organization_id, plan_code: plan.code },
      subscription_data: {
        metadata: { organization_id: body.organization_id, plan_code: plan.code },
        ...(trialDays !== undefined && { trial_period_days: trialDays }),
      },
      success_url: `${deps.appUrl}/?checkout=success&kind=subscription&session_id={CHECKOUT_SESSION_ID}`,
      cancel_url: `${deps.appUrl}/?checkout=cancelled&kind=subscription`,
    });
    await expireOtherSubscriptionCheckouts(customer, session.id);
    return json({ url: session.url });
  });

  app.post("/subscription/portal", async (c) => {
    const body = await readJson(c, portalBody);
    await requireManager(c, body.organization_id);
    const customer = await existingCustomerFor(deps.stripe, deps.service, body.organization_id);
    if (!customer) {
      throw new ApiError(409, "no_customer", "The organization has no billing account yet: subscribe or buy credits first.");
    }
    const session = await deps.stripe.billingPortal.sessions.create({
      customer,
      return_url: `${deps.appUrl}/?portal=returned`,
    });
    return json({ url: session.url });
  });

  /**
   * The organization's latest subscription with its plan, as the caller may see it. Two
   * plain reads rather than an embedded select, which keeps to the REST subset every
   * stack supports.
   */
  const latestSubscription = async (db: DatabaseClient, organization: string) => {
    const data = dataOf(await db.from("organization_subscriptions")
      .select("status, billing_interval, current_period_start, current_period_end, trial_end, cancel_at_period_end, grace_period_end, plan_id")
      .eq("organization_id", organization).order("created_at", { ascending: false }).limit(1).maybeSingle());
    if (!data) return null;
    const { plan_id: planId, ...subscription } = data;
    if (!planId) return { ...subscription, plan: null };
    const plan = dataOf(await db.from("subscription_plans")
      .select("code, name, monthly_credits, annual_credits").eq("id", planId).maybeSingle());
    return { ...subscription, plan };
  };

  app.get("/subscription/:org_id", async (c) => {
    const organization = organizationParam(c);
    await requireMember(c, organization);
    return json({ subscription: await latestSubscription(asCaller(c), organization) });
  });

  app.get("/credits/:org_id", async (c) => {
    const organization = organizationParam(c);
    const balance = await rpc(asCaller(c), "get_credit_balance", { p_organization_id: organization });
    return json({ balance });
  });

  app.post("/credits/consume", async (c) => {
    const body = await readJson(c, consumeBody);
    const result = await rpc(asCaller(c), "consume_credits", {
      p_organization_id: body.organization_id,
      p_event_key: body.event_key,
      p_quantity: body.quantity ?? 1,
      p_idempotency_key: body.idempotency_key ?? null,
      p_metadata: body.metadata ?? {},
    });
    return json(result);
  });

  app.post("/credit-products/checkout", async (c) => {
    const body = await readJson(c, creditCheckoutBody);
    await requireManager(c, body.organization_id);
    const product = dataOf(await deps.service.from("credit_products").select("*")
      .eq("code", body.product_code).eq("is_active", true).maybeSingle<ProductRow>());
    if (!product) throw new ApiError(404, "product_not_found", `There is no active credit pack ${body.product_code}.`);
    const customer = await customerFor(deps.stripe, deps.service, body.organization_id);
    const price = await productPrice(deps.stripe, deps.service, product);
    const metadata = { organization_id: body.organization_id, product_code: product.code };
    const session = await openCheckoutSession(deps.stripe, "credits", body.organization_id, {
      mode: "payment",
      customer,
      line_items: [{ price, quantity: 1 }],
      client_reference_id: body.organization_id,
      metadata,
      payment_intent_data: { metadata },
      success_url: `${deps.appUrl}/?checkout=success&kind=credits&session_id={CHECKOUT_SESSION_ID}`,
      cancel_url: `${deps.appUrl}/?checkout=cancelled&kind=credits`,
    });
    return json({ url: session.url });
  });

  app.get("/summary/:org_id", async (c) => {
    const organization = organizationParam(c);
    const db = asCaller(c);
    const balance = await rpc(db, "get_credit_balance", { p_organization_id: organization });
    const since = new Date(Date.now() - 30 * 24 * 3600 * 1000).toISOString().slice(0, 10);
    const [subscription, usage, alerts] = await Promise.all([
      latestSubscription(db, organization),
      db.from("credit_usage_daily").select("day, event_key, events, credits")
        .eq("organization_id", organization).gte("day", since).order("day"),
      db.from("billing_alerts").select("id, kind, severity, title, message, data, created_at")
        .eq("organization_id", organization).is("dismissed_at", null).order("created_at", { ascending: false }),
    ]);
    return json({ subscription, balance, usage: dataOf(usage), alerts: dataOf(alerts) });
  });

  app.get("/history/:org_id", async (c) => {
    const organization = organizationParam(c);
    const parsed = page.safeParse(c.req.query());
    if (!parsed.success) throw new ApiError(400, "invalid_request", describeIssues(parsed.error));
    await requireMember(c, organization);
    const { limit, offset } = parsed.data;
    const db = asCaller(c);
    const result = await db.from("billing_history")
      .select("id, kind, status, description, amount, currency, invoice_url, invoice_pdf_url, receipt_url, occurred_at", { count: "exact" })
      .eq("organization_id", organization).order("occurred_at", { ascending: false }).range(offset, offset + limit - 1);
    if (result.error?.code === "PGRST103") {
      // PostgREST answers 416 for a range past the end: that is an empty page, with the total.
      const total = await db.from("billing_history").select("id", { count: "exact", head: true })
        .eq("organization_id", organization);
      dataOf(total);
      return json({ history: [], total: total.count ?? 0, limit, offset });
    }
    return json({ history: dataOf(result), total: result.count, limit, offset });
  });

  app.options("*", () => new Response(null, { status: 204, headers: corsHeaders }));
  app.notFound(() => errorResponse(404, "not_found", "No such billing endpoint."));
  app.onError((error) => {
    if (error instanceof ApiError) return errorResponse(error.status, error.code, error.message);
    if (error instanceof DatabaseFailure) {
      if (error.unavailable) return serviceUnavailable();
      const mapped = fromDatabase(error);
      if (mapped) return errorResponse(mapped.status, mapped.code, mapped.message);
    }
    if (isStripeUnavailable(error)) {
      return errorResponse(503, "payment_provider_unavailable", "Stripe could not be reached; try again shortly.", {
        "Retry-After": String(RETRY_AFTER_SECONDS),
      });
    }
    if (isStripeRefusal(error)) {
      // Stripe refused a request we built (what we sent no longer fits what Stripe holds):
      // not the caller's fault and not retriable as it is; its message may name our objects.
      console.error(JSON.stringify({ message: "Stripe refused a billing request", error: String(error) }));
      return errorResponse(502, "payment_provider_rejected", "The payment provider refused the request; nothing was charged. Try again later or contact support.");
    }
    console.error(JSON.stringify({ message: "billing request failed", error: String(error) }));
    return errorResponse(500, "internal_error", "Something went wrong on our side.");
  });

  return app;
}

function isStripeUnavailable(error: unknown): boolean {
  const type = stripeErrorType(error);
  return type === "StripeConnectionError" || type === "StripeAPIError" || type === "StripeRateLimitError";
}

/** Stripe answered "invalid request" (400/404) or "idempotency key reused with other parameters". */
function isStripeRefusal(error: unknown): boolean {
  const type = stripeErrorType(error);
  return type === "StripeInvalidRequestError" || type === "StripeIdempotencyError";
}

