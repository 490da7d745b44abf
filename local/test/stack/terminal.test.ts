/**
 * `npm start` in a real terminal, as a person runs it: a tmux pane runs the command, Ctrl-C
 * is typed into it, and afterwards nothing the stack started is left (no Postgres on its data
 * directory, no Deno, Vite or Node process that refers to its state directory or ports, no
 * lock file), and `npm start` on the same state directory starts again cleanly; a checkout
 * made before the Ctrl-C still works after the restart (the Stripe emulator keeps its state).
 *
 * tmux is required (Debian package `tmux`, installed by .ci/run): without it these tests fail,
 * saying so, rather than skip.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { promisify } from "node:util";
import { createClient } from "@supabase/supabase-js";
import type { WebSocketLikeConstructor } from "@supabase/realtime-js";
import { repoRoot } from "../../shared/paths.ts";
import { freePort } from "../../shared/ports.ts";
import { clusterDataDir, devClusterOptions } from "../../stack/postgres.ts";
import { portOpen, processesReferencing, waitFor } from "./processes.ts";

const execFileAsync = promisify(execFile);

const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

async function requireTmux(): Promise<void> {
  try {
    await execFileAsync("tmux", ["-V"]);
  } catch {
    throw new Error("tmux is not installed, so npm start cannot be tried in a terminal: install it (`apt-get install -y tmux`, as .ci/run does).");
  }
}

interface Ports {
  API_PORT: number;
  POSTGRES_PORT: number;
  STRIPE_PORT: number;
  DASHBOARD_PORT: number;
  MAIL_UI_PORT: number;
  MAIL_SMTP_PORT: number;
}

/** A throwaway state directory, free ports and a private tmux server for one stack. */
async function terminalStack() {
  await requireTmux();
  const stateDir = await mkdtemp(path.join(tmpdir(), "billing-terminal-"));
  // As root, Postgres runs as its own user, which must be able to enter the directory.
  await chmod(stateDir, 0o755);
  const socketDir = await mkdtemp(path.join(tmpdir(), "billing-tmux-"));
  const socket = path.join(socketDir, "socket");
  // Every port free-picked, the mail catcher's too: another stack on this machine may hold the defaults.
  const ports: Ports = {
    API_PORT: await freePort(),
    POSTGRES_PORT: await freePort(),
    STRIPE_PORT: await freePort(),
    DASHBOARD_PORT: await freePort(),
    MAIL_UI_PORT: await freePort(),
    MAIL_SMTP_PORT: await freePort(),
  };
  const tmux = (...args: string[]) => execFileAsync("tmux", ["-S", socket, ...args]);
  let session = 0;
  cleanups.push(async () => {
    await tmux("kill-server").catch(() => undefined);
    // When an assertion failed, whatever this test's stack left behind is still ours to end.
    const left = await processesReferencing(stateDir, Object.values(ports));
    const signal = (pid: number, name: NodeJS.Signals) => {
      try {
        process.kill(pid, name);
      } catch {
        // Already gone.
      }
    };
    for (const { pid } of left) signal(pid, "SIGTERM");
    if (left.length > 0) await new Promise((r) => setTimeout(r, 3000));
    for (const { pid } of await processesReferencing(stateDir, Object.values(ports))) signal(pid, "SIGKILL");
    await rm(socketDir, { recursive: true, force: true });
    await rm(stateDir, { recursive: true, force: true });
  });
  const env = [
    "DATABASE_URL=",
    "SUPABASE_DB_URL=",
    "STRIPE_SECRET_KEY=",
    `LOCAL_STATE_DIR=${stateDir}`,
    ...Object.entries(ports).map(([name, port]) => `${name}=${port}`),
  ].join(" ");

  return {
    stateDir,
    ports,
    /** Types `npm start` into a new terminal; resolves once it printed `until` (by default, that it is ready). */
    async start(until: RegExp = /Ready in/) {
      const name = `start-${++session}-${randomBytes(3).toString("hex")}`;
      // remain-on-exit keeps the pane (and its output, and npm's exit status) after npm ends.
      await tmux("new-session", "-d", "-s", name, "-x", "200", "-y", "50", `cd ${repoRoot} && ${env} npm start`);
      await tmux("set-option", "-t", name, "remain-on-exit", "on").catch(() => undefined);
      const screen = async () => (await tmux("capture-pane", "-p", "-J", "-S", "-5000", "-t", name).catch(() => ({ stdout: "" }))).stdout;
      const dead = async () => (await tmux("display-message", "-p", "-t", name, "#{pane_dead}").catch(() => ({ stdout: "1" }))).stdout.trim() === "1";
      await waitFor(async () => until.test(await screen()) || (await dead()), 240_000, `npm start to print ${until}`, screen);
      const output = await screen();
      assert.match(output, until, output);
      return {
        output,
        screen,
        /** Types Ctrl-C (`times` times, as an impatient person does) and waits until npm has exited. */
        async interrupt(times = 1) {
          for (let i = 0; i < times; i++) await tmux("send-keys", "-t", name, "C-c");
          await waitFor(dead, 120_000, "npm start to exit after Ctrl-C", screen);
          return screen();
        },
      };
    },
    /** Everything the stack started is gone. */
    async assertNothingLeft(output: string) {
      assert.match(output, /Stopped\./, output);
      const dataDir = await clusterDataDir(devClusterOptions(stateDir));
      assert.equal(existsSync(path.join(dataDir, "postmaster.pid")), false, `Postgres left its pid file in ${dataDir}:\n${output}`);
      for (const [name, port] of Object.entries(ports)) assert.equal(await portOpen(port), false, `${name} ${port} is still open`);
      assert.equal(existsSync(path.join(stateDir, "start.pid")), false, "the lock file is removed");
      const left = await processesReferencing(stateDir, Object.values(ports));
      assert.deepEqual(left, [], `processes outlived npm start:\n${left.map((p) => `${p.pid} ${p.cmdline}`).join("\n")}`);
    },
  };
}

