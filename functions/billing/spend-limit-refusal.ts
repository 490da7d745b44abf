/**
 * The spend_limit alert when a call is refused. A consumption or reservation refused with
 * PT429 rolls back, and with it anything it would have raised; so when the billing API
 * answers 429 it asks the database (service role, `note_spend_limit_refused`, once per month
 * however often it is asked) to raise the month's alert. Direct SQL callers get the alert at
 * the next movement that reaches the limit, or from a batch refusal.
 */
import { DatabaseFailure, rpc } from "../_shared/supabase.ts";
import type { BillingContext } from "./request.ts";

/**
 * Runs a call for an organization; on PT429 raises the month's spend_limit alert, then
 * rethrows the refusal unchanged (the caller still gets 429). Raising the alert is best
 * effort: if it fails, the refusal still stands and the next refusal tries again.
 */
export async function alertingSpendLimit<T>(c: BillingContext, organization: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    if (error instanceof DatabaseFailure && error.code === "PT429") {
      try {
        await rpc(c.var.deps.service, "note_spend_limit_refused", { p_organization_id: organization });
      } catch (noteError) {
        console.error(JSON.stringify({
          message: "could not raise the spend_limit alert after a refusal",
          organization,
          error: String(noteError),
        }));
      }
    }
    throw error;
  }
}
