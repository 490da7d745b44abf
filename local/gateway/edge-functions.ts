/**
 * `/functions/v1/<name>`: the Edge runtime stand-in. Each folder of `functions/` (except
 * `_shared`) runs in its own Deno process, as the Edge runtime isolates functions, with the
 * environment hosted Supabase provides plus the project's secrets. `verify_jwt` comes from
 * supabase/config.toml. Requests and responses pass through untouched (the Stripe webhook
 * verifies its signature over the raw body).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import path from "node:path";
import { parse as parseToml } from "smol-toml";
import { binDir, repoRoot, supabaseDir } from "../shared/paths.ts";
import { freePort } from "../shared/ports.ts";
import { bearerToken, verifyToken } from "./keys.ts";

export interface FunctionConfig {
  name: string;
  entrypoint: string;
  verifyJwt: boolean;
}

export interface FunctionStatus {
  name: string;
  verifyJwt: boolean;
  port?: number;
  /** Why the function is not serving (failed to start, exited), if it is not. */
  error?: string;
}

export interface EdgeFunctionsOptions {
  functionsDir?: string;
  configFile?: string;
  jwtSecret: string;
  /** Environment every function gets (SUPABASE_URL, keys, DB URL, the project's secrets). */
  env: Record<string, string>;
  startTimeoutMs?: number;
}

/** Reads the `[functions.<name>]` tables of config.toml, as `supabase functions` does. */
export function parseFunctionSections(toml: string): Map<string, Record<string, unknown>> {
  const functions = parseToml(toml).functions;
  const sections = new Map<string, Record<string, unknown>>();
  if (typeof functions !== "object" || functions === null || Array.isArray(functions)) return sections;
  for (const [name, section] of Object.entries(functions)) {
    if (typeof section === "object" && section !== null && !Array.isArray(section)) {
      sections.set(name, { ...section });
    }
  }
  return sections;
}

/** The functions to serve: every folder with an index.ts or a config section, configured from config.toml. */
export async function discoverFunctions(functionsDir: string, configFile: string): Promise<FunctionConfig[]> {
  const sections = existsSync(configFile) ? parseFunctionSections(await readFile(configFile, "utf8")) : new Map();
  const entries = await readdir(functionsDir, { withFileTypes: true }).catch(() => []);
  const result: FunctionConfig[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory() || entry.name.startsWith("_") || entry.name.startsWith(".")) continue;
    const section = sections.get(entry.name);
    const entrypoint = typeof section?.entrypoint === "string"
      ? path.resolve(path.dirname(configFile), section.entrypoint)
      : path.join(functionsDir, entry.name, "index.ts");
    // A folder with neither an index.ts nor a config section (functions/tests, say) is not a
    // function; a configured function whose entrypoint is missing is reported as failed.
    if (!section && !existsSync(entrypoint)) continue;
    // Supabase's default: a function requires a valid JWT unless configured otherwise.
    result.push({ name: entry.name, entrypoint, verifyJwt: section?.verify_jwt !== false });
  }
  return result.sort((a, b) => a.name.localeCompare(b.name));
}

/** Kept here too for callers that imported it from this file. */
export { freePort };

/**
 * What a Deno process needs from our environment to run at all (paths, proxies, registry,
 * Deno's own settings); nothing else leaks into the functions' environment.
 */
function runtimeEnvironment(): Record<string, string> {
  const passed: Record<string, string> = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (value !== undefined && /^(PATH|HOME|TMPDIR|LANG|TZ|DENO_.*|NPM_CONFIG_.*|HTTPS?_PROXY|NO_PROXY|SSL_CERT_.*)$/i.test(key)) {
      passed[key] = value;
    }
  }
  return passed;
}

interface RunningFunction {
  config: FunctionConfig;
  port?: number;
  child?: ChildProcess;
  error?: string;
}

const CORS_HEADERS: Record<string, string> = {
  "Access-Control-Allow-Origin": "*",
  "Access-Control-Allow-Headers": "authorization, x-client-info, apikey, content-type, stripe-signature, x-supabase-api-version",
  "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
};

/** Hop-by-hop headers, which a proxy must not forward. */
const HOP_HEADERS = new Set(["connection", "keep-alive", "transfer-encoding", "upgrade", "host", "content-length", "proxy-connection", "te", "trailer"]);

function jsonError(status: number, message: string): Response {
  return new Response(JSON.stringify({ code: status, message }), {
    status,
    headers: { "Content-Type": "application/json", ...CORS_HEADERS },
  });
}