class NoRealtime {
  constructor() {
    throw new Error("Realtime is not part of the local stack");
  }
}

/** Signs in with the demo login npm start printed and asks the billing function for a Starter checkout. */
async function demoCheckout(output: string, apiUrl: string): Promise<{ status: number; body: { url?: string } }> {
  const login = /Demo login\s+(\S+) \/ (\S+)\s+\(owner of "[^"]+", ([0-9a-f-]{36})\)/.exec(output);
  assert.ok(login, `npm start prints the demo login and its organization:\n${output}`);
  const anonKey = /anon key\s+(\S+)/.exec(output)?.[1];
  assert.ok(anonKey, "npm start prints the anon key");
  const supabase = createClient(apiUrl, anonKey, {
    auth: { persistSession: false, autoRefreshToken: false },
    realtime: { transport: NoRealtime as unknown as WebSocketLikeConstructor },
  });
  const { data, error } = await supabase.auth.signInWithPassword({ email: login[1]!, password: login[2]! });
  assert.equal(error, null, "the demo login signs in");
  const response = await fetch(`${apiUrl}/functions/v1/billing/subscription/checkout`, {
    method: "POST",
    headers: { Authorization: `Bearer ${data.session!.access_token}`, apikey: anonKey, "Content-Type": "application/json" },
    body: JSON.stringify({ organization_id: login[3], plan_code: "starter", interval: "month" }),
  });
  return { status: response.status, body: (await response.json()) as { url?: string } };
}

test("Ctrl-C in a terminal stops everything npm start started, Postgres included, and npm start starts again cleanly", { timeout: 600_000 }, async () => {
  const stack = await terminalStack();
  const first = await stack.start();
  assert.ok(await portOpen(stack.ports.POSTGRES_PORT), "Postgres is running");
  await stack.assertNothingLeft(await first.interrupt());

  // A second Ctrl-C while it is stopping leaves nothing behind either.
  const second = await stack.start();
  assert.doesNotMatch(second.output, /already running|stale|failed/i, second.output);
  await stack.assertNothingLeft(await second.interrupt(2));
});

test("Ctrl-C while npm start is still starting stops whatever it had started", { timeout: 600_000 }, async () => {
  const stack = await terminalStack();
  // Postgres is up and the functions, the emulator and the dashboard are being started.
  const starting = await stack.start(/Starting the API gateway/);
  const output = await starting.interrupt();
  await stack.assertNothingLeft(output);
  const again = await stack.start();
  await stack.assertNothingLeft(await again.interrupt());
});

test("a checkout made before Ctrl-C works again after npm start is restarted", { timeout: 600_000 }, async () => {
  const stack = await terminalStack();
  const apiUrl = `http://127.0.0.1:${stack.ports.API_PORT}`;
  const first = await stack.start();
  const before = await demoCheckout(first.output, apiUrl);
  assert.equal(before.status, 200, JSON.stringify(before.body));
  await stack.assertNothingLeft(await first.interrupt());

  const second = await stack.start();
  const after = await demoCheckout(second.output, apiUrl);
  assert.equal(after.status, 200, `the same checkout after a restart: ${JSON.stringify(after.body)}`);
  assert.ok(after.body.url, "it returns a checkout URL");
  const page = await fetch(after.body.url!);
  assert.equal(page.status, 200, "the emulator serves the checkout page");
  assert.ok(after.body.url!.startsWith(`http://127.0.0.1:${stack.ports.STRIPE_PORT}/`), after.body.url);
  await stack.assertNothingLeft(await second.interrupt());
});
