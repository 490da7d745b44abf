import { render, screen } from "@testing-library/react";
import { describe, expect, it } from "vitest";
import { ConfigErrorPage } from "@/app/config-error-page";
import { parseConfig } from "./config";

const valid = {
  VITE_SUPABASE_URL: "http://127.0.0.1:54321/",
  VITE_SUPABASE_ANON_KEY: "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.anon",
};

describe("parseConfig", () => {
  it("accepts the public settings and trims the URL's trailing slash", () => {
    const result = parseConfig({ ...valid, VITE_STRIPE_PUBLISHABLE_KEY: "pk_test_123" });
    expect(result).toEqual({
      ok: true,
      config: { supabaseUrl: "http://127.0.0.1:54321", supabaseAnonKey: valid.VITE_SUPABASE_ANON_KEY, stripePublishableKey: "pk_test_123" },
    });
  });

  it("treats an empty publishable key as none", () => {
    const result = parseConfig({ ...valid, VITE_STRIPE_PUBLISHABLE_KEY: "" });
    expect(result.ok && result.config.stripePublishableKey).toBeNull();
  });

  it("names every missing variable", () => {
    const result = parseConfig({});
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problems.join("\n")).toMatch(/VITE_SUPABASE_URL/);
    expect(result.problems.join("\n")).toMatch(/VITE_SUPABASE_ANON_KEY/);
  });

  it("refuses a Stripe secret key where the publishable key belongs", () => {
    const result = parseConfig({ ...valid, VITE_STRIPE_PUBLISHABLE_KEY: "sk_test_oops" });
    expect(result.ok).toBe(false);
    if (!result.ok) expect(result.problems[0]).toMatch(/VITE_STRIPE_PUBLISHABLE_KEY must be a publishable key/);
  });

  it("refuses a URL that is not one", () => {
    expect(parseConfig({ ...valid, VITE_SUPABASE_URL: "localhost" }).ok).toBe(false);
  });

  it("the error page lists the problems readably", () => {
    const result = parseConfig({});
    if (result.ok) throw new Error("expected problems");
    render(<ConfigErrorPage problems={result.problems} />);
    expect(screen.getByRole("heading", { name: "The dashboard is not configured" })).toBeInTheDocument();
    expect(screen.getAllByRole("listitem")).toHaveLength(result.problems.length);
  });
});
