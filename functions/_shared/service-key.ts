/**
 * The check for routes only the service role may call (the webhook's sweep and re-drive, the
 * notification delivery run by the schedule). These functions run with verify_jwt off, so
 * the route compares the presented key itself.
 */

/** Compares secrets without leaking, through timing, how much of them matched. */
function sameSecret(given: string, expected: string): boolean {
  const a = new TextEncoder().encode(given);
  const b = new TextEncoder().encode(expected);
  let difference = a.length ^ b.length;
  for (let i = 0; i < Math.max(a.length, b.length); i++) difference |= (a[i] ?? 0) ^ (b[i] ?? 0);
  return difference === 0;
}

/** True when the request carries `Authorization: Bearer <service role key>`. */
export function isServiceRole(request: Request, serviceRoleKey: string): boolean {
  return sameSecret((request.headers.get("authorization") ?? "").replace(/^Bearer\s+/i, ""), serviceRoleKey);
}
