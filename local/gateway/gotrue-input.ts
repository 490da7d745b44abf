/**
 * What `/auth/v1` accepts, checked as GoTrue checks it (internal/api/mail.go `validateEmail`,
 * password.go `checkPasswordStrength`, helpers.go `retrieveRequestParams`), so a request the
 * hosted service refuses is refused here too, with its code and message, and nothing the
 * database cannot store (a NUL, a lone surrogate) ever reaches it as a 500.
 */
import { AuthError } from "./gotrue-errors.ts";
import { hasLoneSurrogate, hasNul } from "./text.ts";

/** GoTrue's own minimum (config.toml `auth.minimum_password_length`). */
export const MIN_PASSWORD_LENGTH = 6;
/** bcrypt reads at most 72 bytes; GoTrue refuses longer passwords rather than cutting them. */
export const MAX_PASSWORD_BYTES = 72;
/** GoTrue's limit on an email address, in bytes. */
export const MAX_EMAIL_BYTES = 255;
/**
 * User metadata travels in every access token, so it stays small. Hosted GoTrue only bounds
 * the whole body (1 MiB); this stand-in is stricter, like the billing metadata (16 KiB).
 */
export const MAX_USER_METADATA_BYTES = 16 * 1024;
/** Nesting deeper than any profile needs is refused before it is serialised. */
export const MAX_USER_METADATA_DEPTH = 32;

/**
 * The address format GoTrue checks (github.com/badoux/checkmail, the version GoTrue pins):
 * ASCII local part and host labels. Hosted GoTrue refuses anything else at sign-up.
 */
const EMAIL_FORMAT =
  /^[a-zA-Z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*$/;

const utf8Bytes = (text: string) => Buffer.byteLength(text, "utf8");

/**
 * The one rule for email case, on sign-up and sign-in alike: GoTrue lower-cases the address
 * (Go's Unicode-aware strings.ToLower) and compares it with the stored, lower-cased one.
 */
export function normaliseEmail(email: string): string {
  return email.toLowerCase();
}

/** A sign-up address: GoTrue's length and format checks, then the one case rule. */
export function signupEmail(email: string): string {
  if (utf8Bytes(email) > MAX_EMAIL_BYTES) throw new AuthError(400, "validation_failed", "An email address is too long");
  if (!EMAIL_FORMAT.test(email)) throw new AuthError(400, "validation_failed", "Unable to validate email address: invalid format");
  return normaliseEmail(email);
}

/** A new password (sign-up, password change): GoTrue's bounds, in bytes as bcrypt counts. */
export function checkNewPassword(password: string): void {
  if (utf8Bytes(password) > MAX_PASSWORD_BYTES) {
    throw new AuthError(400, "validation_failed", `Password cannot be longer than ${MAX_PASSWORD_BYTES} characters`);
  }
  if (hasNul(password)) {
    // pgcrypto's bcrypt (like every C bcrypt) stops at a NUL, so the rest would be ignored.
    throw new AuthError(400, "validation_failed", "Password cannot contain a NUL character");
  }
  if ([...password].length < MIN_PASSWORD_LENGTH) {
    throw new AuthError(422, "weak_password", `Password should be at least ${MIN_PASSWORD_LENGTH} characters.`, {
      weak_password: { reasons: ["length"] },
    });
  }
}

/**
 * True when a password could be the one stored: no stored password is longer than bcrypt
 * reads or holds a NUL, so such a sign-in fails as a wrong password instead of matching on
 * its first 72 bytes.
 */
export function couldBeStoredPassword(password: string): boolean {
  return utf8Bytes(password) <= MAX_PASSWORD_BYTES && !hasNul(password);
}

/**
 * Walks every key and string of a parsed body (iteratively: deep nesting cannot overflow the
 * stack) and refuses what Postgres cannot store: a lone surrogate (UTF-8 would silently turn it
 * into U+FFFD) and a NUL (text and jsonb refuse it).
 */
function checkStrings(value: unknown): void {
  const pending: unknown[] = [value];
  while (pending.length > 0) {
    const item = pending.pop();
    if (typeof item === "string") {
      if (hasLoneSurrogate(item)) throw new AuthError(400, "validation_failed", "The request contains invalid Unicode (a lone surrogate)");
      if (hasNul(item)) throw new AuthError(400, "validation_failed", "The request contains a NUL character");
    } else if (Array.isArray(item)) {
      pending.push(...item);
    } else if (item !== null && typeof item === "object") {
      for (const [key, child] of Object.entries(item)) pending.push(key, child);
    }
  }
}

/** How deeply a value nests, counted without recursion. */
function depthOf(value: unknown): number {
  let deepest = 0;
  const pending: Array<[unknown, number]> = [[value, 0]];
  while (pending.length > 0) {
    const [item, depth] = pending.pop()!;
    if (item === null || typeof item !== "object") continue;
    deepest = Math.max(deepest, depth + 1);
    if (deepest > MAX_USER_METADATA_DEPTH) return deepest;
    for (const child of Object.values(item)) pending.push([child, depth + 1]);
  }
  return deepest;
}

/** GoTrue's answer to a body it cannot unmarshal into its parameters. */
function badJson(detail: string): AuthError {
  return new AuthError(400, "bad_json", `Could not parse request body as JSON: ${detail}`);
}

/** The body as a JSON object whose strings Postgres can store. */
export async function readJsonBody(request: Request): Promise<Record<string, unknown>> {
  let parsed: unknown;
  try {
    parsed = JSON.parse((await request.text()) || "{}");
  } catch {
    throw badJson("invalid JSON");
  }
  if (parsed === null || typeof parsed !== "object" || Array.isArray(parsed)) throw badJson("expected a JSON object");
  checkStrings(parsed);
  return parsed as Record<string, unknown>;
}

/** A string parameter: absent or null reads as "", any other type is GoTrue's bad_json. */
export function stringField(body: Record<string, unknown>, name: string): string {
  const value = body[name];
  if (value === undefined || value === null) return "";
  if (typeof value !== "string") throw badJson(`${name} must be a string`);
  return value;
}

/** The `data` parameter (user metadata): absent, null or a JSON object, within the limits. */
export function metadataField(body: Record<string, unknown>): Record<string, unknown> | undefined {
  const data = body.data;
  if (data === undefined || data === null) return undefined;
  if (typeof data !== "object" || Array.isArray(data)) throw badJson("data must be a JSON object");
  return data as Record<string, unknown>;
}

/** Refuses user metadata that is too deep or too large to carry in every token. */
export function checkMetadataSize(metadata: Record<string, unknown>): void {
  if (depthOf(metadata) > MAX_USER_METADATA_DEPTH) {
    throw new AuthError(400, "validation_failed", `User metadata is nested too deeply (max ${MAX_USER_METADATA_DEPTH} levels)`);
  }
  if (utf8Bytes(JSON.stringify(metadata)) > MAX_USER_METADATA_BYTES) {
    throw new AuthError(400, "validation_failed", `User metadata is too large (max ${MAX_USER_METADATA_BYTES} bytes)`);
  }
}
