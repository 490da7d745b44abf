/**
 * Credits: `GET /credits/{org_id}` (the balance), `POST /credits/consume` and
 * `POST /credits/consume-batch`, all through the SQL functions as the caller, which decide
 * who may (CONTRACT.md).
 */
import { Hono } from "hono";
import { json } from "../../_shared/http.ts";
import { rpc } from "../../_shared/supabase.ts";
import { consumeBatchBody, consumeBody } from "../../_shared/validate.ts";
import { asCaller, type BillingEnv, organizationParam, readJson } from "../request.ts";
import { alertingSpendLimit } from "../spend-limit-refusal.ts";

/**
 * A full batch (1,000 events, each with a key and some metadata) is far past the 16 KiB of
 * the other routes; 1 MiB is room for that and still refuses a body no batch needs.
 */
export const MAX_BATCH_BODY_BYTES = 1024 * 1024;

export const credits = new Hono<BillingEnv>();

credits.get("/:org_id", async (c) => {
  const organization = organizationParam(c);
  const balance = await rpc(asCaller(c), "get_credit_balance", { p_organization_id: organization });
  return json({ balance });
});

credits.post("/consume", async (c) => {
  const body = await readJson(c, consumeBody);
  const result = await alertingSpendLimit(c, body.organization_id, () =>
    rpc(asCaller(c), "consume_credits", {
      p_organization_id: body.organization_id,
      p_event_key: body.event_key,
      p_quantity: body.quantity ?? 1,
      p_idempotency_key: body.idempotency_key ?? null,
      p_metadata: body.metadata ?? {},
    }));
  return json(result);
});

/**
 * Up to 1,000 events in one call and one transaction; each event succeeds or fails on its
 * own, so the answer is 200 with a result per event, in order (`consume_credits_batch`).
 */
credits.post("/consume-batch", async (c) => {
  const body = await readJson(c, consumeBatchBody, { maxBytes: MAX_BATCH_BODY_BYTES });
  const result = await rpc(asCaller(c), "consume_credits_batch", {
    p_organization_id: body.organization_id,
    p_events: body.events,
  });
  return json(result);
});
