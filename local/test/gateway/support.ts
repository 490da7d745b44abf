/**
 * What the gateway suites share: the stack under test (the one `npm test` started, found
 * through TEST_SUPABASE_URL and the keys; or, when a file runs on its own, a gateway
 * started here over TEST_DATABASE_URL), supabase-js clients, and personas.
 */
import { randomUUID } from "node:crypto";
import type { WebSocketLikeConstructor } from "@supabase/realtime-js";
import { createClient, type SupabaseClient } from "@supabase/supabase-js";
import { SignJWT } from "jose";
import { startGateway } from "../../gateway/gateway.ts";
import { apiKeys, secretBytes } from "../../gateway/keys.ts";

export interface StackUnderTest {
  url: string;
  anonKey: string;
  serviceRoleKey: string;
  jwtSecret: string;
  close(): Promise<void>;
}

/** The running stack from `npm test`, or a gateway started for this file. */
export async function stackUnderTest(): Promise<StackUnderTest> {
  const keys = await apiKeys(process.env.TEST_JWT_SECRET || undefined);
  if (process.env.TEST_SUPABASE_URL) {
    return {
      url: process.env.TEST_SUPABASE_URL,
      anonKey: process.env.TEST_SUPABASE_ANON_KEY ?? keys.anonKey,
      serviceRoleKey: process.env.TEST_SUPABASE_SERVICE_ROLE_KEY ?? keys.serviceRoleKey,
      jwtSecret: keys.jwtSecret,
      close: async () => {},
    };
  }
  const databaseUrl = process.env.TEST_DATABASE_URL;
  if (!databaseUrl) throw new Error("Set TEST_SUPABASE_URL (npm test does) or TEST_DATABASE_URL to run the gateway suites");
  const gateway = await startGateway({ port: 0, databaseUrl, keys });
  return { url: gateway.url, anonKey: keys.anonKey, serviceRoleKey: keys.serviceRoleKey, jwtSecret: keys.jwtSecret, close: gateway.close };
}

/**
 * Node 20 has no WebSocket and the local stack has no Realtime; supabase-js only needs a
 * transport to exist, and this one says so if anything ever opens a channel.
 */
class NoRealtime {
  constructor() {
    throw new Error("Realtime is not part of the local stack");
  }
}
const realtime = { transport: NoRealtime as unknown as WebSocketLikeConstructor };

/** A supabase-js client that keeps its session in memory only. */
export function client(stack: StackUnderTest, key = stack.anonKey): SupabaseClient {
  return createClient(stack.url, key, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    realtime,
  });
}

/** A supabase-js client acting with a raw access token (user JWT or a forged one). */
export function clientWithToken(stack: StackUnderTest, token: string): SupabaseClient {
  return createClient(stack.url, stack.anonKey, {
    auth: { persistSession: false, autoRefreshToken: false, detectSessionInUrl: false },
    global: { headers: { Authorization: `Bearer ${token}` } },
    realtime,
  });
}

export interface Persona {
  email: string;
  userId: string;
  accessToken: string;
  db: SupabaseClient;
}

/** Signs up a new user through the gateway and returns a client signed in as them. */
export async function signUp(stack: StackUnderTest, label: string): Promise<Persona> {
  const db = client(stack);
  const email = `${label}-${randomUUID().slice(0, 8)}@example.test`;
  const { data, error } = await db.auth.signUp({ email, password: "correct horse battery" });
  if (error || !data.session || !data.user) throw new Error(`sign-up failed: ${error?.message}`);
  return { email, userId: data.user.id, accessToken: data.session.access_token, db };
}

/** An HS256 token with arbitrary claims, signed with `secret`. */
export async function signToken(claims: Record<string, unknown>, secret: string, expiresInSeconds = 3600): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT(claims)
    .setProtectedHeader({ alg: "HS256", typ: "JWT" })
    .setIssuedAt(now)
    .setExpirationTime(now + expiresInSeconds)
    .sign(secretBytes(secret));
}
