/**
 * The dashboard's real client (postgrest-js + auth-js, see lib/supabase.ts) whose `fetch` is
 * answered in memory, so fetchers, hooks and components run exactly as in the browser (query strings, count headers, RPC bodies),
 * without a server. Handlers see the REST path (`/rest/v1/billing_history`) and the URL.
 */
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, type RenderResult } from "@testing-library/react";
import type { ReactElement } from "react";
import { onTestFinished, vi } from "vitest";
import type { AppConfig } from "@/lib/config";
import { BackendProvider, createSupabaseClient, type Backend } from "@/lib/supabase";

export type FakeHandler = (request: { path: string; url: URL; method: string; body: unknown }) => Response | undefined;

export const testConfig: AppConfig = {
  supabaseUrl: "http://supabase.test",
  supabaseAnonKey: "anon-key-for-tests-0123456789",
  stripePublishableKey: null,
};

/** JSON response; `total` sets the Content-Range PostgREST sends for count=exact. */
export function json(body: unknown, init: { status?: number; total?: number } = {}): Response {
  const headers = new Headers({ "content-type": "application/json" });
  if (init.total !== undefined) {
    const rows = Array.isArray(body) ? body.length : 0;
    headers.set("content-range", rows === 0 ? `*/${init.total}` : `0-${rows - 1}/${init.total}`);
  }
  return new Response(JSON.stringify(body), { status: init.status ?? 200, headers });
}

/** A PostgREST-style error response. */
export function postgrestError(status: number, code: string, message: string): Response {
  return json({ code, message, details: null, hint: null }, { status });
}

export function createFakeBackend(handler: FakeHandler): { backend: Backend; calls: string[]; fetch: typeof fetch } {
  const calls: string[] = [];
  const fakeFetch: typeof fetch = async (input, init) => {
    const url = new URL(input instanceof Request ? input.url : String(input));
    const method = init?.method ?? "GET";
    const body: unknown = typeof init?.body === "string" && init.body !== "" ? JSON.parse(init.body) : undefined;
    calls.push(`${method} ${url.pathname}${url.search}`);
    const response = handler({ path: url.pathname, url, method, body });
    if (!response) throw new Error(`fake backend: unexpected ${method} ${url.pathname}${url.search}`);
    return response;
  };
  return { backend: { config: testConfig, supabase: createSupabaseClient(testConfig, fakeFetch) }, calls, fetch: fakeFetch };
}

/**
 * Renders with the fake backend and a fresh query cache that does not retry. The billing
 * function is called with the browser's own fetch (lib/billing-function.ts), so for the
 * test's duration that fetch is answered by the same handler (`/functions/v1/billing/...`).
 */
export function renderWithBackend(ui: ReactElement, handler: FakeHandler): RenderResult & { calls: string[] } {
  const { backend, calls, fetch: fakeFetch } = createFakeBackend(handler);
  vi.stubGlobal("fetch", fakeFetch);
  onTestFinished(() => {
    vi.unstubAllGlobals();
  });
  const queryClient = new QueryClient({ defaultOptions: { queries: { retry: false }, mutations: { retry: false } } });
  const result = render(
    <BackendProvider value={backend}>
      <QueryClientProvider client={queryClient}>{ui}</QueryClientProvider>
    </BackendProvider>,
  );
  return Object.assign(result, { calls });
}

/**
 * Stores a signed-in session where supabase-js keeps it (its storage key comes from the test
 * URL's host), valid for an hour, so calls to the billing function carry a bearer token.
 */
export function storeSignedInSession(userId = "44444444-4444-4444-8444-444444444444"): void {
  window.localStorage.setItem(
    "sb-supabase-auth-token",
    JSON.stringify({
      access_token: "header.payload.signature",
      refresh_token: "refresh-token",
      token_type: "bearer",
      expires_in: 3600,
      expires_at: Math.floor(Date.now() / 1000) + 3600,
      user: { id: userId, email: "someone@example.test", aud: "authenticated", role: "authenticated", app_metadata: {}, user_metadata: {}, created_at: "2026-11-01T00:00:00Z" },
    }),
  );
}
