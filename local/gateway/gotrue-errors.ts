/**
 * GoTrue's error body and the JSON responses of `/auth/v1`, so supabase-js callers see the
 * same `error.code`, `error.status` and `error.name` as against hosted Supabase Auth.
 */

/** The API version supabase-js asks for with `X-Supabase-Api-Version`. */
export const API_VERSION = "2024-01-01";

/** An error answered the way GoTrue answers it. */
export class AuthError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly extra: Record<string, unknown> = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

/** A JSON response as GoTrue sends it. */
export function json(body: unknown, status = 200, headers: Record<string, string> = {}): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "Content-Type": "application/json", "X-Supabase-Api-Version": API_VERSION, ...headers },
  });
}

/**
 * GoTrue's error body: with the `X-Supabase-Api-Version: 2024-01-01` header supabase-js
 * sends, `{code, message}`; for older clients `{code: status, error_code, msg}`.
 */
export function authErrorResponse(request: Request, error: AuthError): Response {
  const version = request.headers.get("x-supabase-api-version");
  const body = version && version >= API_VERSION
    ? { code: error.code, message: error.message, ...error.extra }
    : { code: error.status, error_code: error.code, msg: error.message, ...error.extra };
  return json(body, error.status, error.headers);
}
