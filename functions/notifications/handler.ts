/**
 * The function's one route, `POST /notifications/deliver`, for the scheduler (pg_cron with
 * pg_net on hosted Supabase, the local stack's scheduler under `npm start`) and operators:
 * it runs one delivery round and answers `{delivered, failed, retried, emailed}`. Only the
 * service role key may call it (checked here: verify_jwt is off so the new non-JWT secret
 * keys work too).
 */
import { errorResponse, json, serviceUnavailable } from "../_shared/http.ts";
import { isServiceRole } from "../_shared/service-key.ts";
import { DatabaseFailure } from "../_shared/supabase.ts";
import { deliverNotifications, type DeliveryDeps } from "./deliver.ts";

export function createNotificationsHandler(
  deps: DeliveryDeps & { serviceRoleKey: string },
): (request: Request) => Promise<Response> {
  return async (request) => {
    const path = new URL(request.url).pathname.replace(/\/+$/, "");
    if (!path.endsWith("/notifications/deliver")) {
      return errorResponse(404, "not_found", "The notifications function has one route: POST /notifications/deliver.");
    }
    if (request.method !== "POST") return errorResponse(405, "method_not_allowed", "Use POST.");
    if (!isServiceRole(request, deps.serviceRoleKey)) {
      return errorResponse(401, "unauthorized", "Delivering notifications needs the service role key.");
    }
    await request.body?.cancel();
    try {
      return json(await deliverNotifications(deps));
    } catch (error) {
      deps.log("delivery round failed", { error: error instanceof Error ? error.message : String(error) });
      if (error instanceof DatabaseFailure && error.unavailable) return serviceUnavailable();
      return errorResponse(500, "delivery_failed", "The delivery round failed; the scheduler will run it again.");
    }
  };
}
