/**
 * Waiting helpers for the stack's tests, and what the `npm start` tests check after a stop:
 * which processes still refer to a stack (its state directory or one of its ports, in their
 * command line or environment), read from /proc (Linux) or `ps` (macOS).
 */
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { readdir, readFile } from "node:fs/promises";
import { connect } from "node:net";
import path from "node:path";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);

export interface LeftoverProcess {
  pid: number;
  cmdline: string;
}

/** Every live process with its name and the texts to search: command line and environment. */
async function liveProcesses(): Promise<Array<{ pid: number; comm: string; cmdline: string; texts: string[] }>> {
  if (!existsSync("/proc/self")) {
    // macOS: `ps -E` appends each process's environment to its command (for our own processes).
    const { stdout } = await execFileAsync("ps", ["-axww", "-E", "-o", "pid=,comm=,command="], { maxBuffer: 64 << 20 });
    return stdout.split("\n").flatMap((line) => {
      const match = /^\s*(\d+)\s+(\S+)\s+(.*)$/.exec(line);
      return match ? [{ pid: Number(match[1]), comm: path.basename(match[2]!), cmdline: match[3]!, texts: [match[3]!] }] : [];
    });
  }
  const found = [];
  for (const entry of await readdir("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    const comm = (await readFile(`/proc/${entry}/comm`, "utf8").catch(() => "")).trim();
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    if (comm === "" || /\) Z /.test(stat)) continue; // gone, or a zombie, which holds nothing
    const cmdline = (await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "")).split("\0").join(" ");
    const environ = (await readFile(`/proc/${entry}/environ`, "utf8").catch(() => "")).split("\0");
    found.push({ pid: Number(entry), comm, cmdline, texts: [cmdline, ...environ] });
  }
  return found;
}

/**
 * Live processes (other than this one and tmux, which hold the test's own command line)
 * whose command line or environment names the state directory or one of the ports.
 */
export async function processesReferencing(stateDir: string, ports: number[]): Promise<LeftoverProcess[]> {
  const needles = [stateDir, ...ports.map((port) => new RegExp(`(^|[^0-9])${port}([^0-9]|$)`))];
  return (await liveProcesses())
    .filter(({ pid, comm }) => pid !== process.pid && !comm.startsWith("tmux"))
    .filter(({ texts }) => needles.some((needle) => texts.some((text) => (typeof needle === "string" ? text.includes(needle) : needle.test(text)))))
    .map(({ pid, cmdline }) => ({ pid, cmdline }));
}

/** True when something accepts connections on the loopback port. */
export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

/** Polls until the check holds, failing with what it waited for and the output so far. */
export async function waitFor(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string, output: () => string | Promise<string>): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; output:\n${await output()}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Polls until `check` returns a value (not undefined), or fails after `timeoutMs`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, timeoutMs = 150_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
}
