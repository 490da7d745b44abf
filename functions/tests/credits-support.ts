/**
 * What the reservation and batch suites share: an organization with every role and some
 * purchased credits, a snapshot of everything a spending call could write (to prove that a
 * refused call wrote nothing), and a raw POST for bodies the JSON helper cannot send.
 */
import pg from "pg";
import { anonKey, db, type Member, ownerWithOrganization, required, signUp, supabaseUrl } from "./support.ts";

export const test = (name: string, fn: () => Promise<void>) =>
  Deno.test({ name, sanitizeOps: false, sanitizeResources: false, fn });

/** An organization with an owner, an admin, a member, a stranger (signed in, in no organization), and `credits` purchased credits. */
export async function organizationWithCredits(credits: number) {
  const { owner, organizationId } = await ownerWithOrganization("Metered Inc");
  const [admin, member, stranger] = await Promise.all([signUp(), signUp(), signUp()]);
  for (const [who, role] of [[admin, "admin"], [member, "member"]] as const) {
    const { error } = await owner.client.rpc("add_organization_member", { p_organization_id: organizationId, p_user_id: who.userId, p_role: role });
    if (error) throw new Error(error.message);
  }
  if (credits > 0) await grantPurchased(organizationId, credits);
  return { organizationId, owner, admin, member, stranger };
}

export async function grantPurchased(organizationId: string, credits: number) {
  const { error } = await db.rpc("grant_credits", { p_organization_id: organizationId, p_amount: credits, p_source: "purchased" });
  if (error) throw new Error(error.message);
}

/** Sets the organization's monthly spend limit as its owner does from the dashboard. */
export async function setSpendLimit(owner: Member, organizationId: string, monthlyCredits: number | null) {
  const { error } = await owner.client.rpc("set_spend_limit", { p_organization_id: organizationId, p_monthly_credits: monthlyCredits });
  if (error) throw new Error(error.message);
}

/**
 * Everything a consumption, reservation or settlement writes for the organization, counted
 * with the database owner's view, plus its spendable and reserved balance.
 */
export async function written(organizationId: string) {
  const client = new pg.Client({ connectionString: required("TEST_DATABASE_URL") });
  await client.connect();
  try {
    const { rows } = await client.query(
      `select (select count(*) from public.credit_transactions where organization_id = $1)::int as ledger_rows,
              (select count(*) from public.credit_consumptions where organization_id = $1)::int as consumptions,
              (select count(*) from public.credit_reservations where organization_id = $1)::int as reservations,
              (select count(*) from public.credit_reservations where organization_id = $1 and status = 'open')::int as open_reservations,
              (select coalesce(sum(amount), 0) from public.credit_transactions where organization_id = $1)::int as ledger_sum`,
      [organizationId],
    );
    return rows[0] as { ledger_rows: number; consumptions: number; reservations: number; open_reservations: number; ledger_sum: number };
  } finally {
    await client.end();
  }
}

/** POSTs raw bytes to a billing route as `member`, with exactly the headers given (beside the credentials). */
export async function rawPost(member: Member, path: string, body: string | Uint8Array<ArrayBuffer> | null, headers: Record<string, string>) {
  const response = await fetch(`${supabaseUrl}/functions/v1/billing${path}`, {
    method: "POST",
    headers: { Authorization: `Bearer ${member.token}`, apikey: anonKey, ...headers },
    body,
  });
  const text = await response.text();
  let parsed: { error?: { code?: string; message?: string } } & Record<string, unknown>;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = { text };
  }
  return { status: response.status, body: parsed };
}

/** A body of about `bytes` bytes that is valid JSON for the route except for its size. */
export function hugeBody(fields: Record<string, unknown>, bytes: number): string {
  return JSON.stringify({ ...fields, metadata: { blob: "x".repeat(bytes) } });
}
