/** Runs programs: to completion, collecting what they printed (runCommand), or as servers (startProcess). */
import { spawn, type SpawnOptions } from "node:child_process";

export interface CommandResult {
  code: number;
  /** stdout and stderr, interleaved as they arrived. */
  output: string;
}

/**
 * Runs `command` in a process group of its own: a Ctrl-C in the terminal reaches only the
 * npm script, which lets a step under way (initdb, pg_ctl, a migration) finish rather than
 * leave it half-done, and then stops in order.
 */
export function runCommand(command: string, args: string[], options: Omit<SpawnOptions, "stdio" | "detached"> = {}): Promise<CommandResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "pipe"], detached: true });
    let output = "";
    child.stdout!.on("data", (chunk) => (output += chunk));
    child.stderr!.on("data", (chunk) => (output += chunk));
    child.on("error", reject);
    child.on("close", (code) => resolve({ code: code ?? 1, output }));
  });
}

export interface RunningProcess {
  /** What the ready pattern's first group matched (for example the URL the server printed). */
  ready: string;
  /** Stops the process and everything it started (its process group), and waits for it to exit. */
  stop(): Promise<void>;
}

/**
 * Starts a long-running program (a server) in a process group of its own, as runCommand does,
 * and resolves once its stdout matches `ready`, with the pattern's first group. Its stderr is
 * passed through. Rejects if it exits before that.
 */
export function startProcess(
  command: string,
  args: string[],
  ready: RegExp,
  options: Omit<SpawnOptions, "stdio" | "detached"> = {},
): Promise<RunningProcess> {
  const child = spawn(command, args, { ...options, stdio: ["ignore", "pipe", "inherit"], detached: true });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  return new Promise((resolve, reject) => {
    let output = "";
    let started = false;
    child.on("error", reject);
    // Read stdout for as long as the process runs (a full pipe would stall it), but keep it only
    // until the ready line.
    child.stdout!.on("data", (chunk: Buffer) => {
      if (started) return;
      output += chunk;
      const match = ready.exec(output);
      if (match) {
        started = true;
        resolve({ ready: match[1] ?? match[0], stop });
      }
    });
    child.once("exit", (code) => reject(new Error(`${command} ${args.join(" ")} exited (${code}) before it was ready:\n${output}`)));
  });

  async function stop(): Promise<void> {
    if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
      try {
        process.kill(-child.pid, "SIGTERM");
      } catch {
        // The group is already gone.
      }
    }
    await exited;
  }
}
