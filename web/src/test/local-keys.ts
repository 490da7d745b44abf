/**
 * The local stack's API keys, derived the way local/gateway/keys.ts (and `supabase start`)
 * derive them: HS256 JWTs over fixed claims, signed with the public development secret.
 * Recomputed here with node:crypto so the web tests need nothing from local/.
 */
import { createHmac } from "node:crypto";

export const LOCAL_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long";

function base64url(value: string | Buffer): string {
  return Buffer.from(value).toString("base64url");
}

/** Signs the local stack's API key for a role. */
export function localApiKey(role: "anon" | "service_role", secret = LOCAL_JWT_SECRET): string {
  const header = base64url(JSON.stringify({ alg: "HS256", typ: "JWT" }));
  const payload = base64url(JSON.stringify({ iss: "supabase-demo", role, iat: 1_767_225_600, exp: 2_082_758_400 }));
  const signature = base64url(createHmac("sha256", secret).update(`${header}.${payload}`).digest());
  return `${header}.${payload}.${signature}`;
}

export const LOCAL_ANON_KEY = localApiKey("anon");
export const LOCAL_SERVICE_ROLE_KEY = localApiKey("service_role");
