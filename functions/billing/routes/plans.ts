/** `GET /plans`: the active plans, and (with `?organization_id=`) whether its checkout would include a trial. */
import { Hono } from "hono";
import { json } from "../../_shared/http.ts";
import { dataOf } from "../../_shared/supabase.ts";
import { organizationId } from "../../_shared/validate.ts";
import { ApiError } from "../api-error.ts";
import { asCaller, type BillingEnv, requireMember } from "../request.ts";
import { trialEligibility } from "../trial.ts";

export const plans = new Hono<BillingEnv>();

plans.get("/", async (c) => {
  const data = dataOf(
    await asCaller(c).from("subscription_plans")
      .select("code, name, description, currency, monthly_unit_amount, annual_unit_amount, monthly_credits, annual_credits, features, trial_days, trial_credits")
      .eq("is_active", true).order("sort_order"),
  );
  const organization = c.req.query("organization_id");
  if (organization === undefined) return json({ plans: data });
  const parsed = organizationId.safeParse(organization);
  if (!parsed.success) throw new ApiError(400, "invalid_request", "The organization id must be a UUID.");
  await requireMember(c, parsed.data);
  return json({ plans: data, trial: await trialEligibility(asCaller(c), parsed.data) });
});
