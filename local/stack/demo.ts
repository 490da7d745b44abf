/**
 * The demo login `npm start` prints: a user who owns "Demo Organization" with a few
 * purchased credits. Created on first start and left alone afterwards (idempotent).
 */
import { createUser } from "../gateway/gotrue.ts";
import { withClient } from "./database.ts";

export interface DemoAccount {
  email: string;
  password: string;
  organizationId: string;
  organizationName: string;
}

export const DEMO_EMAIL = "demo@example.com";
export const DEMO_PASSWORD = "demo-password";
const DEMO_ORGANIZATION = "Demo Organization";
const DEMO_CREDITS = 500;

/** Ensures the demo user, its organization (as owner) and its welcome credits exist. */
export async function ensureDemoAccount(databaseUrl: string): Promise<DemoAccount> {
  return withClient(databaseUrl, async (client) => {
    await client.query("begin");
    try {
      // Serialises two first starts racing each other.
      await client.query("select pg_advisory_xact_lock(hashtext('local-demo-account'))");
      const existing = await client.query<{ id: string }>("select id from auth.users where email = $1", [DEMO_EMAIL]);
      const userId = existing.rows[0]?.id ?? (await createUser(client, DEMO_EMAIL, DEMO_PASSWORD, { full_name: "Demo Owner" })).id;
      const organization = await client.query<{ id: string }>(
        `select o.id from public.organizations o
           join public.organization_members m on m.organization_id = o.id and m.user_id = $1 and m.role = 'owner'
          where o.name = $2 order by o.created_at limit 1`,
        [userId, DEMO_ORGANIZATION],
      );
      let organizationId = organization.rows[0]?.id;
      if (!organizationId) {
        const created = await client.query<{ id: string }>(
          "insert into public.organizations (name, created_by) values ($1, $2) returning id",
          [DEMO_ORGANIZATION, userId],
        );
        organizationId = created.rows[0]!.id;
        await client.query(
          "insert into public.organization_members (organization_id, user_id, role) values ($1, $2, 'owner')",
          [organizationId, userId],
        );
      }
      // The reference makes the grant happen once, however often this runs.
      await client.query("select public.grant_credits($1, $2, 'purchased', null, $3)", [
        organizationId,
        DEMO_CREDITS,
        `local-demo-welcome:${organizationId}`,
      ]);
      await client.query("commit");
      return { email: DEMO_EMAIL, password: DEMO_PASSWORD, organizationId, organizationName: DEMO_ORGANIZATION };
    } catch (error) {
      await client.query("rollback");
      throw error;
    }
  });
}
