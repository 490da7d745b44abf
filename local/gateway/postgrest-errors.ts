/**
 * PostgREST's error body (`code`, `message`, `details`, `hint`) and the HTTP status it gives
 * each SQLSTATE, so supabase-js callers see the same `error` and `status` as on hosted Supabase.
 */
import type pg from "pg";
import { databaseUnavailability, RETRY_AFTER_SECONDS } from "./database-pool.ts";

export interface PostgrestErrorBody {
  code: string;
  message: string;
  details: string | null;
  hint: string | null;
}

/** An error the gateway answers with directly (parse errors, unknown names, unsupported features). */
export class PostgrestHttpError extends Error {
  constructor(
    readonly status: number,
    readonly body: PostgrestErrorBody,
    readonly headers: Record<string, string> = {},
  ) {
    super(body.message);
  }
}

export function postgrestError(
  status: number,
  code: string,
  message: string,
  details: string | null = null,
  hint: string | null = null,
): PostgrestHttpError {
  return new PostgrestHttpError(status, { code, message, details, hint });
}

/** A 400 for a PostgREST feature the local gateway does not implement; it never guesses. */
export function unsupported(feature: string): PostgrestHttpError {
  return postgrestError(
    400,
    "PGRST127",
    `Unsupported by the local gateway: ${feature}`,
    "The local stand-in for PostgREST implements the subset of PostgREST this product uses.",
    "Run against hosted Supabase (or PostgREST) for this feature, or extend local/gateway.",
  );
}

/** PostgREST's status for a SQLSTATE (see its "HTTP status codes" reference). */
export function statusForSqlState(code: string, role: string): number {
  const custom = /^PT(\d{3})$/.exec(code);
  if (custom) return Number(custom[1]);
  switch (code) {
    case "42501":
      return role === "anon" ? 401 : 403;
    case "23503":
    case "23505":
    case "40001":
      return 409;
    case "25006":
      return 405;
    case "42883":
    case "42P01":
      return 404;
    case "P0001":
      return 400;
    case "53400":
      return 500;
  }
  const prefix = code.slice(0, 2);
  switch (prefix) {
    case "08":
    case "53":
      return 503;
    case "0L":
    case "0P":
    case "28":
      return 403;
    case "22":
    case "23":
    case "42":
      return 400;
    case "09":
    case "25":
    case "2D":
    case "38":
    case "39":
    case "3B":
    case "40":
    case "54":
    case "55":
    case "57":
    case "58":
    case "F0":
    case "HV":
    case "P0":
    case "XX":
      return 500;
  }
  return 400;
}

function isDatabaseError(error: unknown): error is pg.DatabaseError {
  return typeof error === "object" && error !== null && "code" in error && typeof (error as { code: unknown }).code === "string" && "severity" in error;
}

/**
 * PostgREST's answer while the database cannot serve: 503 with Retry-After, `PGRST000` when no
 * connection could be opened and `PGRST001` when the one in use was lost (both retriable), or
 * 504 `PGRST003` when no pooled connection came free in time.
 */
export function databaseUnavailable(error: unknown): PostgrestHttpError | undefined {
  const reason = databaseUnavailability(error);
  if (!reason) return undefined;
  const details = error instanceof Error ? error.message : null;
  const headers = { "Retry-After": String(RETRY_AFTER_SECONDS) };
  if (reason === "timeout") {
    return new PostgrestHttpError(504, { code: "PGRST003", message: "Timed out acquiring connection from connection pool.", details, hint: null }, headers);
  }
  return new PostgrestHttpError(
    503,
    reason === "unreachable"
      ? { code: "PGRST000", message: "Database connection error. Retrying the connection.", details, hint: null }
      : { code: "PGRST001", message: "Database client error. Retrying the connection.", details, hint: null },
    headers,
  );
}

/** Turns an error from Postgres into PostgREST's status and body; anything else is a 500. */
export function fromDatabaseError(error: unknown, role: string): PostgrestHttpError {
  if (error instanceof PostgrestHttpError) return error;
  const unavailable = databaseUnavailable(error);
  if (unavailable) return unavailable;
  if (isDatabaseError(error)) {
    const code = error.code ?? "XX000";
    const status = statusForSqlState(code, role);
    const headers: Record<string, string> = status === 401 ? { "WWW-Authenticate": "Bearer" } : {};
    return new PostgrestHttpError(
      status,
      { code, message: error.message, details: error.detail ?? null, hint: error.hint ?? null },
      headers,
    );
  }
  console.error("[gateway] unexpected error:", error);
  return postgrestError(500, "PGRSTX00", "Internal error in the local gateway");
}
