/** `GET /history/{org_id}?limit=&offset=`: the organization's payments and invoices, newest first, with the total. */
import { Hono } from "hono";
import { json } from "../../_shared/http.ts";
import { dataOf } from "../../_shared/supabase.ts";
import { describeIssues, page } from "../../_shared/validate.ts";
import { ApiError } from "../api-error.ts";
import { asCaller, type BillingEnv, organizationParam, requireMember } from "../request.ts";

export const history = new Hono<BillingEnv>();

history.get("/:org_id", async (c) => {
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
