/**
 * The billing API (`/functions/v1/billing/*`), a Hono app with one sub-app per resource
 * (`routes/`), mounted as Hono's "Grouping routes" shows, over one request pipeline: the
 * dependencies set here for every request, the caller and body helpers in request.ts, and one
 * error handler (api-error.ts). Reads go through a client scoped to the caller's JWT, so RLS
 * decides what they see; spending goes through the SQL functions; checkout and portal need an
 * owner or admin, take prices and the customer from our tables, and build return URLs from
 * APP_URL, never from the request.
 */
import { Hono } from "hono";
import { corsHeaders, errorResponse } from "../_shared/http.ts";
import { errorAnswer } from "./api-error.ts";
import type { BillingDeps, BillingEnv } from "./request.ts";
import { creditProducts } from "./routes/credit-products.ts";
import { credits } from "./routes/credits.ts";
import { history } from "./routes/history.ts";
import { planChange } from "./routes/plan-change.ts";
import { plans } from "./routes/plans.ts";
import { reservations } from "./routes/reservations.ts";
import { subscription } from "./routes/subscription.ts";
import { summary } from "./routes/summary.ts";

export type { BillingDeps } from "./request.ts";

export function createBillingApp(deps: BillingDeps): Hono<BillingEnv> {
  const app = new Hono<BillingEnv>().basePath("/billing");

  app.use(async (c, next) => {
    c.set("deps", deps);
    await next();
  });

  app.route("/plans", plans);
  app.route("/subscription", planChange);
  app.route("/subscription", subscription);
  app.route("/credits", credits);
  app.route("/credits", reservations);
  app.route("/credit-products", creditProducts);
  app.route("/summary", summary);
  app.route("/history", history);

  app.options("*", () => new Response(null, { status: 204, headers: corsHeaders }));
  app.notFound(() => errorResponse(404, "not_found", "No such billing endpoint."));
  app.onError(errorAnswer);

  return app;
}
