/**
 * JSON responses, the error envelope `{"error": {"code", "message"}}`, and CORS, the same
 * for every function.
 */
export const corsHeaders: Record<string, string> = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Headers": "authorization, x-client-info, apikey, content-type, idempotency-key",
  "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
};

export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", ...corsHeaders, ...headers },
  });
}

/** An error for the caller: a code they can branch on and a sentence; never a stack or SQL. */
export function errorResponse(
  status: number,
  code: string,
  message: string,
  headers: Record<string, string> = {},
): Response {
  return json({ error: { code, message } }, status, headers);
}

/** Seconds a caller should wait before retrying after a 503 (the database or Stripe is down). */
export const RETRY_AFTER_SECONDS = 5;

/** 503 with Retry-After: the database cannot be reached right now; nothing was done. */
export function serviceUnavailable(): Response {
  return errorResponse(
    503,
    "service_unavailable",
    "The billing database is unavailable or busy right now; nothing was changed. Try again shortly.",
    { "Retry-After": String(RETRY_AFTER_SECONDS) },
  );
}

/** Answers a CORS preflight, or returns null for any other request. */
export function preflight(request: Request): Response | null {
  return request.method === "OPTIONS" ? new Response(null, { status: 204, headers: corsHeaders }) : null;
}
