/**
 * The gateway survives its database: a connection killed in the middle of a request fails that
 * request alone, and while Postgres is down REST, auth and the functions' calls through the
 * gateway answer a retriable 503 with Retry-After, then recover by themselves when it is back.
 *
 * Runs on a throwaway cluster of its own (stopping the shared test database would take every
 * other suite down), and the gateway in a process of its own (`local/gateway/main.ts`, as the
 * benchmark runs it), so "the process is still alive" is something the test can observe.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { chmod, mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { after, before, describe, test } from "node:test";
import pg from "pg";
import { freePort } from "../../gateway/edge-functions.ts";
import { apiKeys, type ApiKeys } from "../../gateway/keys.ts";
import { bootstrapPlatform } from "../../stack/database.ts";
import { repoRoot } from "../../shared/paths.ts";
import { startCluster, stopCluster, type ClusterOptions } from "../../stack/postgres.ts";

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), "fixtures", "database-faults");

let cluster: ClusterOptions;
let stateDir: string;
let databaseUrl: string;
let keys: ApiKeys;
let gateway: { child: ChildProcess; url: string; output: () => string };

/** Starts `local/gateway/main.ts` over the cluster and waits for its URL. */
async function startGatewayProcess(): Promise<typeof gateway> {
  const child = spawn(process.execPath, ["--import", "tsx", path.join(repoRoot, "local", "gateway", "main.ts")], {
    cwd: repoRoot,
    env: {
      ...process.env,
      DATABASE_URL: databaseUrl,
      API_PORT: "0",
      JWT_SECRET: keys.jwtSecret,
      GATEWAY_FUNCTIONS_DIR: path.join(fixtures, "functions"),
      GATEWAY_FUNCTIONS_CONFIG: path.join(fixtures, "config.toml"),
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  child.stdout!.on("data", (chunk: Buffer) => (output += chunk));
  child.stderr!.on("data", (chunk: Buffer) => (output += chunk));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the gateway did not start:\n${output}`)), 90_000);
    const check = () => {
      const match = /GATEWAY_URL=(\S+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout!.on("data", check);
    child.once("exit", (code) => reject(new Error(`the gateway exited (${code}):\n${output}`)));
  });
  return { child, url, output: () => output };
}

function alive(child: ChildProcess): boolean {
  return child.exitCode === null && child.signalCode === null;
}

/** Runs one statement on the cluster as the superuser. */
async function sql(text: string): Promise<void> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    await client.query(text);
  } finally {
    await client.end();
  }
}

const restHeaders = () => ({ apikey: keys.anonKey, Authorization: `Bearer ${keys.anonKey}` });
const authHeaders = () => ({ apikey: keys.anonKey, "Content-Type": "application/json", "X-Supabase-Api-Version": "2024-01-01" });
let signups = 0;
const signUpBody = () => JSON.stringify({ email: `fault-${process.pid}-${signups++}@example.test`, password: "correct horse battery" });

/**
 * Holds an exclusive lock on `table` while `request` runs, so the request is certainly inside
 * Postgres when its backend is terminated; returns the request's response.
 */
async function terminateDuring(table: string, applicationName: string, request: () => Promise<Response>): Promise<Response> {
  const locker = new pg.Client({ connectionString: databaseUrl });
  await locker.connect();
  try {
    await locker.query(`begin; lock table ${table} in access exclusive mode`);
    const pending = request();
    let terminated = 0;
    for (let attempt = 0; attempt < 200 && terminated === 0; attempt++) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      // Inside a transaction pg_stat_activity is a snapshot taken at first use; take a fresh one.
      await locker.query("select pg_stat_clear_snapshot()");
      const { rows } = await locker.query<{ terminated: boolean }>(
        `select pg_terminate_backend(pid) as terminated from pg_stat_activity
          where application_name = $1 and wait_event_type = 'Lock'`,
        [applicationName],
      );
      terminated = rows.length;
    }
    assert.equal(terminated, 1, "the request's backend was waiting on the lock and was terminated");
    await locker.query("rollback");
    return await pending;
  } finally {
    await locker.end();
  }
}

before(async () => {
  stateDir = await mkdtemp(path.join(tmpdir(), "gateway-db-faults-"));
  // Postgres runs as its own system user when we are root; it must be able to enter the directory.
  await chmod(stateDir, 0o755);
  cluster = { dataDir: path.join(stateDir, "postgres"), port: await freePort(), settings: { fsync: "off", synchronous_commit: "off" } };
  const adminUrl = await startCluster(cluster);
  databaseUrl = adminUrl;
  await bootstrapPlatform(databaseUrl, { force: true });
  await sql(`create table public.notes (id integer primary key);
             insert into public.notes values (1), (2);
             grant select on public.notes to anon, authenticated`);
  keys = await apiKeys();
  gateway = await startGatewayProcess();
});

after(async () => {
  if (gateway && alive(gateway.child)) {
    const exited = new Promise((resolve) => gateway.child.once("exit", resolve));
    gateway.child.kill("SIGTERM");
    await exited;
  }
  if (cluster) await stopCluster(cluster).catch(() => false);
  if (stateDir) await rm(stateDir, { recursive: true, force: true });
});

describe("the gateway when its database fails", () => {
  test("a REST request whose backend is terminated fails with 503 alone; the next one succeeds and the gateway lives", async () => {
    const failed = await terminateDuring("public.notes", "local-gateway-rest", () =>
      fetch(`${gateway.url}/rest/v1/notes?select=id`, { headers: restHeaders() }));
    assert.equal(failed.status, 503, await failed.clone().text());
    const body = (await failed.json()) as Record<string, unknown>;
    assert.deepEqual(Object.keys(body).sort(), ["code", "details", "hint", "message"]);
    assert.equal(body.code, "PGRST001");
    assert.ok(failed.headers.get("retry-after"), "Retry-After is set");

    const next = await fetch(`${gateway.url}/rest/v1/notes?select=id&order=id`, { headers: restHeaders() });
    assert.equal(next.status, 200);
    assert.deepEqual(await next.json(), [{ id: 1 }, { id: 2 }]);
    assert.ok(alive(gateway.child), gateway.output());
  });

  test("a sign-up whose backend is terminated fails with 503 in GoTrue's shape; the next one succeeds", async () => {
    const failed = await terminateDuring("auth.users", "local-gateway-auth", () =>
      fetch(`${gateway.url}/auth/v1/signup`, { method: "POST", headers: authHeaders(), body: signUpBody() }));
    assert.equal(failed.status, 503, await failed.clone().text());
    assert.equal(((await failed.json()) as { code: string }).code, "unexpected_failure");
    assert.ok(failed.headers.get("retry-after"), "Retry-After is set");

    const next = await fetch(`${gateway.url}/auth/v1/signup`, { method: "POST", headers: authHeaders(), body: signUpBody() });
    assert.equal(next.status, 200, await next.clone().text());
    assert.ok(alive(gateway.child), gateway.output());
  });

  test("while Postgres is stopped REST, auth and a function answer 503 with Retry-After; after it starts they recover without a restart", async () => {
    const signedUp = await fetch(`${gateway.url}/auth/v1/signup`, { method: "POST", headers: authHeaders(), body: signUpBody() });
    assert.equal(signedUp.status, 200);
    const accessToken = ((await signedUp.json()) as { access_token: string }).access_token;
    const requests = {
      rest: () => fetch(`${gateway.url}/rest/v1/notes?select=id`, { headers: restHeaders() }),
      signup: () => fetch(`${gateway.url}/auth/v1/signup`, { method: "POST", headers: authHeaders(), body: signUpBody() }),
      user: () => fetch(`${gateway.url}/auth/v1/user`, { headers: { ...authHeaders(), Authorization: `Bearer ${accessToken}` } }),
      function: () => fetch(`${gateway.url}/functions/v1/rest-relay`, { headers: restHeaders() }),
    };
    for (const [name, request] of Object.entries(requests)) assert.equal((await request()).status, 200, `${name} works before the outage`);

    await stopCluster(cluster);
    try {
      for (const [name, request] of Object.entries(requests)) {
        const response = await request();
        assert.equal(response.status, 503, `${name}: ${await response.clone().text()}`);
        assert.match(response.headers.get("retry-after") ?? "", /^\d+$/, `${name} sends Retry-After in seconds`);
        const body = (await response.json()) as Record<string, unknown>;
        if (name === "rest" || name === "function") assert.equal(body.code, "PGRST000", name);
        else assert.equal(body.code, "unexpected_failure", name);
      }
      assert.ok(alive(gateway.child), gateway.output());
    } finally {
      await startCluster(cluster);
    }

    for (const [name, request] of Object.entries(requests)) {
      const response = await request();
      assert.equal(response.status, 200, `${name} recovers: ${await response.clone().text()}`);
    }
    assert.ok(alive(gateway.child), gateway.output());
  });
});
