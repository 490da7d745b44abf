/**
 * Two-phase consumption (CONTRACT.md, "Reservations"), mounted under `/credits`:
 * `POST /credits/reserve` holds cost × quantity credits for a while, then
 * `POST /credits/reservations/{id}/settle` spends what was used and frees the rest, or
 * `POST /credits/reservations/{id}/release` frees all of it. The SQL functions decide who may
 * (as for consume) and hold every rule; a reservation id of another organization is as
 * unknown as one that never existed.
 */
import { Hono } from "hono";
import { json } from "../../_shared/http.ts";
import { rpc } from "../../_shared/supabase.ts";
import { releaseBody, reserveBody, settleBody } from "../../_shared/validate.ts";
import { withErrorCodes } from "../api-error.ts";
import { asCaller, type BillingContext, type BillingEnv, readJson, uuidParam } from "../request.ts";
import { alertingSpendLimit } from "../spend-limit-refusal.ts";

export const reservations = new Hono<BillingEnv>();

/** What settle and release answer when the reservation cannot be acted on. */
const reservationErrors = {
  PT404: { status: 404, code: "reservation_not_found" },
  PT409: { status: 409, code: "reservation_closed" },
  PT410: { status: 410, code: "reservation_expired" },
};

const reservationParam = (c: BillingContext) => uuidParam(c, "reservation_id", "reservation");

reservations.post("/reserve", async (c) => {
  const body = await readJson(c, reserveBody);
  const result = await alertingSpendLimit(c, body.organization_id, () =>
    rpc(asCaller(c), "reserve_credits", {
      p_organization_id: body.organization_id,
      p_event_key: body.event_key,
      p_quantity: body.quantity ?? 1,
      p_idempotency_key: body.idempotency_key ?? null,
      p_ttl_seconds: body.ttl_seconds ?? 900,
      p_metadata: body.metadata ?? {},
    }));
  return json(result);
});

reservations.post("/reservations/:reservation_id/settle", async (c) => {
  const reservation = reservationParam(c);
  const body = await readJson(c, settleBody, { emptyAs: {} });
  const result = await withErrorCodes(reservationErrors, () =>
    rpc(asCaller(c), "settle_reservation", {
      p_reservation_id: reservation,
      p_quantity: body.quantity ?? null,
      p_metadata: body.metadata ?? {},
    }));
  return json(result);
});

reservations.post("/reservations/:reservation_id/release", async (c) => {
  const reservation = reservationParam(c);
  await readJson(c, releaseBody, { emptyAs: {} });
  const result = await withErrorCodes(reservationErrors, () =>
    rpc(asCaller(c), "release_reservation", { p_reservation_id: reservation }));
  return json(result);
});
