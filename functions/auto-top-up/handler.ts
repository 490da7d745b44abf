/**
 * The function's one route, `POST /auto-top-up/run`, for the scheduler (pg_cron with pg_net on
 * hosted Supabase, the local stack's scheduler under `npm start`) and operators: one run of
 * the job, answered with its counts. Only the service role key may call it (checked here;
 * verify_jwt is off so the new non-JWT secret keys work too).
 */
import { z } from "zod";
import { errorResponse, json, serviceUnavailable } from "../_shared/http.ts";
import { isServiceRole } from "../_shared/service-key.ts";
import { DatabaseFailure } from "../_shared/supabase.ts";
import { readOptionalBody } from "../_shared/validate.ts";
import { runAutoTopUps, type RunDeps } from "./run.ts";

/** The schedule names itself with `job`; nothing else is accepted. */
const runBody = z.strictObject({ job: z.string().max(100).optional() });

export function createAutoTopUpHandler(
  deps: RunDeps & { serviceRoleKey: string },
): (request: Request) => Promise<Response> {
  return async (request) => {
    const path = new URL(request.url).pathname.replace(/\/+$/, "");
    if (!path.endsWith("/auto-top-up/run")) {
      return errorResponse(404, "not_found", "The auto-top-up function has one route: POST /auto-top-up/run.");
    }
    if (request.method !== "POST") return errorResponse(405, "method_not_allowed", "Use POST.");
    if (!isServiceRole(request, deps.serviceRoleKey)) {
      return errorResponse(401, "unauthorized", "Running auto top-ups needs the service role key.");
    }
    const read = await readOptionalBody(request, runBody);
    if (read.error) return read.error;
    try {
      return json(await runAutoTopUps(deps));
    } catch (error) {
      deps.log("auto top-up run failed", { error: error instanceof Error ? error.message : String(error) });
      if (error instanceof DatabaseFailure && error.unavailable) return serviceUnavailable();
      return errorResponse(500, "run_failed", "The auto top-up run failed; the schedule runs it again shortly.");
    }
  };
}
