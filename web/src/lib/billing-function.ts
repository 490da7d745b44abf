import { z } from "zod/mini";
import { BillingApiError } from "./errors";
import type { Backend } from "./supabase";

const errorEnvelope = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

/**
 * Calls the `billing` Edge Function (`/functions/v1/billing/...`) as the signed-in user.
 * The access token is read (and refreshed if needed) at call time, never cached here.
 * Non-2xx answers become a BillingApiError carrying the envelope's code and message.
 */
export async function callBillingFunction<T>(
  backend: Backend,
  request: { method: "GET" | "POST"; path: string; body?: unknown },
  schema: z.ZodMiniType<T>,
): Promise<T> {
  const { data } = await backend.supabase.auth.getSession();
  const token = data.session?.access_token;
  if (!token) throw new BillingApiError(401, "not_signed_in", "Your session has ended. Sign in again.");
  const response = await fetch(`${backend.config.supabaseUrl}/functions/v1/billing${request.path}`, {
    method: request.method,
    headers: {
      authorization: `Bearer ${token}`,
      apikey: backend.config.supabaseAnonKey,
      ...(request.body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: request.body === undefined ? undefined : JSON.stringify(request.body),
  });
  const payload: unknown = await response.json().catch(() => null);
  if (!response.ok) {
    const envelope = errorEnvelope.safeParse(payload);
    if (envelope.success) {
      throw new BillingApiError(response.status, envelope.data.error.code, envelope.data.error.message);
    }
    throw new BillingApiError(response.status, "http_error", `The billing service answered ${response.status}.`);
  }
  const parsed = schema.safeParse(payload);
  if (!parsed.success) throw new BillingApiError(response.status, "bad_response", "The billing service sent an unexpected answer.");
  return parsed.data;
}
