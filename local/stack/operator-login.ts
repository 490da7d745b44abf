/**
 * The operator login `npm start` prints beside the demo login: a user listed in
 * billing_operators, who signs in to the dashboard's operator console (/operator). It belongs
 * to no organization: operators reach billing data only through the operator functions.
 * Created on first start and left alone afterwards (idempotent).
 */
import { createUser } from "../gateway/gotrue.ts";
import { withClient } from "./database.ts";

export interface OperatorLogin {
  email: string;
  password: string;
}

export const OPERATOR_EMAIL = "operator@example.com";
export const OPERATOR_PASSWORD = "operator-password";

/** Ensures the operator user exists and is a billing operator. */
export async function ensureOperatorLogin(databaseUrl: string): Promise<OperatorLogin> {
  return withClient(databaseUrl, async (client) => {
    await client.query("begin");
    try {
      // Serialises two first starts racing each other.
      await client.query("select pg_advisory_xact_lock(hashtext('local-operator-login'))");
      const existing = await client.query<{ id: string }>("select id from auth.users where email = $1", [OPERATOR_EMAIL]);
      const userId = existing.rows[0]?.id ??
        (await createUser(client, OPERATOR_EMAIL, OPERATOR_PASSWORD, { full_name: "Billing Operator" })).id;
      // As a database login (the service role's rights): only the platform appoints operators.
      await client.query("select public.add_billing_operator($1)", [userId]);
      await client.query("commit");
      return { email: OPERATOR_EMAIL, password: OPERATOR_PASSWORD };
    } catch (error) {
      await client.query("rollback");
      throw error;
    }
  });
}
