/**
 * The JWT secret and the two API keys of the local stack. Like `supabase start`, the keys are
 * JWTs signed with the project's secret (HS256): `anon` for browsers, `service_role` for
 * servers. They are derived deterministically, so they stay the same across restarts.
 */
import { createSecretKey, type KeyObject } from "node:crypto";
import { SignJWT, jwtVerify, errors as joseErrors, type JWTPayload } from "jose";

/** The local development secret (the same public value `supabase start` uses); never for production. */
export const DEFAULT_JWT_SECRET = "super-secret-jwt-token-with-at-least-32-characters-long";

export interface ApiKeys {
  jwtSecret: string;
  anonKey: string;
  serviceRoleKey: string;
}

/** Issued-at and expiry of the API keys: fixed, so the keys are stable (expiry in 2036). */
const KEY_ISSUED_AT = 1_767_225_600;
const KEY_EXPIRES_AT = 2_082_758_400;

export function secretBytes(secret: string): Uint8Array {
  return new TextEncoder().encode(secret);
}

async function signApiKey(secret: string, role: "anon" | "service_role"): Promise<string> {
  return new SignJWT({ iss: "supabase-demo", role })
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt(KEY_ISSUED_AT)
    .setExpirationTime(KEY_EXPIRES_AT)
    .sign(secretBytes(secret));
}

/** The secret from JWT_SECRET (or the local default) and the API keys signed with it. */
export async function apiKeys(secret = process.env.JWT_SECRET || DEFAULT_JWT_SECRET): Promise<ApiKeys> {
  if (secret.length < 32) throw new Error("JWT_SECRET must be at least 32 characters long");
  return {
    jwtSecret: secret,
    anonKey: await signApiKey(secret, "anon"),
    serviceRoleKey: await signApiKey(secret, "service_role"),
  };
}

export type VerifiedToken =
  | { ok: true; claims: JWTPayload & Record<string, unknown> }
  | { ok: false; reason: "expired" | "invalid"; message: string };

/**
 * Verifies an HS256 token against the secret. Only HS256 is accepted, so `alg: none` and
 * tokens signed with other algorithms or secrets are refused.
 */
export async function verifyToken(token: string, secret: string): Promise<VerifiedToken> {
  const cacheKey = `${secret}\u0000${token}`;
  const cached = verifiedTokens.get(cacheKey);
  if (cached && (cached.exp === undefined || cached.exp > Date.now() / 1000)) return { ok: true, claims: cached };
  try {
    const { payload } = await jwtVerify(token, secretKey(secret), { algorithms: ["HS256"] });
    const claims = payload as JWTPayload & Record<string, unknown>;
    if (verifiedTokens.size >= VERIFIED_TOKEN_CACHE_SIZE) verifiedTokens.delete(verifiedTokens.keys().next().value!);
    verifiedTokens.set(cacheKey, claims);
    return { ok: true, claims };
  } catch (error) {
    if (error instanceof joseErrors.JWTExpired) return { ok: false, reason: "expired", message: "JWT expired" };
    const message = error instanceof Error ? error.message : String(error);
    return { ok: false, reason: "invalid", message };
  }
}

/**
 * Tokens already verified (signature and claims), so the API keys and a signed-in user's
 * token are checked once rather than on every request; expiry is still checked on each use.
 */
const verifiedTokens = new Map<string, JWTPayload & Record<string, unknown>>();
const VERIFIED_TOKEN_CACHE_SIZE = 10_000;
const secretKeys = new Map<string, KeyObject>();

function secretKey(secret: string): KeyObject {
  let key = secretKeys.get(secret);
  if (!key) secretKeys.set(secret, (key = createSecretKey(Buffer.from(secret, "utf8"))));
  return key;
}

/** The bearer token of an Authorization header, if it has one. */
export function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? "");
  return match?.[1];
}
