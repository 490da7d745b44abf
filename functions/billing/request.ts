/**
 * The request plumbing every billing route shares: the dependencies the root app hands each
 * request (`c.var.deps`), the caller (their JWT, a client acting as them, their role in an
 * organization), and reading a JSON body or a path parameter through a zod schema. Each
 * helper throws an ApiError that the root app's error handler turns into the envelope.
 */
import type { Context } from "hono";
import type Stripe from "stripe";
import type { z } from "zod";
import { type DatabaseClient, dataOf } from "../_shared/supabase.ts";
import { describeIssues, unacceptableJson, uuid } from "../_shared/validate.ts";
import { ApiError } from "./api-error.ts";

export interface BillingDeps {
  stripe: Stripe;
  /** Service-role client: customers, prices. Never used to read a caller's data. */
  service: DatabaseClient;
  /** A client acting as the caller (their Authorization header). */
  userClient(authorization: string): DatabaseClient;
  appUrl: string;
}

/** The Hono environment of every billing sub-app: the root app sets `deps` before any route runs. */
export interface BillingEnv {
  Variables: { deps: BillingDeps };
}

export type BillingContext = Context<BillingEnv>;

/** The body limit of every route but the batch: the largest of them (consume with metadata) fits. */
export const MAX_BODY_BYTES = 16 * 1024;

const tooLarge = (limit: number) => new ApiError(413, "payload_too_large", `The body must be at most ${limit} bytes.`);

/**
 * The request body as JSON checked against a schema. Refused, each with a 4xx: another
 * content type, more than `maxBytes`, bytes that are not UTF-8, text that is not JSON,
 * text Postgres cannot hold or that does not round-trip (NUL, lone surrogates), nesting
 * deeper than any body needs, and anything the schema does not allow.
 *
 * With `emptyAs`, a request with no body at all (whatever its Content-Type) reads as that
 * value: routes whose every field is optional may be called without one.
 */
export async function readJson<T>(
  c: BillingContext,
  schema: z.ZodType<T>,
  options: { maxBytes?: number; emptyAs?: unknown } = {},
): Promise<T> {
  const maxBytes = options.maxBytes ?? MAX_BODY_BYTES;
  const length = c.req.header("content-length");
  if ("emptyAs" in options && (length === "0" || (length === undefined && c.req.raw.body === null))) {
    return parseWith(schema, options.emptyAs);
  }
  const type = c.req.header("content-type") ?? "";
  if (!type.toLowerCase().startsWith("application/json")) {
    throw new ApiError(415, "unsupported_media_type", "Send a JSON body with Content-Type: application/json.");
  }
  const declared = Number(length ?? "0");
  if (declared > maxBytes) throw tooLarge(maxBytes);
  const bytes = await c.req.arrayBuffer();
  if (bytes.byteLength > maxBytes) throw tooLarge(maxBytes);
  let text: string;
  try {
    // fatal: two bodies that differ only in invalid bytes must not both read as U+FFFD.
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch {
    throw new ApiError(400, "invalid_request", "The body must be UTF-8 text.");
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new ApiError(400, "invalid_json", "The body is not valid JSON.");
  }
  const unacceptable = unacceptableJson(body);
  if (unacceptable) throw new ApiError(400, "invalid_request", `The body was refused: ${unacceptable}.`);
  return parseWith(schema, body);
}

function parseWith<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) throw new ApiError(400, "invalid_request", describeIssues(parsed.error));
  return parsed.data;
}

/** A path parameter that must be a UUID (an organization or a reservation id); 400 otherwise. */
export function uuidParam(c: BillingContext, name: string, what: string): string {
  const parsed = uuid.safeParse(c.req.param(name));
  if (!parsed.success) throw new ApiError(400, "invalid_request", `The ${what} id must be a UUID.`);
  return parsed.data;
}

/** The `{org_id}` of a route's path. */
export function organizationParam(c: BillingContext): string {
  return uuidParam(c, "org_id", "organization");
}

/** The caller's Authorization header (the platform verified the JWT before we ran). */
export function authorization(c: BillingContext): string {
  const header = c.req.header("authorization");
  if (!header) throw new ApiError(401, "unauthorized", "Sign in to use the billing API.");
  return header;
}

/** A database client acting as the caller, so RLS and the SQL functions' own checks decide. */
export function asCaller(c: BillingContext): DatabaseClient {
  return c.var.deps.userClient(authorization(c));
}

/** The caller's user id, from their JWT (which the platform verified before we ran). */
function callerId(c: BillingContext): string {
  const token = authorization(c).replace(/^Bearer\s+/i, "");
  const payload = token.split(".")[1];
  let sub: unknown;
  try {
    sub = payload ? JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/"))).sub : undefined;
  } catch {
    sub = undefined;
  }
  if (typeof sub !== "string") throw new ApiError(401, "unauthorized", "Sign in to use the billing API.");
  return sub;
}

/** The caller's role in the organization (their own membership row, as RLS shows it), or null. */
async function roleIn(c: BillingContext, organization: string): Promise<string | null> {
  const data = dataOf(
    await asCaller(c).from("organization_members").select("role")
      .eq("organization_id", organization).eq("user_id", callerId(c)).maybeSingle(),
  );
  return data?.role ?? null;
}

/** Raises 403 unless the caller belongs to the organization (rather than answering "nothing here"). */
export async function requireMember(c: BillingContext, organization: string): Promise<void> {
  if (!(await roleIn(c, organization))) {
    throw new ApiError(403, "forbidden", "You are not a member of this organization.");
  }
}

/** Raises 403 unless the caller is an owner or admin of the organization. */
export async function requireManager(c: BillingContext, organization: string): Promise<void> {
  const role = await roleIn(c, organization);
  if (!role || !["owner", "admin"].includes(role)) {
    throw new ApiError(403, "forbidden", "Only an owner or admin of the organization can manage billing.");
  }
}
