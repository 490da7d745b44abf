/**
 * Opt-in (WEB_LIVE_SUPABASE_URL, as live-gateway.test.ts): the dashboard's client, built from
 * postgrest-js and auth-js rather than supabase-js's createClient, keeps the session the way
 * supabase-js does: saved under supabase-js's storage key, sent on every REST call (so RLS sees
 * the user), replaced by a refresh that the next call uses, and gone after sign-out (reads fall
 * back to the anon key and RLS shows nothing).
 */
import { describe, expect, it } from "vitest";
import { createOrganization } from "@/features/organizations/api/create-organization";
import { createSupabaseClient } from "@/lib/supabase";
import { LOCAL_ANON_KEY } from "./local-keys";

const url = process.env.WEB_LIVE_SUPABASE_URL;
const anonKey = process.env.WEB_LIVE_ANON_KEY ?? LOCAL_ANON_KEY;

describe.skipIf(!url)("the dashboard's Supabase client against a live API", () => {
  it("keeps, sends, refreshes and ends the session as supabase-js would", async () => {
    const sent: string[] = [];
    // Records the bearer of each REST call, then sends it on unchanged.
    const recording: typeof fetch = (input, init) => {
      const target = input instanceof Request ? input.url : String(input);
      if (target.includes("/rest/v1/")) sent.push(new Headers(init?.headers).get("Authorization") ?? "");
      return fetch(input, init);
    };
    const config = { supabaseUrl: url!, supabaseAnonKey: anonKey, stripePublishableKey: null };
    const supabase = createSupabaseClient(config, recording);
    const email = `web-client-${Date.now()}@example.test`;
    expect((await supabase.auth.signUp({ email, password: "correct horse battery" })).error).toBeNull();
    const first = (await supabase.auth.getSession()).data.session!;

    // Saved where supabase-js saves it, so a session from before this client is still found.
    const storageKey = `sb-${new URL(url!).hostname.split(".")[0]}-auth-token`;
    expect(JSON.parse(window.localStorage.getItem(storageKey)!)).toMatchObject({ access_token: first.access_token });
    const reloaded = createSupabaseClient(config);
    expect((await reloaded.auth.getSession()).data.session?.access_token).toBe(first.access_token);

    // Every REST call carries the user's token: RLS lets the owner read the new organization.
    const orgId = await createOrganization(supabase, "Client test org");
    const read = await supabase.from("organizations").select("id").eq("id", orgId);
    expect(read.data).toEqual([{ id: orgId }]);
    expect(sent.at(-1)).toBe(`Bearer ${first.access_token}`);

    // A refreshed session is what the next call sends.
    const refreshed = await supabase.auth.refreshSession();
    expect(refreshed.error).toBeNull();
    const second = refreshed.data.session!;
    expect(second.refresh_token).not.toBe(first.refresh_token);
    expect((await supabase.rpc("get_credit_balance", { p_organization_id: orgId })).error).toBeNull();
    expect(sent.at(-1)).toBe(`Bearer ${second.access_token}`);

    // Signed out: the anon key goes instead, and RLS shows the organization to nobody.
    expect((await supabase.auth.signOut()).error).toBeNull();
    expect(window.localStorage.getItem(storageKey)).toBeNull();
    const anonymous = await supabase.from("organizations").select("id").eq("id", orgId);
    expect(anonymous.data ?? []).toEqual([]);
    expect(sent.at(-1)).toBe(`Bearer ${anonKey}`);
  });
});
