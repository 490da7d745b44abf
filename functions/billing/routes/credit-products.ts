/** `GET /credit-products` (the packs on sale) and `POST /credit-products/checkout` (buy one; owners and admins). */
import { Hono } from "hono";
import { json } from "../../_shared/http.ts";
import { dataOf } from "../../_shared/supabase.ts";
import { creditCheckoutBody } from "../../_shared/validate.ts";
import { ApiError } from "../api-error.ts";
import { openCheckoutSession } from "../checkout-session.ts";
import { type ProductRow, productPrice } from "../stripe-catalog.ts";
import { customerFor } from "../stripe-customer.ts";
import { asCaller, type BillingEnv, readJson, requireManager } from "../request.ts";

export const creditProducts = new Hono<BillingEnv>();

creditProducts.get("/", async (c) => {
  const data = dataOf(
    await asCaller(c).from("credit_products")
      .select("code, name, description, credits, currency, unit_amount")
      .eq("is_active", true).order("sort_order"),
  );
  return json({ credit_products: data });
});

creditProducts.post("/checkout", async (c) => {
  const { stripe, service, appUrl } = c.var.deps;
  const body = await readJson(c, creditCheckoutBody);
  await requireManager(c, body.organization_id);
  const product = dataOf(
    await service.from("credit_products").select("*")
      .eq("code", body.product_code).eq("is_active", true).maybeSingle<ProductRow>(),
  );
  if (!product) throw new ApiError(404, "product_not_found", `There is no active credit pack ${body.product_code}.`);
  const customer = await customerFor(stripe, service, body.organization_id);
  const price = await productPrice(stripe, service, product);
  const metadata = { organization_id: body.organization_id, product_code: product.code };
  const session = await openCheckoutSession(stripe, "credits", body.organization_id, {
    mode: "payment",
    customer,
    line_items: [{ price, quantity: 1 }],
    client_reference_id: body.organization_id,
    metadata,
    payment_intent_data: { metadata },
    success_url: `${appUrl}/?checkout=success&kind=credits&session_id={CHECKOUT_SESSION_ID}`,
    cancel_url: `${appUrl}/?checkout=cancelled&kind=credits`,
  });
  return json({ url: session.url });
});
