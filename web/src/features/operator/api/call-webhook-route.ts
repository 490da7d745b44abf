import { z } from "zod/mini";
import { BillingApiError } from "@/lib/errors";
import type { Backend } from "@/lib/supabase";

const errorEnvelope = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

/**
 * POSTs to one of the `stripe-webhook` function's operator routes (re-drive, reconcile) with
 * the operator's own access token: the function asks the database whether its bearer is an
 * operator. Non-2xx answers become a BillingApiError with the envelope's code and message.
 */
export async function callWebhookRoute(backend: Backend, path: string, body?: unknown): Promise<unknown> {
  const { data } = await backend.supabase.auth.getSession();
  const token = data.session?.access_token;
  if (!token) throw new BillingApiError(401, "not_signed_in", "Your session has ended. Sign in again.");
  const response = await fetch(`${backend.config.supabaseUrl}/functions/v1/stripe-webhook/${path}`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${token}`,
      apikey: backend.config.supabaseAnonKey,
      ...(body === undefined ? {} : { "content-type": "application/json" }),
    },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const payload: unknown = await response.json().catch(() => null);
  if (!response.ok) {
    const envelope = errorEnvelope.safeParse(payload);
    if (envelope.success) throw new BillingApiError(response.status, envelope.data.error.code, envelope.data.error.message);
    throw new BillingApiError(response.status, "http_error", `The webhook function answered ${response.status}.`);
  }
  return payload;
}
