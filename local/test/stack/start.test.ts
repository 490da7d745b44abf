/**
 * `npm start` smoke test: on free ports with a throwaway state directory it starts, prints
 * its URLs, keys and demo login, answers on every port, writes .env, refuses a second
 * start, and stops everything (Postgres, gateway, Deno) on Ctrl-C.
 */
import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdtemp, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { freePort } from "../../shared/ports.ts";
import { repoRoot } from "../../shared/paths.ts";
import { type StackUnderTest } from "../gateway/support.ts";
import { portOpen, processesReferencing, waitFor } from "./processes.ts";
import { createClient } from "@supabase/supabase-js";
import type { WebSocketLikeConstructor } from "@supabase/realtime-js";

let stateDir: string | undefined;
const children: ChildProcess[] = [];
after(async () => {
  for (const child of children) if (child.exitCode === null) child.kill("SIGKILL");
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

function startCommand(env: Record<string, string>): { child: ChildProcess; output: () => string; exited: Promise<number | null> } {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(repoRoot, "local", "scripts", "start.ts")], {
    cwd: repoRoot,
    env: { ...process.env, DATABASE_URL: "", SUPABASE_DB_URL: "", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { child, output: () => output, exited };
}

class NoRealtime {
  constructor() {
    throw new Error("Realtime is not part of the local stack");
  }
}

test("npm start brings the stack up on the given ports, prints a working demo login and operator login, and Ctrl-C stops it all", { timeout: 180_000 }, async () => {
  stateDir = await mkdtemp(path.join(tmpdir(), "billing-start-"));
  // Postgres runs as its own system user when we are root; it must be able to enter the directory.
  await chmod(stateDir, 0o755);
  // Every port free-picked, the mail catcher's too: another stack on this machine may hold the defaults.
  const ports = {
    API_PORT: await freePort(),
    POSTGRES_PORT: await freePort(),
    STRIPE_PORT: await freePort(),
    DASHBOARD_PORT: await freePort(),
    MAIL_UI_PORT: await freePort(),
    MAIL_SMTP_PORT: await freePort(),
  };
  const env = { LOCAL_STATE_DIR: stateDir, ...Object.fromEntries(Object.entries(ports).map(([k, v]) => [k, String(v)])) };
  const first = startCommand(env);
  await waitFor(() => first.output().includes("Press Ctrl-C") || first.child.exitCode !== null, 150_000, "npm start to be ready", first.output);
  const out = first.output();
  assert.match(out, new RegExp(`API \\(Supabase URL\\)\\s+http://127\\.0\\.0\\.1:${ports.API_PORT}`), out);
  assert.match(out, /anon key\s+eyJ/);
  assert.match(out, /service_role key\s+eyJ/);
  const demo = /Demo login\s+(\S+) \/ (\S+)/.exec(out);
  assert.ok(demo, "prints a demo login");

  const apiUrl = `http://127.0.0.1:${ports.API_PORT}`;
  const dotenv = await readFile(path.join(stateDir, ".env"), "utf8");
  for (const name of ["SUPABASE_URL", "SUPABASE_ANON_KEY", "SUPABASE_SERVICE_ROLE_KEY", "SUPABASE_DB_URL", "DATABASE_URL", "STRIPE_API_BASE", "APP_URL", "VITE_SUPABASE_URL", "VITE_SUPABASE_ANON_KEY"]) {
    assert.match(dotenv, new RegExp(`^${name}=`, "m"), `.env has ${name}`);
  }
  assert.match(dotenv, new RegExp(`^SUPABASE_URL=${apiUrl}$`, "m"));
  // The README has people load it into their shell: every value must read back as written.
  const sourced = await new Promise<string>((resolve, reject) => {
    execFile("sh", ["-c", 'set -a; . "$1"; printf "%s" "$EMAIL_FROM"', "sh", path.join(stateDir!, ".env")], (error, stdout, stderr) =>
      error ? reject(new Error(`sourcing .env failed: ${stderr}`)) : resolve(stdout));
  });
  assert.equal(sourced, "Billing <billing@localhost>", "a shell reads EMAIL_FROM from .env as npm start wrote it");
  const anonKey = /^SUPABASE_ANON_KEY=(.+)$/m.exec(dotenv)![1]!;

  assert.equal((await fetch(`${apiUrl}/functions/v1/health`)).status, 200);
  assert.ok(await portOpen(ports.POSTGRES_PORT), "Postgres answers");
  const stack: Pick<StackUnderTest, "url" | "anonKey"> = { url: apiUrl, anonKey };
  const supabase = createClient(stack.url, stack.anonKey, {
    auth: { persistSession: false, autoRefreshToken: false },
    realtime: { transport: NoRealtime as unknown as WebSocketLikeConstructor },
  });
  const signIn = await supabase.auth.signInWithPassword({ email: demo[1]!, password: demo[2]! });
  assert.equal(signIn.error, null, "the demo login works through supabase-js");
  const orgs = await supabase.from("organizations").select("id, name");
  assert.equal((orgs.data as unknown[]).length, 1, "the demo user sees its organization");
  const orgId = (orgs.data as Array<{ id: string }>)[0]!.id;
  const balance = await supabase.rpc("get_credit_balance", { p_organization_id: orgId });
  assert.ok((balance.data as { total: number }).total > 0, "the demo organization has credits");

  const operatorLogin = /Operator login\s+(\S+) \/ (\S+)/.exec(out);
  assert.ok(operatorLogin, "prints an operator login");
  assert.deepEqual([operatorLogin[1], operatorLogin[2]], ["operator@example.com", "operator-password"]);
  await supabase.auth.signOut();
  const operatorSignIn = await supabase.auth.signInWithPassword({ email: operatorLogin[1]!, password: operatorLogin[2]! });
  assert.equal(operatorSignIn.error, null, "the operator login works through supabase-js");
  assert.equal((await supabase.rpc("is_billing_operator")).data, true, "the operator login is a billing operator");
  const operatorOrganizations = await supabase.rpc("operator_organizations", { p_search: orgId });
  assert.equal((operatorOrganizations.data as Array<{ organization_id: string }>)[0]?.organization_id, orgId,
    "the operator finds the demo organization");

  const second = startCommand(env);
  assert.notEqual(await second.exited, 0, "a second npm start fails");
  assert.match(second.output(), /already running/);

  first.child.kill("SIGINT");
  assert.equal(await first.exited, 0, first.output());
  assert.match(first.output(), /Stopped\./);
  assert.equal(await portOpen(ports.API_PORT), false, "the gateway is stopped");
  assert.equal(await portOpen(ports.POSTGRES_PORT), false, "Postgres is stopped");
  assert.equal(existsSync(path.join(stateDir, "start.pid")), false, "the lock is released");
  assert.deepEqual(await processesReferencing(stateDir, Object.values(ports)), [], "no Postgres, function or dashboard process outlives npm start");
});
