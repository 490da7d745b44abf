/**
 * Credits: `GET /credits/{org_id}` (the balance) and `POST /credits/consume`, both through
 * the SQL functions as the caller, which decide who may (CONTRACT.md).
 */
import { Hono } from "hono";
import { json } from "../../_shared/http.ts";
import { rpc } from "../../_shared/supabase.ts";
import { consumeBody } from "../../_shared/validate.ts";
import { asCaller, type BillingEnv, organizationParam, readJson } from "../request.ts";

export const credits = new Hono<BillingEnv>();

credits.get("/:org_id", async (c) => {
  const organization = organizationParam(c);
  const balance = await rpc(asCaller(c), "get_credit_balance", { p_organization_id: organization });
  return json({ balance });
});

credits.post("/consume", async (c) => {
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

