/**
 * The servers some benchmarks measure through, each in a process of its own (as under
 * `npm start`) so the load generator does not share their event loop: the local gateway with a
 * chosen set of Edge Functions, the Stripe emulator, a notification receiver.
 */
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { repoRoot } from "../../local/shared/paths.ts";
import { startProcess, type RunningProcess } from "../../local/stack/run-command.ts";

export interface Server {
  url: string;
  stop(): Promise<void>;
}

/**
 * A TypeScript program of this repository run with tsx; resolves with the URL its `ready`
 * pattern captures. BENCH_CPU_PROF_DIR: each server writes a V8 CPU profile there when it stops
 * (open it in Chrome DevTools' Performance panel), to see where a request's time goes.
 */
export async function startServer(script: string, env: NodeJS.ProcessEnv, ready: RegExp): Promise<Server> {
  const profile = process.env.BENCH_CPU_PROF_DIR ? ["--cpu-prof", `--cpu-prof-dir=${path.resolve(process.env.BENCH_CPU_PROF_DIR)}`] : [];
  const running: RunningProcess = await startProcess(
    process.execPath,
    [...profile, "--import", "tsx", path.join(repoRoot, script)],
    ready,
    { cwd: repoRoot, env: { ...process.env, ...env } },
  );
  return { url: running.ready, stop: running.stop };
}

/** The Stripe emulator on a free port, delivering no webhooks by itself. */
export function startStripeEmulator(): Promise<Server> {
  return startServer("local/stripe-emulator/main.ts", { PORT: "0", STRIPE_WEBHOOK_URL: "" }, /listening on (\S+)/);
}

/**
 * The local gateway on a free port, serving `functions` (name -> entry point, all without a
 * JWT check, as the webhook is configured) or none; `env` reaches the functions.
 */
export async function startGateway(databaseUrl: string, functions: Record<string, string>, env: NodeJS.ProcessEnv = {}): Promise<Server> {
  if (Object.keys(functions).length === 0) {
    return startServer("local/gateway/main.ts", { DATABASE_URL: databaseUrl, API_PORT: "0", GATEWAY_FUNCTIONS: "0", ...env }, GATEWAY_READY);
  }
  const functionsDir = await mkdtemp(path.join(os.tmpdir(), "bench-functions-"));
  try {
    for (const name of Object.keys(functions)) await mkdir(path.join(functionsDir, name));
    const config = Object.entries(functions)
      .map(([name, entrypoint]) => `[functions.${name}]\nverify_jwt = false\nentrypoint = ${JSON.stringify(path.join(repoRoot, entrypoint))}\n`)
      .join("\n");
    await writeFile(path.join(functionsDir, "config.toml"), config);
    const gateway = await startServer("local/gateway/main.ts", {
      DATABASE_URL: databaseUrl,
      API_PORT: "0",
      GATEWAY_FUNCTIONS_DIR: functionsDir,
      GATEWAY_FUNCTIONS_CONFIG: path.join(functionsDir, "config.toml"),
      ...env,
    }, GATEWAY_READY);
    return {
      url: gateway.url,
      stop: async () => {
        await gateway.stop();
        await rm(functionsDir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    await rm(functionsDir, { recursive: true, force: true });
    throw error;
  }
}

const GATEWAY_READY = /GATEWAY_URL=(\S+)/;
