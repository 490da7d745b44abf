/** An error from the billing Edge Function's `{"error": {"code", "message"}}` envelope. */
export class BillingApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "BillingApiError";
  }
}

/** A PostgREST / RPC error as supabase-js reports it, kept with its SQLSTATE. */
export class DatabaseError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = "DatabaseError";
  }
}

/**
 * The request never got an answer (network down, server stopped): supabase-js reports the
 * browser's fetch failure as a `TypeError: …` message with no code. Kept apart from real
 * errors so the page can say once that the service cannot be reached, keep the figures it
 * has, and retry, instead of printing "TypeError: Failed to fetch" in every card.
 */
export class ServiceUnreachableError extends Error {
  constructor(readonly detail: string) {
    super("The billing service cannot be reached.");
    this.name = "ServiceUnreachableError";
  }
}

/** Whether an error means the service could not be reached at all (see ServiceUnreachableError). */
export function isServiceUnreachable(error: unknown): boolean {
  if (error instanceof ServiceUnreachableError) return true;
  // fetch() itself rejects with a TypeError when no response arrives (the billing function's calls).
  return error instanceof TypeError;
}

const FRIENDLY: Record<string, string> = {
  "42501": "You are not allowed to do this in this organization.",
  PT402: "Not enough credits.",
  "22023": "That value is not valid.",
};

/** Throws a DatabaseError for a supabase-js `{ error }`, so fetchers can simply return data. */
export function throwIfError(error: { code?: string; message: string } | null): void {
  if (!error) return;
  if (!error.code && /^(TypeError|FetchError):/.test(error.message)) throw new ServiceUnreachableError(error.message);
  throw new DatabaseError(error.code ?? "unknown", error.message);
}

/** A sentence a member can read for any error a fetcher or mutation threw. */
export function errorMessage(error: unknown): string {
  if (error instanceof DatabaseError) return FRIENDLY[error.code] ?? error.message;
  if (isServiceUnreachable(error)) return "The billing service cannot be reached. Check your connection; this is retried by itself.";
  if (error instanceof Error) return error.message;
  return "Something went wrong.";
}

/**
 * PostgREST answers 416 (PGRST103) when a page starts past the last row, e.g. a stale page
 * number after a filter change; paged fetchers turn that into an empty page.
 */
export function isRangePastEnd(error: { code?: string } | null): boolean {
  return error?.code === "PGRST103";
}
