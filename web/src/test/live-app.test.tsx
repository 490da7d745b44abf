/**
 * Opt-in (WEB_LIVE_SUPABASE_URL, like live-gateway.test.ts): the whole app in jsdom against
 * a live API: sign up, land on "no organization yet", create one, see Billing as its owner,
 * open a lazy tab, sign out.
 */
import { screen } from "@testing-library/react";
import userEvent from "@testing-library/user-event";
import { render } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { AppProviders } from "@/app/providers";
import { AppShell } from "@/app/shell";
import { createQueryClient } from "@/lib/query-client";
import { createSupabaseClient } from "@/lib/supabase";
import { LOCAL_ANON_KEY } from "./local-keys";
import { textContent } from "./text-content";

const url = process.env.WEB_LIVE_SUPABASE_URL;
const anonKey = process.env.WEB_LIVE_ANON_KEY ?? LOCAL_ANON_KEY;

describe.skipIf(!url)("the app against a live Supabase API", () => {
  it("signs up, creates an organization, shows its billing and signs out", async () => {
    window.localStorage.clear();
    const config = { supabaseUrl: url!, supabaseAnonKey: anonKey, stripePublishableKey: null };
    render(
      <AppProviders backend={{ config, supabase: createSupabaseClient(config) }} queryClient={createQueryClient()}>
        <AppShell />
      </AppProviders>,
    );
    const user = userEvent.setup();
    await user.click(await screen.findByRole("button", { name: "Create one" }));
    await user.type(screen.getByLabelText("Email"), `web-app-${Date.now()}@example.test`);
    await user.type(screen.getByLabelText("Password"), "correct horse battery");
    await user.click(screen.getByRole("button", { name: "Create an account" }));

    expect(await screen.findByText(/You are not in any organization yet/, {}, { timeout: 5000 })).toBeInTheDocument();
    await user.type(screen.getByLabelText("New organization name"), "Acme");
    await user.click(screen.getByRole("button", { name: "Create organization" }));

    expect(await screen.findByRole("heading", { name: "Billing" }, { timeout: 5000 })).toBeInTheDocument();
    expect(screen.getByText("Your role: owner")).toBeInTheDocument();
    expect(await screen.findByText(/No subscription yet/)).toBeInTheDocument();
    expect(await screen.findByText(textContent("Balance: 0 credits"))).toBeInTheDocument();

    await user.click(screen.getByRole("tab", { name: "Credits" }));
    expect(await screen.findByText(/No credit transactions in these 30 days\./, {}, { timeout: 5000 })).toBeInTheDocument();
    await user.click(screen.getByRole("tab", { name: "Plans" }));
    expect(await screen.findByRole("button", { name: "Choose Starter" }, { timeout: 5000 })).toBeInTheDocument();

    await user.click(screen.getByRole("button", { name: "Sign out" }));
    expect(await screen.findByRole("heading", { name: "Sign in" })).toBeInTheDocument();
  });
});
