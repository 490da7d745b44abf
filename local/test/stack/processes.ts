/**
 * What the `npm start` tests check after a stop: which processes still refer to a stack (its
 * state directory or one of its ports, in their command line or environment), read from /proc.
 */
import { readdir, readFile } from "node:fs/promises";
import { connect } from "node:net";

export interface LeftoverProcess {
  pid: number;
  cmdline: string;
}

/**
 * Live processes (other than this one and tmux, which hold the test's own command line)
 * whose command line or environment names the state directory or one of the ports.
 */
export async function processesReferencing(stateDir: string, ports: number[]): Promise<LeftoverProcess[]> {
  const needles = [stateDir, ...ports.map((port) => new RegExp(`(^|[^0-9])${port}([^0-9]|$)`))];
  const found: LeftoverProcess[] = [];
  for (const entry of await readdir("/proc").catch(() => [])) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const comm = (await readFile(`/proc/${entry}/comm`, "utf8").catch(() => "")).trim();
    if (comm === "" || comm.startsWith("tmux")) continue;
    const stat = await readFile(`/proc/${entry}/stat`, "utf8").catch(() => "");
    if (/\) Z /.test(stat)) continue; // a zombie holds nothing; its parent has not reaped it yet
    const cmdline = (await readFile(`/proc/${entry}/cmdline`, "utf8").catch(() => "")).split("\0").join(" ");
    const environ = (await readFile(`/proc/${entry}/environ`, "utf8").catch(() => "")).split("\0");
    const texts = [cmdline, ...environ];
    const hit = needles.some((needle) => texts.some((text) => (typeof needle === "string" ? text.includes(needle) : needle.test(text))));
    if (hit) found.push({ pid: Number(entry), cmdline });
  }
  return found;
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
