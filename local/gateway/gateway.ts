/**
 * The local API gateway on one port, as Supabase's Kong serves the hosted one:
 * `/rest/v1` (PostgREST subset), `/auth/v1` (GoTrue subset), `/functions/v1` (Deno).
 */
import type { Server } from "node:http";
import { createAdaptorServer } from "@hono/node-server";
import { Hono } from "hono";
import type { MiddlewareHandler } from "hono";
import { cors } from "hono/cors";
import { createPool } from "./database-pool.ts";
import { createGotrue } from "./gotrue.ts";
import { createPostgrest } from "./postgrest.ts";
import { startEdgeFunctions, type FunctionStatus } from "./edge-functions.ts";
import { answerUnparseableRequests, honourExpectContinue, limitRequestBodies } from "./request-body.ts";
import type { ApiKeys } from "./keys.ts";

export interface GatewayOptions {
  /** Port to listen on (0 = any free port). */
  port: number;
  hostname?: string;
  /** Superuser (or supabase_auth_admin) URL: the auth tables and function DB access. */
  databaseUrl: string;
  /** URL logging in as `authenticator`; derived from databaseUrl with the local password when absent. */
  authenticatorUrl?: string;
  keys: ApiKeys;
  /** The project's secrets, passed to every function (STRIPE_SECRET_KEY, ...). */
  secrets?: Record<string, string>;
  /** Whether to run the Edge Functions (default true). */
  functions?: boolean;
  functionsDir?: string;
  configFile?: string;
}

export interface RunningGateway {
  url: string;
  port: number;
  functions: FunctionStatus[];
  close(): Promise<void>;
  /** Kills child processes synchronously (for exit handlers). */
  killNow(): void;
}

/** The local bootstrap gives `authenticator` the password `postgres`, as `supabase start` does. */
export function authenticatorUrlFor(databaseUrl: string): string {
  const url = new URL(databaseUrl);
  url.username = "authenticator";
  url.password = "postgres";
  return url.toString();
}

function subPath(request: Request, prefix: string): string {
  return new URL(request.url).pathname.slice(prefix.length) || "/";
}

const API_CORS = cors({
  origin: "*",
  allowHeaders: ["authorization", "apikey", "content-type", "x-client-info", "accept-profile", "content-profile", "prefer", "range", "range-unit", "x-supabase-api-version"],
  allowMethods: ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
  exposeHeaders: ["Content-Range", "X-Supabase-Api-Version"],
});

/**
 * hono's CORS middleware, run after the service has answered, except for a preflight, which
 * it answers itself. Run before, it sets its headers on a placeholder response, and hono then
 * rebuilds the service's response around a body stream to merge the two: about a quarter of
 * the gateway's CPU time per RPC call. Run after, it sets the same headers on the service's
 * own response (the services build their responses themselves, so the headers are mutable),
 * including a 413 from the body limit, which a browser can then read.
 */
const apiCors: MiddlewareHandler = async (c, next) => {
  if (c.req.method === "OPTIONS") return API_CORS(c, next);
  await next();
  await API_CORS(c, async () => {});
};

export async function startGateway(options: GatewayOptions): Promise<RunningGateway> {
  const hostname = options.hostname ?? "127.0.0.1";
  const restPool = createPool({
    connectionString: options.authenticatorUrl ?? authenticatorUrlFor(options.databaseUrl),
    max: 40,
    applicationName: "local-gateway-rest",
  });
  const authPool = createPool({ connectionString: options.databaseUrl, max: 10, applicationName: "local-gateway-auth" });

  // Listen first: the functions need the gateway's URL in their environment.
  const app = new Hono();
  let handlers:
    | {
        rest: ReturnType<typeof createPostgrest>;
        auth: ReturnType<typeof createGotrue>;
        functions?: Awaited<ReturnType<typeof startEdgeFunctions>>;
      }
    | undefined;
  const notReady = () => new Response(JSON.stringify({ message: "The gateway is starting" }), { status: 503 });

  // Kong's answer for a path no service owns.
  app.notFound(() => new Response(JSON.stringify({ message: "no Route matched with those values" }), { status: 404, headers: { "Content-Type": "application/json" } }));
  app.get("/", (c) => c.json({ name: "local Supabase-compatible gateway", services: ["/rest/v1", "/auth/v1", "/functions/v1"] }));
  app.use("/rest/v1/*", apiCors);
  app.use("/auth/v1/*", apiCors);
  // Before any handler (after CORS, so a browser can read the 413): a body is bounded
  // before anything buffers it.
  app.use("*", limitRequestBodies);
  app.all("/rest/v1/*", (c) => handlers?.rest.handle(c.req.raw, subPath(c.req.raw, "/rest/v1")) ?? notReady());
  app.all("/auth/v1/*", (c) => handlers?.auth.handle(c.req.raw, subPath(c.req.raw, "/auth/v1")) ?? notReady());
  app.all("/functions/v1/*", (c) => {
    if (!handlers) return notReady();
    if (!handlers.functions) return new Response(JSON.stringify({ code: 404, message: "Edge Functions are not running" }), { status: 404 });
    return handlers.functions.handle(c.req.raw, subPath(c.req.raw, "/functions/v1"));
  });

  const server = createAdaptorServer({ fetch: app.fetch, hostname }) as Server;
  honourExpectContinue(server);
  answerUnparseableRequests(server);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(options.port, hostname, () => {
      server.off("error", reject);
      resolve();
    });
  });
  const address = server.address();
  const port = typeof address === "object" && address ? address.port : options.port;
  const url = `http://${hostname}:${port}`;

  const rest = createPostgrest({ pool: restPool, jwtSecret: options.keys.jwtSecret, maxRows: 1000, extraSearchPath: ["public", "extensions"] });
  const auth = createGotrue({ pool: authPool, jwtSecret: options.keys.jwtSecret, apiUrl: url, jwtExpiry: 3600, refreshTokenReuseInterval: 10 });
  const functions = options.functions === false
    ? undefined
    : await startEdgeFunctions({
        jwtSecret: options.keys.jwtSecret,
        functionsDir: options.functionsDir,
        configFile: options.configFile,
        env: {
          ...options.secrets,
          SUPABASE_URL: url,
          SUPABASE_ANON_KEY: options.keys.anonKey,
          SUPABASE_SERVICE_ROLE_KEY: options.keys.serviceRoleKey,
          SUPABASE_DB_URL: options.databaseUrl,
        },
      });
  handlers = { rest, auth, functions };

  return {
    url,
    port,
    functions: functions?.status() ?? [],
    killNow: () => functions?.killNow(),
    close: async () => {
      await functions?.stop();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        if ("closeAllConnections" in server) server.closeAllConnections();
      });
      await Promise.all([restPool.end(), authPool.end()]);
    },
  };
}
