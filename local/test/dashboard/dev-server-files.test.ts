/**
 * The dashboard's dev server serves the app and nothing else from this machine: `/@fs/` reads
 * no file outside web/ (the Postgres data and refresh tokens in .local/, the repository's own
 * files, /etc/passwd) and no .env, while the app still loads. Against the dev server `npm test`
 * started (TEST_APP_URL), or one started here when this file runs on its own.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdir, rm, writeFile } from "node:fs/promises";
import path from "node:path";
import { after, before, describe, test } from "node:test";
import { freePort } from "../../gateway/edge-functions.ts";
import { repoRoot } from "../../shared/paths.ts";

let appUrl: string;
let devServer: ChildProcess | undefined;
const secret = `probe-secret-${process.pid}-${Date.now()}`;
const probes = {
  stateFile: path.join(repoRoot, ".local", `dev-server-probe-${process.pid}`, "refresh-tokens.txt"),
  envFile: path.join(repoRoot, "web", `.env.probe-${process.pid}`),
};

async function waitForServer(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if ((await fetch(url)).ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`the dev server did not answer at ${url}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}

before(async () => {
  await mkdir(path.dirname(probes.stateFile), { recursive: true });
  await writeFile(probes.stateFile, secret);
  await writeFile(probes.envFile, `SECRET=${secret}\n`);
  if (process.env.TEST_APP_URL) {
    appUrl = process.env.TEST_APP_URL;
    return;
  }
  const port = await freePort();
  devServer = spawn(path.join(repoRoot, "node_modules", ".bin", "vite"), ["--port", String(port), "--strictPort", "--host", "127.0.0.1"], {
    cwd: path.join(repoRoot, "web"),
    stdio: "ignore",
  });
  appUrl = `http://127.0.0.1:${port}`;
  await waitForServer(appUrl, 60_000);
});

after(async () => {
  if (devServer && devServer.exitCode === null) {
    const exited = new Promise((resolve) => devServer!.once("exit", resolve));
    devServer.kill("SIGTERM");
    await exited;
  }
  await rm(path.dirname(probes.stateFile), { recursive: true, force: true });
  await rm(probes.envFile, { force: true });
});

describe("dashboard dev server", () => {
  test("/@fs/ refuses files outside web/: .local/ state, the repository's files, system files, .env files", async () => {
    const refused = [
      `/@fs${probes.stateFile}`,
      `/@fs${path.join(repoRoot, "package.json")}`,
      `/@fs${path.join(repoRoot, "supabase", "config.toml")}`,
      "/@fs/etc/passwd",
      `/@fs${probes.envFile}`,
      `/${path.basename(probes.envFile)}`,
    ];
    for (const file of refused) {
      const response = await fetch(`${appUrl}${file}`);
      const body = await response.text();
      assert.ok(response.status === 403 || response.status === 404, `${file}: ${response.status}`);
      assert.ok(!body.includes(secret), `${file} leaks its content`);
      assert.ok(!body.includes("root:"), `${file} leaks /etc/passwd`);
    }
  });

  test("the app still loads: its page, its sources and the Vite client with what it imports from node_modules", async () => {
    const page = await fetch(appUrl);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /<div id="root">/);
    assert.equal((await fetch(`${appUrl}/src/main.tsx`)).status, 200);
    const client = await fetch(`${appUrl}/@vite/client`);
    assert.equal(client.status, 200);
    const imported = /import\s+(?:[^"';]*from\s+)?["'](\/@fs\/[^"']+)["']/.exec(await client.text())?.[1];
    assert.ok(imported, "the Vite client imports a file through /@fs/");
    assert.equal((await fetch(`${appUrl}${imported}`)).status, 200, `${imported} is served`);
  });
});
