/**
 * The dashboard's real client (postgrest-js + auth-js, see lib/supabase.ts) whose `fetch` is
 * answered in memory, so fetchers, hooks and components run exactly as in the browser (query strings, count headers, RPC bodies),
 * without a server. Handlers see the REST path (`/rest/v1/billing_history`) and the URL.
 */
import { QueryClient, QueryClientProvider } from "@tanstack/react-query";
import { render, type RenderResult } from "@testing-library/react";
import type { ReactElement } from "react";
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

export function createFakeBackend(handler: FakeHandler): { backend: Backend; calls: string[] } {
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
  return { backend: { config: testConfig, supabase: createSupabaseClient(testConfig, fakeFetch) }, calls };
}

/** Renders with the fake backend and a fresh query cache that does not retry. */
export function renderWithBackend(ui: ReactElement, handler: FakeHandler): RenderResult & { calls: string[] } {
  const { backend, calls } = createFakeBackend(handler);
  const queryClient = new QueryClient({ defaultOptions: { queries: { retry: false }, mutations: { retry: false } } });
  const result = render(
    <BackendProvider value={backend}>
      <QueryClientProvider client={queryClient}>{ui}</QueryClientProvider>
    </BackendProvider>,
  );
  return Object.assign(result, { calls });
}
