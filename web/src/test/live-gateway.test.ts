/**
 * Opt-in: the API modules against a running Supabase-compatible API (the local gateway from
 * `npm start`, or a real project). Set WEB_LIVE_SUPABASE_URL (and, for a project other than
 * the local one, WEB_LIVE_ANON_KEY and WEB_LIVE_SERVICE_ROLE_KEY). Checks that every read
 * and RPC the dashboard makes (filters, `in`, `is null`, ranges with exact counts, RPCs)
 * works through RLS for a real user. Runs under jsdom like the app (localStorage, WebSocket).
 */
import { createClient } from "@supabase/supabase-js";
import { describe, expect, it } from "vitest";
import { fetchCreditBalance } from "@/features/billing/api/get-credit-balance";
import { fetchPlans } from "@/features/billing/api/get-plans";
import { fetchSubscription } from "@/features/billing/api/get-subscription";
import { fetchCheckoutApplied } from "@/features/billing/api/checkout-return";
import { fetchCreditProducts } from "@/features/billing/credits/api/get-credit-products";
import { fetchLedger, fetchWholeLedger } from "@/features/billing/credits/api/get-ledger";
import { fetchCreditPrecedence, setCreditPrecedence } from "@/features/billing/credits/api/credit-precedence";
import { fetchOrganizationManagers } from "@/features/billing/api/get-organization-managers";
import { dayOf } from "@/features/billing/credits/ledger-grouping";
import { addDays } from "@/features/billing/credits/ledger-range";
import { fetchThreshold, setThreshold } from "@/features/billing/credits/api/low-balance-threshold";
import { fetchBillingHistory } from "@/features/billing/history/api/get-billing-history";
import { dismissAlert } from "@/features/billing/overview/api/dismiss-alert";
import { fetchAlerts } from "@/features/billing/overview/api/get-alerts";
import { fetchUsage } from "@/features/billing/overview/api/get-usage";
import { createOrganization } from "@/features/organizations/api/create-organization";
import { fetchMemberships } from "@/features/organizations/api/get-memberships";
import { DatabaseError } from "@/lib/errors";
import { createSupabaseClient } from "@/lib/supabase";
import type { Database } from "@/types/database";
import { LOCAL_ANON_KEY, LOCAL_SERVICE_ROLE_KEY } from "./local-keys";

const url = process.env.WEB_LIVE_SUPABASE_URL;
const anonKey = process.env.WEB_LIVE_ANON_KEY ?? LOCAL_ANON_KEY;
const serviceKey = process.env.WEB_LIVE_SERVICE_ROLE_KEY ?? LOCAL_SERVICE_ROLE_KEY;

