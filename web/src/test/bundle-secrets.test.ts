/**
 * The built dashboard (web/dist, built by the globalSetup with server secrets present in the
 * environment) must contain no server secret: not the service role key, not the JWT secret,
 * no Stripe secret key (sk_) and no webhook secret (whsec_).
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { LOCAL_ANON_KEY, LOCAL_JWT_SECRET, LOCAL_SERVICE_ROLE_KEY } from "./local-keys";

const dist = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "../../dist");

function files(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    return statSync(full).isDirectory() ? files(full) : [full];
  });
}

const built = files(dist).map((file) => ({ file: path.relative(dist, file), text: readFileSync(file, "utf8") }));

function filesContaining(needle: string): string[] {
  return built.filter(({ text }) => text.includes(needle)).map(({ file }) => file);
}

describe("the built bundle", () => {
  it("exists, with an index.html and JavaScript", () => {
    expect(built.map((b) => b.file)).toContain("index.html");
    expect(built.some((b) => b.file.endsWith(".js"))).toBe(true);
  });

  it("does not contain the service role key (nor its signature) or the JWT secret", () => {
    const serviceKey = process.env.SUPABASE_SERVICE_ROLE_KEY ?? LOCAL_SERVICE_ROLE_KEY;
    expect(filesContaining(serviceKey)).toEqual([]);
    expect(filesContaining(serviceKey.split(".")[2]!)).toEqual([]);
    expect(filesContaining(LOCAL_JWT_SECRET)).toEqual([]);
  });

  it("contains no Stripe secret key (sk_) and no webhook secret (whsec_)", () => {
    expect(filesContaining("sk_")).toEqual([]);
    expect(filesContaining("whsec_")).toEqual([]);
  });

  it("does carry the public anon key it was built with (so the check above is meaningful)", () => {
    const anonKey = process.env.VITE_SUPABASE_ANON_KEY ?? LOCAL_ANON_KEY;
    expect(filesContaining(anonKey).length).toBeGreaterThan(0);
  });
});