export async function startEdgeFunctions(options: EdgeFunctionsOptions) {
  const functionsDir = options.functionsDir ?? path.join(repoRoot, "functions");
  const configFile = options.configFile ?? path.join(supabaseDir, "config.toml");
  const timeout = options.startTimeoutMs ?? 60_000;
  const running = new Map<string, RunningFunction>();
  let stopping = false;

  async function startOne(config: FunctionConfig): Promise<RunningFunction> {
    const fn: RunningFunction = { config };
    running.set(config.name, fn);
    if (!existsSync(config.entrypoint)) {
      fn.error = `entrypoint not found: ${path.relative(repoRoot, config.entrypoint)}`;
      return fn;
    }
    const port = await freePort();
    const child = spawn(
      path.join(binDir, "deno"),
      ["run", "--allow-all", "--no-prompt", "--node-modules-dir=manual", path.join(repoRoot, "local", "gateway", "serve-function.js")],
      {
        cwd: repoRoot,
        env: {
          ...runtimeEnvironment(),
          NO_COLOR: "1",
          ...options.env,
          SB_EXECUTION_ID: config.name,
          EDGE_FUNCTION_PORT: String(port),
          EDGE_FUNCTION_ENTRYPOINT: config.entrypoint,
        },
        // stdin stays open as a lifeline: serve-function.js exits when it closes.
        stdio: ["pipe", "pipe", "pipe"],
        // Its own process group, so a Ctrl-C in the terminal reaches only whoever started us,
        // which stops the functions in order (the lifeline still ends them if it dies).
        detached: true,
      },
    );
    fn.child = child;
    let log = "";
    const prefix = `[functions/${config.name}]`;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        fn.error = `did not start within ${timeout / 1000}s:\n${log.trim()}`;
        child.kill("SIGKILL");
        resolve();
      }, timeout);
      let ready = false;
      child.stdout!.on("data", (chunk: Buffer) => {
        const text = chunk.toString();
        for (const line of text.split("\n")) {
          if (line.startsWith("__EDGE_FUNCTION_READY__")) {
            if (!ready) {
              ready = true;
              fn.port = port;
              clearTimeout(timer);
              resolve();
            }
          } else if (line.trim() !== "") {
            if (ready) console.log(`${prefix} ${line}`);
            else log += `${line}\n`;
          }
        }
      });
      child.stderr!.on("data", (chunk: Buffer) => {
        if (ready) process.stderr.write(`${prefix} ${chunk.toString()}`);
        else log += chunk.toString();
      });
      child.on("exit", (code, signal) => {
        fn.port = undefined;
        if (!ready) {
          clearTimeout(timer);
          fn.error ??= `exited before serving (${signal ?? `code ${code}`}):\n${log.trim()}`;
          resolve();
        } else if (!stopping) {
          fn.error = `exited (${signal ?? `code ${code}`})`;
          console.error(`${prefix} ${fn.error}`);
        }
      });
    });
    return fn;
  }

  const configs = await discoverFunctions(functionsDir, configFile);
  await Promise.all(configs.map(startOne));

  /** Handles `/functions/v1/<name>/<rest>`; `subPath` is what follows `/functions/v1`. */
  async function handle(request: Request, subPath: string): Promise<Response> {
    const match = /^\/([^/?]+)(\/.*)?$/.exec(subPath);
    const name = match?.[1];
    const fn = name ? running.get(name) : undefined;
    if (!name || !fn) return jsonError(404, `Function not found: ${name ?? "(none)"}`);
    const preflight = request.method === "OPTIONS";
    if (fn.config.verifyJwt && !preflight) {
      const token = bearerToken(request.headers.get("authorization") ?? undefined);
      if (!token) return jsonError(401, "Missing authorization header");
      const verified = await verifyToken(token, options.jwtSecret);
      if (!verified.ok) return jsonError(401, "Invalid JWT");
    }
    if (fn.port === undefined) {
      if (preflight) return new Response("ok", { headers: CORS_HEADERS });
      return jsonError(503, `Function ${name} is not running: ${fn.error ?? "unknown reason"}`);
    }
    const incoming = new URL(request.url);
    const target = `http://127.0.0.1:${fn.port}/${name}${match?.[2] ?? ""}${incoming.search}`;
    const headers = new Headers();
    request.headers.forEach((value, key) => {
      if (!HOP_HEADERS.has(key)) headers.set(key, value);
    });
    headers.set("x-forwarded-host", incoming.host);
    headers.set("x-forwarded-proto", incoming.protocol.replace(":", ""));
    let response: Response;
    try {
      const body = request.method === "GET" || request.method === "HEAD" ? undefined : await request.arrayBuffer();
      response = await fetch(target, { method: request.method, headers, body, redirect: "manual" });
    } catch (error) {
      return jsonError(502, `Function ${name} did not answer: ${error instanceof Error ? error.message : String(error)}`);
    }
    const responseHeaders = new Headers();
    response.headers.forEach((value, key) => {
      // fetch already decoded the body, so its encoding and length no longer apply.
      if (!HOP_HEADERS.has(key) && key !== "content-encoding") responseHeaders.append(key, value);
    });
    if (preflight && !responseHeaders.has("access-control-allow-origin")) {
      return new Response("ok", { headers: CORS_HEADERS });
    }
    const body = request.method === "HEAD" || response.status === 204 || response.status === 304 ? null : await response.arrayBuffer();
    return new Response(body, { status: response.status, statusText: response.statusText, headers: responseHeaders });
  }

  function status(): FunctionStatus[] {
    return [...running.values()].map((fn) => ({
      name: fn.config.name,
      verifyJwt: fn.config.verifyJwt,
      port: fn.port,
      error: fn.error,
    }));
  }

  /** Stops every Deno process and waits until each has exited. */
  async function stop(): Promise<void> {
    stopping = true;
    await Promise.all(
      [...running.values()].map(
        (fn) =>
          new Promise<void>((resolve) => {
            const child = fn.child;
            if (!child || child.exitCode !== null || child.signalCode !== null) return resolve();
            const force = setTimeout(() => child.kill("SIGKILL"), 3000);
            child.once("exit", () => {
              clearTimeout(force);
              resolve();
            });
            child.kill("SIGTERM");
          }),
      ),
    );
  }

  /** Kills every child synchronously (for process exit handlers). */
  function killNow(): void {
    for (const fn of running.values()) fn.child?.kill("SIGKILL");
  }

  return { handle, status, stop, killNow };
}