describe.skipIf(!url)("API modules against a live Supabase API", () => {
  it("reads and writes everything the dashboard needs, through RLS", async () => {
    const supabase = createSupabaseClient({ supabaseUrl: url!, supabaseAnonKey: anonKey, stripePublishableKey: null });
    const service = createClient<Database>(url!, serviceKey, { auth: { persistSession: false, storageKey: "service" } });
    const email = `web-live-${Date.now()}@example.test`;
    const signUp = await supabase.auth.signUp({ email, password: "correct horse battery" });
    expect(signUp.error).toBeNull();
    const userId = signUp.data.user!.id;

    const orgId = await createOrganization(supabase, "Live test org");
    const memberships = await fetchMemberships(supabase, userId);
    expect(memberships).toEqual([
      { organization: expect.objectContaining({ id: orgId, name: "Live test org" }), role: "owner" },
    ]);

    const grant = await service.rpc("grant_credits", {
      p_organization_id: orgId, p_amount: 1000, p_source: "purchased", p_reference: `live-${Date.now()}`,
    });
    expect(grant.error).toBeNull();
    for (let i = 0; i < 3; i += 1) {
      const consumed = await supabase.rpc("consume_credits", { p_organization_id: orgId, p_event_key: "ai_inference" });
      expect(consumed.error).toBeNull();
    }

    expect(await fetchCreditBalance(supabase, orgId)).toMatchObject({ total: 925, purchased: 925, subscription: 0 });
    const today = { from: dayOf(new Date().toISOString()), to: dayOf(new Date().toISOString()) };
    const all = await fetchLedger(supabase, orgId, { kind: null, range: today });
    expect(all.total).toBe(4);
    expect(all.rows[0]).toMatchObject({ kind: "consumption", amount: -25, balance_after: 925 });
    expect(all.catalog.eventNames.get("ai_inference")).toBe("AI inference");
    const grants = await fetchLedger(supabase, orgId, { kind: "grant", range: today });
    expect(grants.total).toBe(1);
    const yesterday = addDays(today.from, -1);
    expect((await fetchLedger(supabase, orgId, { kind: null, range: { from: yesterday, to: yesterday } })).rows).toEqual([]);
    expect((await fetchWholeLedger(supabase, orgId, { kind: null, range: today })).map((r) => r.amount)).toEqual([1000, -25, -25, -25]);

    expect(await fetchOrganizationManagers(supabase, orgId)).toEqual([{ user_id: userId, email, role: "owner" }]);
    expect(await fetchCreditPrecedence(supabase, orgId)).toBe("purchased_first");
    await setCreditPrecedence(supabase, orgId, "expiring_first");
    expect(await fetchCreditPrecedence(supabase, orgId)).toBe("expiring_first");

    const usage = await fetchUsage(supabase, orgId);
    expect(usage).toEqual([expect.objectContaining({ event_key: "ai_inference", credits: 75 })]);

    await setThreshold(supabase, orgId, 925);
    expect(await fetchThreshold(supabase, orgId)).toBe(925);
    await supabase.rpc("consume_credits", { p_organization_id: orgId, p_event_key: "api_call_basic" });
    const alerts = await fetchAlerts(supabase, orgId);
    expect(alerts.map((a) => a.kind)).toContain("low_balance");
    await dismissAlert(supabase, alerts[0]!.id);
    expect(await fetchAlerts(supabase, orgId)).toEqual([]);

    expect(await fetchSubscription(supabase, orgId)).toBeNull();
    expect((await fetchBillingHistory(supabase, orgId, 0)).total).toBe(0);
    expect(await fetchCheckoutApplied(supabase, orgId, { kind: "credits", sessionId: null }, new Date(0).toISOString())).toBe(false);
    expect(await fetchCheckoutApplied(supabase, orgId, { kind: "subscription", sessionId: null }, new Date(0).toISOString())).toBe(false);
    expect((await fetchPlans(supabase)).map((p) => p.code)).toEqual(["starter", "professional", "enterprise"]);
    expect((await fetchCreditProducts(supabase)).length).toBeGreaterThanOrEqual(2);

    // A stranger's RLS-scoped view of the organization is empty and its RPCs are refused.
    const stranger = createClient<Database>(url!, anonKey, { auth: { persistSession: false, storageKey: "stranger" } });
    await stranger.auth.signUp({ email: `web-live-stranger-${Date.now()}@example.test`, password: "correct horse battery" });
    expect((await fetchLedger(stranger, orgId, { kind: null, range: { from: "2026-01-01", to: "2099-12-31" } })).total).toBe(0);
    if (process.env.WEB_LIVE_CHECK_REFUSALS === "1") {
      // Opt-in: on 2026-11-23 the local gateway never answered an RPC that raised (it left
      // the transaction "idle in transaction (aborted)"), so this hung; see the web report.
      const refused = await fetchCreditBalance(stranger, orgId).then(
        () => null,
        (error: unknown) => error,
      );
      expect(refused).toBeInstanceOf(DatabaseError);
      expect(refused instanceof DatabaseError && refused.code).toBe("42501");
    }
  });
});
