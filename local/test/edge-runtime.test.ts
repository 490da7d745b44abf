/**
 * The local Deno runner (local/gateway/serve-function.js) offers `EdgeRuntime.waitUntil` as
 * the hosted Edge runtime does: the response does not wait for the task, a task that fails is
 * logged and the function keeps serving, and on shutdown (the gateway's stdin lifeline closing,
 * or SIGTERM) pending tasks get a bounded grace period before the process exits.
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { freePort } from "../gateway/edge-functions.ts";
import { binDir, repoRoot } from "../shared/paths.ts";

/** A function that answers at once and leaves `?ms=` of work (ending in a marker file) behind. */
const FUNCTION_SOURCE = `
Deno.serve(async (request) => {
  const url = new URL(request.url);
  const marker = url.searchParams.get("marker");
  const ms = Number(url.searchParams.get("ms") ?? 0);
  if (url.searchParams.has("fail")) {
    EdgeRuntime.waitUntil(Promise.reject(new Error("the background task broke")));
  } else {
    EdgeRuntime.waitUntil(new Promise((resolve) => setTimeout(resolve, ms)).then(() => Deno.writeTextFile(marker, "done")));
  }
  return new Response("answered");
});
`;

let dir: string;
before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "edge-runtime-"));
  await writeFile(path.join(dir, "index.ts"), FUNCTION_SOURCE);
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

interface Runner {
  child: ChildProcess;
  url: string;
  stderr: () => string;
  exited: Promise<void>;
}

async function startRunner(env: Record<string, string> = {}): Promise<Runner> {
  const port = await freePort();
  const child = spawn(
    path.join(binDir, "deno"),
    ["run", "--allow-all", "--no-prompt", "--node-modules-dir=manual", path.join(repoRoot, "local", "gateway", "serve-function.js")],
    {
      cwd: repoRoot,
      env: { ...process.env, NO_COLOR: "1", EDGE_FUNCTION_PORT: String(port), EDGE_FUNCTION_ENTRYPOINT: path.join(dir, "index.ts"), ...env },
      stdio: ["pipe", "pipe", "pipe"],
    },
  );
  let stderr = "";
  child.stderr!.on("data", (chunk) => (stderr += chunk));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (chunk: Buffer) => {
      if (chunk.toString().includes("__EDGE_FUNCTION_READY__")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`the runner exited (${code}) before serving: ${stderr}`)));
  });
  return { child, url: `http://127.0.0.1:${port}/fn`, stderr: () => stderr, exited };
}

const marker = (name: string) => path.join(dir, `${name}-${Math.random().toString(36).slice(2)}`);

async function waitFor(what: string, check: () => boolean) {
  const deadline = Date.now() + 15_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

test("EdgeRuntime.waitUntil: the response comes first, the task finishes after it", async () => {
  const runner = await startRunner();
  try {
    const done = marker("after-response");
    const response = await fetch(`${runner.url}?ms=500&marker=${encodeURIComponent(done)}`);
    assert.equal(await response.text(), "answered");
    assert.equal(existsSync(done), false, "answered while the task was still running");
    await waitFor("the background task", () => existsSync(done));
  } finally {
    runner.child.stdin!.end();
    await runner.exited;
  }
});

test("a background task that fails is logged, and the function keeps serving", async () => {
  const runner = await startRunner();
  try {
    assert.equal(await (await fetch(`${runner.url}?fail`)).text(), "answered");
    await waitFor("the failure to be logged", () => runner.stderr().includes("the background task broke"));
    const done = marker("still-serving");
    assert.equal(await (await fetch(`${runner.url}?ms=0&marker=${encodeURIComponent(done)}`)).text(), "answered");
    await waitFor("the next task", () => existsSync(done));
    assert.equal(runner.child.exitCode, null, "the process is still running");
  } finally {
    runner.child.stdin!.end();
    await runner.exited;
  }
});

test("on shutdown a pending task is given its grace period; one that outlasts it is cut off and reported", async () => {
  for (const stop of ["stdin closed", "SIGTERM"] as const) {
    const runner = await startRunner({ EDGE_FUNCTION_SHUTDOWN_GRACE_MS: "3000" });
    const done = marker("within-grace");
    await fetch(`${runner.url}?ms=300&marker=${encodeURIComponent(done)}`);
    if (stop === "SIGTERM") runner.child.kill("SIGTERM");
    else runner.child.stdin!.end();
    await runner.exited;
    assert.ok(existsSync(done), `${stop}: the task finished before the process exited`);
  }

  const runner = await startRunner({ EDGE_FUNCTION_SHUTDOWN_GRACE_MS: "200" });
  const never = marker("past-grace");
  await fetch(`${runner.url}?ms=60000&marker=${encodeURIComponent(never)}`);
  runner.child.stdin!.end();
  await runner.exited;
  assert.equal(existsSync(never), false, "a task longer than the grace period does not hold the process");
  assert.match(runner.stderr(), /1 background task\(s\) unfinished/);
});
