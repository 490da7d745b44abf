/** Runs a program to completion, collecting what it printed. */
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
